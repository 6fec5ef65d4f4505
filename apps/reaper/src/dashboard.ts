import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { HonoAdapter } from "@bull-board/hono";
import { serveStatic } from "@hono/node-server/serve-static";
import type { ContainerDriver } from "@mcp-broker/container-manager";
import { monitoringRoutes } from "@mcp-broker/service-runtime";
import type { SessionStore } from "@mcp-broker/session-store";
import type { Queue } from "bullmq";
import { Hono } from "hono";
import { basicAuth } from "hono/basic-auth";
import type { Logger } from "pino";
import type { ReaperMetrics } from "./metrics.js";
import { OPERATOR_PATH, operatorRoutes } from "./operator/routes.js";

export const DASHBOARD_PATH = "/admin/queues";

/**
 * The reaper's HTTP face: bull-board under /admin/queues and the operator view under
 * /admin/operator (both behind basic auth when a password is set), /health and /metrics.
 */
export function createDashboard(options: {
  queue: Queue;
  metrics: ReaperMetrics;
  store: SessionStore;
  driver: ContainerDriver;
  logger: Logger;
  user: string;
  password: string;
}): Hono {
  const app = new Hono();
  app.route("/", monitoringRoutes({ registry: options.metrics.registry }));

  const board = new HonoAdapter(serveStatic);
  createBullBoard({ queues: [new BullMQAdapter(options.queue, { readOnlyMode: false })], serverAdapter: board });
  board.setBasePath(DASHBOARD_PATH);
  if (options.password) {
    const auth = basicAuth({ username: options.user, password: options.password });
    for (const path of [DASHBOARD_PATH, OPERATOR_PATH]) {
      app.use(`${path}/*`, auth);
      app.use(path, auth);
    }
  }
  app.route(DASHBOARD_PATH, board.registerPlugin());
  const { queue, store, driver, logger } = options;
  app.route(OPERATOR_PATH, operatorRoutes({ queue, store, driver, logger, boardPath: DASHBOARD_PATH }));
  return app;
}

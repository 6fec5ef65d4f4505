import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { HonoAdapter } from "@bull-board/hono";
import { serveStatic } from "@hono/node-server/serve-static";
import { monitoringRoutes } from "@mcp-broker/service-runtime";
import type { Queue } from "bullmq";
import { Hono } from "hono";
import { basicAuth } from "hono/basic-auth";
import type { ReaperMetrics } from "./metrics.js";

export const DASHBOARD_PATH = "/admin/queues";

/**
 * The reaper's HTTP face: bull-board under /admin/queues (behind basic auth when a password
 * is set), /health and /metrics.
 */
export function createDashboard(options: {
  queue: Queue;
  metrics: ReaperMetrics;
  user: string;
  password: string;
}): Hono {
  const app = new Hono();
  app.route("/", monitoringRoutes({ registry: options.metrics.registry }));

  const board = new HonoAdapter(serveStatic);
  createBullBoard({ queues: [new BullMQAdapter(options.queue, { readOnlyMode: false })], serverAdapter: board });
  board.setBasePath(DASHBOARD_PATH);
  if (options.password) {
    app.use(`${DASHBOARD_PATH}/*`, basicAuth({ username: options.user, password: options.password }));
    app.use(DASHBOARD_PATH, basicAuth({ username: options.user, password: options.password }));
  }
  app.route(DASHBOARD_PATH, board.registerPlugin());
  return app;
}

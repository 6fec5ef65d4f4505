import { type ContainerDriver, closeBackendConnections, PER_USER_NETWORK } from "@mcp-broker/container-manager";
import { inSpan, listen, redisTarget } from "@mcp-broker/service-runtime";
import { createRedisClient, redisOptions, type SessionStore } from "@mcp-broker/session-store";
import { type Job, Queue, Worker } from "bullmq";
import type { Logger } from "pino";
import type { ReaperConfig } from "./config.js";
import { createDashboard, DASHBOARD_PATH } from "./dashboard.js";
import { createMetrics, type ReaperMetrics } from "./metrics.js";
import { OPERATOR_PATH } from "./operator/routes.js";
import { declareSweeps, keepSweepsScheduled } from "./schedule.js";
import { type SweepResult, sweep } from "./sweep.js";

export const QUEUE_NAME = "reaper";

export interface Reaper {
  queue: Queue;
  worker: Worker<unknown, SweepResult>;
  metrics: ReaperMetrics;
  dashboardUrl: string;
  /** The operator view: who has a server, last sweeps, last hour's recoveries. */
  operatorUrl: string;
  /** Lets a running sweep finish, then closes the worker, queue, dashboard and connections. */
  close(): Promise<void>;
}

const sweepAttributes = (job: Job, result: SweepResult) => ({
  "mcpb.sweep.job_id": String(job.id),
  "mcpb.sweep.sessions_ended": result.sessionsEnded,
  "mcpb.sweep.upstream_deletes_failed": result.upstreamDeletesFailed,
  "mcpb.sweep.containers_stopped": result.containersStopped,
  "mcpb.sweep.orphans_removed": result.orphansRemoved,
  "mcpb.sweep.stale_routes_removed": result.staleRoutesRemoved,
  "mcpb.sweep.failures": result.failures.length,
  "mcpb.sweep.truncated": result.truncated,
});

/**
 * Starts a reaper: a BullMQ job scheduler that adds a `sweep` job every REAP_INTERVAL_SECONDS
 * (upserted by id, so any number of reapers keep one schedule; re-declared after Redis loses
 * it, see schedule.ts), a worker that runs each job once across all reapers, and the dashboard.
 */
export async function startReaper(deps: {
  config: ReaperConfig;
  store: SessionStore;
  driver: ContainerDriver;
  logger: Logger;
}): Promise<Reaper> {
  const { config, store, driver, logger } = deps;
  const metrics = createMetrics();
  // BullMQ's blocking worker connection must retry forever (maxRetriesPerRequest: null).
  const connection = createRedisClient(redisTarget(config), {
    ...redisOptions(config.REDIS_COMMAND_TIMEOUT_MS),
    maxRetriesPerRequest: null,
    commandTimeout: undefined,
  });
  connection.on("error", (error) => logger.debug({ err: error.message }, "queue connection error"));
  const prefix = `${config.REDIS_PREFIX}bull`;

  const queue = new Queue(QUEUE_NAME, { connection, prefix });
  queue.on("error", (error) => logger.warn({ err: error.message }, "queue error"));
  const everyMs = config.REAP_INTERVAL_SECONDS * 1000;
  await declareSweeps(queue, everyMs);
  const schedule = keepSweepsScheduled({ queue, connection, everyMs, logger });

  const workerConnection = connection.duplicate();
  const worker = new Worker<unknown, SweepResult>(
    QUEUE_NAME,
    (job: Job) =>
      // One span per sweep job, its counts as attributes (docs/architecture.md#tracing).
      inSpan("sweep", async (span) => {
        const log = logger.child({ job: job.id });
        const result = await sweep({ config, store, driver, log });
        span?.setAttributes(sweepAttributes(job, result));
        metrics.record(result);
        if (result.failures.length > 0) {
          await job.log(`containers that refused to stop: ${JSON.stringify(result.failures)}`);
        }
        log.info(result, "sweep done");
        return result;
      }),
    { connection: workerConnection, prefix, concurrency: 1 },
  );
  worker.on("failed", (job, error) => {
    metrics.sweeps.inc({ outcome: "failed" });
    logger.warn({ job: job?.id, attempt: job?.attemptsMade, err: error.message }, "sweep failed; BullMQ retries it");
  });
  worker.on("error", (error) => logger.warn({ err: error.message }, "worker error"));

  const dashboard = createDashboard({
    queue,
    metrics,
    store,
    driver,
    logger,
    user: config.DASHBOARD_USER,
    password: config.DASHBOARD_PASSWORD,
  });
  // Without a password the dashboard (which can retry and delete jobs, and stop users' servers) is
  // reachable from this host only.
  const host = config.DASHBOARD_PASSWORD ? config.DASHBOARD_HOST : "127.0.0.1";
  if (!config.DASHBOARD_PASSWORD) {
    logger.warn("DASHBOARD_PASSWORD is not set: the dashboard listens on 127.0.0.1 only, without authentication");
  }
  const server = await listen(dashboard.fetch, { port: config.DASHBOARD_PORT, host });
  if (config.BACKEND_NETWORK === PER_USER_NETWORK) {
    // The reaper sits on every backend's network (to end idle sessions): backends must not reach the dashboard.
    server.server.prependListener("connection", closeBackendConnections(config.BACKEND_NETWORK_POOL));
  }
  const dashboardUrl = `${server.url}${DASHBOARD_PATH}`;
  const operatorUrl = `${server.url}${OPERATOR_PATH}`;

  return {
    queue,
    worker,
    metrics,
    dashboardUrl,
    operatorUrl,
    async close() {
      schedule.stop();
      await worker.close(); // waits for the running sweep
      await queue.close();
      // Nothing on the dashboard is worth waiting for: close its connections at once.
      await server.close(0);
      // BullMQ leaves connections it was given open; they are ours to close.
      workerConnection.disconnect();
      connection.disconnect();
    },
  };
}

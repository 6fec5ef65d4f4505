import { redisTarget, runService, startTracing } from "@mcp-broker/service-runtime";
import { SessionStore } from "@mcp-broker/session-store";
import { pino } from "pino";
import { loadConfig } from "./config.js";
import { reaperDriver } from "./driver.js";
import { startReaper } from "./reaper.js";

await runService({
  env: process.env,
  loadConfig,
  bootLogger: pino({ name: "reaper" }),
  logger: (config) => pino({ name: "reaper", level: config.LOG_LEVEL }),
  async start(config, logger) {
    const tracing = await startTracing(config, { name: "mcp-broker-reaper" });
    if (tracing)
      logger.info({ endpoint: tracing.endpoint, protocol: tracing.protocol }, "tracing on: spans go over OTLP");
    const store = SessionStore.connect(redisTarget(config), {
      prefix: config.REDIS_PREFIX,
      sessionIdleTtlSeconds: config.SESSION_IDLE_TTL_SECONDS,
      commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS,
      onConnectionError: (error) => logger.debug({ err: error.message }, "Redis connection error"),
    });
    const driver = reaperDriver(config);
    // Per-user networks: join those that exist, to end idle sessions on their backends (best effort).
    driver.prepare?.().catch((error: Error) => logger.warn({ err: error.message }, "joining backend networks failed"));
    const reaper = await startReaper({ config, store, driver, logger });
    logger.info(
      { dashboard: reaper.dashboardUrl, operator: reaper.operatorUrl, everySeconds: config.REAP_INTERVAL_SECONDS },
      "reaper running",
    );
    return {
      async close() {
        await reaper.close();
        await store.close();
        await tracing?.shutdown();
      },
    };
  },
  stopping: () => ({ message: "shutting down: letting a running sweep finish" }),
});

import { DockerDriver } from "@mcp-broker/container-manager";
import { SessionStore } from "@mcp-broker/session-store";
import { pino } from "pino";
import { ConfigError, loadConfig } from "./config.js";
import { startReaper } from "./reaper.js";

const logger = pino({ name: "reaper", level: process.env.LOG_LEVEL ?? "info" });

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig(process.env);
} catch (error) {
  if (error instanceof ConfigError) {
    logger.fatal({ problems: error.problems }, "invalid configuration");
    process.exit(2);
  }
  throw error;
}
logger.level = config.LOG_LEVEL;

const store = SessionStore.connect(config.REDIS_URL, {
  prefix: config.REDIS_PREFIX,
  sessionIdleTtlSeconds: config.SESSION_IDLE_TTL_SECONDS,
  commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS,
  onConnectionError: (error) => logger.debug({ err: error.message }, "Redis connection error"),
});
// The reaper only lists, inspects and removes containers; image and limits are the gateway's concern.
const driver = new DockerDriver({ deployment: config.DEPLOYMENT_NAME });
const reaper = await startReaper({ config, store, driver, logger });
logger.info({ dashboard: reaper.dashboardUrl, everySeconds: config.REAP_INTERVAL_SECONDS }, "reaper running");

let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, async () => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down: letting a running sweep finish");
    await reaper.close();
    await store.close();
    process.exit(0);
  });
}

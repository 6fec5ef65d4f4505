import { pino } from "pino";
import { ConfigError, loadConfig } from "./config.js";
import { startGateway } from "./server.js";

const logger = pino({ name: "gateway", level: process.env.LOG_LEVEL ?? "info" });

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

const gateway = await startGateway(config, logger);
logger.info(
  { url: gateway.url, driver: config.BACKEND_DRIVER, image: config.BACKEND_IMAGE, keyHeader: config.API_KEY_HEADER },
  "gateway listening",
);

let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, async () => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, inFlight: gateway.inFlight() }, "shutting down: finishing in-flight requests");
    await gateway.close();
    logger.info("stopped");
    process.exit(0);
  });
}

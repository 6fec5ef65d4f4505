import { pino } from "pino";
import { ConfigError, loadConfig } from "./config.js";
import { startGateway } from "./server.js";

const boot = pino({ name: "gateway" });

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig(process.env);
} catch (error) {
  if (error instanceof ConfigError) {
    boot.fatal({ problems: error.problems }, "invalid configuration");
    process.exit(2);
  }
  throw error;
}
// Asynchronous, buffered writes: a log line per request otherwise costs a write syscall each.
const logger = pino({ name: "gateway", level: config.LOG_LEVEL }, pino.destination({ sync: false }));

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
    logger.flush(() => process.exit(0));
  });
}

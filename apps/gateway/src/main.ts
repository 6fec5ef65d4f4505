import { runService, startTracing } from "@mcp-broker/service-runtime";
import { pino } from "pino";
import { loadConfig } from "./config.js";
import { redaction } from "./log-redaction.js";
import { startGateway } from "./server.js";

const LOG_BUFFER_BYTES = 4096;
const LOG_FLUSH_MS = 1000;

await runService({
  env: process.env,
  loadConfig,
  bootLogger: pino({ name: "gateway" }),
  // Asynchronous, buffered writes: a log line per request otherwise costs a write syscall each
  // (about 5% of the warm path's CPU). Lines are written once 4 KiB are waiting, or after a
  // second at most; shutdown writes what is left (runService flushes before it exits).
  logger: (config) =>
    pino(
      { name: "gateway", level: config.LOG_LEVEL, redact: redaction(config.API_KEY_HEADER) },
      pino.destination({ sync: false, minLength: LOG_BUFFER_BYTES, periodicFlush: LOG_FLUSH_MS }),
    ),
  async start(config, logger) {
    if (config.AUTH_VERIFY === "off") {
      logger.warn("AUTH_VERIFY=off: every well-formed API key is accepted and may start a server");
    }
    // Before the gateway is built: its store and middleware are traced only when this is on.
    const tracing = await startTracing(config, { name: "mcp-broker-gateway" });
    if (tracing)
      logger.info({ endpoint: tracing.endpoint, protocol: tracing.protocol }, "tracing on: spans go over OTLP");
    const gateway = await startGateway(config, logger);
    logger.info(
      {
        url: gateway.url,
        driver: config.BACKEND_DRIVER,
        image: config.BACKEND_IMAGE,
        keyHeader: config.API_KEY_HEADER,
      },
      "gateway listening",
    );
    // On SIGTERM: drain (the balancer takes this replica out), then stop accepting and finish.
    const close = async () => {
      await gateway.drain();
      logger.info({ inFlight: gateway.inFlight() }, "drained: stopped accepting, finishing in-flight requests");
      await gateway.close();
      await tracing?.shutdown();
    };
    return { ...gateway, close };
  },
  stopping: (gateway) => ({
    message: "draining: /ready answers 503, answers close their connections",
    fields: { inFlight: gateway.inFlight(), drainSeconds: gateway.config.DRAIN_SECONDS },
  }),
});

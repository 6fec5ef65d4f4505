import { runService } from "@mcp-broker/service-runtime";
import { pino } from "pino";
import { loadConfig } from "./config.js";
import { startGuard } from "./server.js";

await runService({
  env: process.env,
  loadConfig,
  bootLogger: pino({ name: "engine-guard" }),
  logger: (config) => pino({ name: "engine-guard", level: config.LOG_LEVEL }),
  async start(config, logger) {
    const guard = await startGuard(config, logger);
    logger.info(
      {
        url: guard.url,
        role: config.GUARD_ROLE,
        engine: config.GUARD_ENGINE_SOCKET,
        deployment: config.DEPLOYMENT_NAME,
        images: config.GUARD_IMAGES,
      },
      "engine guard listening",
    );
    return guard;
  },
  stopping: (guard) => ({ message: "shutting down: finishing engine calls", fields: { inFlight: guard.inFlight() } }),
});

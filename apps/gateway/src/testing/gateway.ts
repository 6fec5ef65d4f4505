import { randomUUID } from "node:crypto";
import { images } from "@mcp-broker/test-support";
import { pino } from "pino";
import { loadConfig } from "../config.js";
import { type RunningGateway, startGateway } from "../server.js";

/**
 * A real gateway on 127.0.0.1 for tests: real Redis (the test's), the real Docker driver with
 * the outline-stub image, a deployment label of its own so the test can find its containers.
 */
export async function startTestGateway(
  env: Record<string, string | undefined>,
  overrides: Parameters<typeof startGateway>[2] = {},
): Promise<RunningGateway> {
  const config = loadConfig({
    PORT: "0",
    HOST: "127.0.0.1",
    KEY_HASH_SECRET: "test-secret-0123456789",
    BACKEND_IMAGE: images.stub,
    BACKEND_PULL: "false",
    BACKEND_READY_TIMEOUT_MS: "20000",
    DEPLOYMENT_NAME: `t${randomUUID().slice(0, 8)}`,
    RATE_LIMIT_PER_MINUTE: "0",
    AUTH_VERIFY: "off",
    NEW_KEY_STARTS_PER_IP_PER_MINUTE: "0",
    ...env,
  });
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
  return startGateway(config, logger, overrides);
}

export { key } from "./keys.js";

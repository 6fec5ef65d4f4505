import { runService, type ServiceLogger } from "@mcp-broker/service-runtime";
import { loadConfig } from "./config.js";
import { startStub } from "./server.js";
import { fingerprint } from "./tools.js";

// One JSON line per event on stdout: the stub's image is a single bundle with no logging library.
const line =
  (level: string) =>
  (fields: Record<string, unknown>, message: string): void =>
    console.log(
      JSON.stringify({ level, msg: message, ...fields }, (_, value) =>
        value instanceof Error ? value.message : value,
      ),
    );
const log: ServiceLogger = { info: line("info"), error: line("error"), fatal: line("fatal") };

await runService({
  env: process.env,
  loadConfig,
  bootLogger: log,
  logger: () => log,
  async start(config) {
    const stub = await startStub({
      apiKey: config.OUTLINE_API_KEY,
      allowedKeys: config.AUTH_ALLOWED_KEYS,
      allowedKeyPattern: config.AUTH_ALLOWED_KEY_PATTERN,
      port: config.PORT,
      host: config.HOST,
      tools: config.STUB_TOOLS,
    });
    log.info(
      { port: stub.port, key: config.OUTLINE_API_KEY ? fingerprint(config.OUTLINE_API_KEY) : null },
      "outline-stub listening",
    );
    return stub;
  },
  stopping: (stub) => ({ message: "shutting down: ending sessions", fields: { sessions: stub.sessions.size } }),
});

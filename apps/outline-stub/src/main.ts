import { loadConfig } from "./config.js";
import { startStub } from "./server.js";
import { fingerprint } from "./tools.js";

const config = loadConfig(process.env);
const stub = await startStub({
  apiKey: config.OUTLINE_API_KEY,
  allowedKeys: config.AUTH_ALLOWED_KEYS,
  port: config.PORT,
  host: config.HOST,
});
console.log(
  JSON.stringify({ msg: "outline-stub listening", port: stub.port, key: fingerprint(config.OUTLINE_API_KEY) }),
);

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    void stub.close().finally(() => process.exit(0));
  });
}

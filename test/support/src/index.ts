// In-process helpers (no Docker engine needed). Those that need one: `@mcp-broker/test-support/docker`.
export { eventually } from "./eventually.js";
export { images } from "./images.js";
export { type LocalRedis, startLocalRedis } from "./local-redis.js";
export { connectClient, INITIALIZE, MCP_POST_HEADERS, parseRpcBody, resultText } from "./mcp.js";
export { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from "./otlp-receiver.js";
export { freePort } from "./ports.js";
export { loseRedisData } from "./redis-loss.js";
export { startSentinelRedis, type TestSentinelRedis } from "./redis-sentinel.js";
export { type EventStream, openEventStream, type SseEvent } from "./sse.js";
export { stubBundlePath } from "./stub-bundle.js";

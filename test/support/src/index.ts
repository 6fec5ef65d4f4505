export { docker, removeLabelled, requireDocker } from "./docker.js";
export { eventually } from "./eventually.js";
export { images } from "./images.js";
export { connectClient, INITIALIZE, MCP_POST_HEADERS, parseRpcBody, resultText } from "./mcp.js";
export { freePort } from "./ports.js";
export { startRedis, type TestRedis } from "./redis.js";
export { stubBundlePath } from "./stub-bundle.js";
export { startStubContainer } from "./stub-container.js";

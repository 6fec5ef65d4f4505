export { type AppDeps, createApp, type GatewayApp } from "./app.js";
export { ConfigError, GATEWAY_VARIABLES, type GatewayConfig, loadConfig } from "./config.js";
export { createMetrics as createGatewayMetrics } from "./metrics.js";
export { userIdFor } from "./middleware/auth.js";
export { createDriver, createStore, type RunningGateway, startGateway } from "./server.js";

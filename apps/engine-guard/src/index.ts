export { ConfigError, ENGINE_GUARD_VARIABLES, enginePolicyOf, type GuardConfig, loadConfig } from "./config.js";
export { Engine } from "./engine.js";
export { createGuard, type GuardDeps } from "./guard.js";
export { type Operation, parseRequest } from "./operations.js";
export { type RunningGuard, startGuard } from "./server.js";

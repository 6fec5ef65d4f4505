export { ConfigError, loadConfig, REAPER_VARIABLES, type ReaperConfig } from "./config.js";
export { DASHBOARD_PATH } from "./dashboard.js";
export { createMetrics as createReaperMetrics } from "./metrics.js";
export { QUEUE_NAME, type Reaper, startReaper } from "./reaper.js";
export { SCHEDULER_ID } from "./schedule.js";
export { type SweepDeps, type SweepResult, sweep } from "./sweep.js";

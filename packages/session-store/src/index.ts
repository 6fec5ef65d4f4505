export { LockTimeoutError, StoreError, StoreUnavailableError } from "./errors.js";
export type { LockOptions } from "./locks.js";
export { redisOptions, SessionStore, type SessionStoreOptions } from "./session-store.js";
export type { BrokerSession, ClaimedRoute, ClaimedSession, RateLimitVerdict, Route, RouteState } from "./types.js";

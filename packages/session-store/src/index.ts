export type { EventCounts } from "./activity.js";
export type { BackendEra } from "./backend-eras.js";
export { LockTimeoutError, StoreError, StoreUnavailableError } from "./errors.js";
export {
  EventRelays,
  type RelayBounds,
  type RelayCursor,
  type RelayedEvent,
  RelayReader,
  type RelayState,
} from "./event-relays.js";
export type { LockOptions } from "./locks.js";
export { createRedisClient } from "./redis-client.js";
export type { Revival, RevivalOutcome, SessionLookup, SessionRecord, StateChange } from "./session-records.js";
export { redisOptions, SessionStore, type SessionStoreOptions } from "./session-store.js";
export type { SessionUse } from "./sessions.js";
export type { ToolHint } from "./tool-hints.js";
export type {
  BrokerSession,
  ClaimedRoute,
  ClaimedSession,
  RateLimitVerdict,
  Route,
  RouteState,
  UnroutedMark,
} from "./types.js";
export type { Spare, WarmPool, WarmSession } from "./warm-pool.js";

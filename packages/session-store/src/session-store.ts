import type { RedisTarget } from "@mcp-broker/service-runtime";
import type { Redis, RedisOptions } from "ioredis";
import { Activity, type EventCounts } from "./activity.js";
import { AuthVerdicts } from "./auth-verdicts.js";
import { type BackendEra, BackendEras } from "./backend-eras.js";
import { EventRelays } from "./event-relays.js";
import { guard } from "./guard.js";
import { keyspace } from "./keys.js";
import { type LockOptions, UserLocks } from "./locks.js";
import { IpLimits, RateLimit } from "./rate-limit.js";
import { createRedisClient } from "./redis-client.js";
import { type NewRoute, Routes } from "./routes.js";
import { defineScripts } from "./scripts.js";
import {
  type Revival,
  type RevivalOutcome,
  type SessionLookup,
  SessionRecords,
  type StateChange,
} from "./session-records.js";
import { type NewSession, type SessionInUse, Sessions, type SessionUse } from "./sessions.js";
import { type ToolHint, ToolHints } from "./tool-hints.js";
import type { BrokerSession, ClaimedRoute, ClaimedSession, RateLimitVerdict, Route, UnroutedMark } from "./types.js";
import { WarmPool } from "./warm-pool.js";

export interface SessionStoreOptions {
  /** Prepended to every key, so several deployments can share one Redis. */
  prefix?: string;
  /** A session unused this long is expired by the reaper. */
  sessionIdleTtlSeconds: number;
  /**
   * Session keys live this much longer than the idle limit, so the reaper (which also ends the
   * upstream session) normally gets to them first; the TTL is the safety net without a reaper.
   */
  sessionTtlGraceSeconds?: number;
  /** Requests per key per window; 0 turns rate limiting off. */
  rateLimitPoints?: number;
  rateLimitWindowSeconds?: number;
  authPositiveTtlSeconds?: number;
  authNegativeTtlSeconds?: number;
  /** Bounds every Redis call, so a hung server becomes a 503 rather than a hung request. */
  commandTimeoutMs?: number;
  /** Connection errors (the client reconnects by itself); default: ignored. */
  onConnectionError?: (error: Error) => void;
}

export function redisOptions(commandTimeoutMs = 2000) {
  return {
    // A command waits through three reconnect attempts (100 + 200 + 300 ms: a Redis restart)
    // and then fails instead of queueing forever while Redis is down: the gateway answers 503 +
    // Retry-After and the client retries. `commandTimeout` bounds the wait either way.
    maxRetriesPerRequest: 3,
    commandTimeout: commandTimeoutMs,
    connectTimeout: 2000,
    retryStrategy: (attempt: number) => Math.min(attempt * 100, 2000),
  } satisfies RedisOptions;
}

/**
 * Everything the broker keeps in Redis, for the gateway and the reaper. One object per concept
 * (sessions, routes, locks, auth verdicts, rate limit), composed here rather than stacked into a
 * class hierarchy: they are siblings sharing a connection, not layers, and each takes only what
 * it needs. The client, the key layout and the locks stay inside, so no caller learns a key or
 * holds a lock token.
 */
export class SessionStore {
  readonly #redis: Redis;
  readonly #locks: UserLocks;
  readonly #sessions: Sessions;
  readonly #records: SessionRecords;
  readonly #toolHints: ToolHints;
  readonly #routes: Routes;
  readonly #authVerdicts: AuthVerdicts;
  readonly #rateLimit: RateLimit;
  readonly #ipLimits: IpLimits;
  readonly #activity: Activity;
  /** Server-to-client events of live sessions: see EventRelays. */
  readonly relays: EventRelays;
  readonly #eras: BackendEras;
  /** Keyless spare backends (WARM_POOL_SIZE): a concept of its own, with no lock or key to hide. */
  readonly warmPool: WarmPool;

  constructor(redis: Redis, options: SessionStoreOptions) {
    const keys = keyspace(options.prefix ?? "mcpb:");
    const scripts = defineScripts(redis);
    const sessionKeyTtlMs = (options.sessionIdleTtlSeconds + (options.sessionTtlGraceSeconds ?? 300)) * 1000;
    this.#redis = redis;
    this.#locks = new UserLocks(redis, keys, scripts);
    this.#sessions = new Sessions(redis, keys, scripts, sessionKeyTtlMs);
    this.#records = new SessionRecords(redis, keys, scripts, sessionKeyTtlMs);
    this.#toolHints = new ToolHints(redis, keys, scripts);
    this.#routes = new Routes(redis, keys, scripts, this.#locks);
    this.#authVerdicts = new AuthVerdicts(redis, keys, {
      positiveSeconds: options.authPositiveTtlSeconds ?? 600,
      negativeSeconds: options.authNegativeTtlSeconds ?? 30,
    });
    this.#ipLimits = new IpLimits(redis, keys);
    this.#activity = new Activity(redis, keys);
    this.relays = new EventRelays(redis, keys, scripts, sessionKeyTtlMs);
    this.#eras = new BackendEras(redis, keys);
    this.warmPool = new WarmPool(redis, keys, scripts);
    this.#rateLimit = new RateLimit(redis, keys, options.rateLimitPoints ?? 0, options.rateLimitWindowSeconds ?? 60);
  }

  /**
   * Connects to a URL or a target (with sentinels: to their master, and to the next master after
   * a failover); the client reconnects by itself after an outage.
   */
  static connect(target: string | RedisTarget, options: SessionStoreOptions): SessionStore {
    const redis = createRedisClient(target, redisOptions(options.commandTimeoutMs));
    redis.on("error", options.onConnectionError ?? (() => {}));
    return new SessionStore(redis, options);
  }

  async ping(): Promise<void> {
    await guard(() => this.#redis.ping());
  }

  async close(): Promise<void> {
    await this.#locks.close();
    this.#redis.disconnect();
  }

  /** Sessions and routes the idle indexes hold. */
  async counts(): Promise<{ sessions: number; routes: number }> {
    const [sessions, routes] = await Promise.all([this.#sessions.count(), this.#routes.count()]);
    return { sessions, routes };
  }

  // What operators look at (apps/reaper operator view, mcp-broker CLI): see Activity and Sessions.

  /** Counts an event (a recovery, revival or refused replay) in this minute's bucket. */
  countEvent(event: string, now?: number): Promise<void> {
    return this.#activity.count(event, now);
  }
  /** Events counted over the last `minutes` minutes, by name. */
  eventsSince(minutes: number, now?: number): Promise<EventCounts> {
    return this.#activity.since(minutes, now);
  }
  sessionCountsByUser(): Promise<Map<string, number>> {
    return this.#sessions.countByUser();
  }
  sessionsOfUser(userId: string): Promise<BrokerSession[]> {
    return this.#sessions.ofUser(userId);
  }

  // Broker sessions: see Sessions.

  createSession(input: NewSession): Promise<BrokerSession> {
    return this.#sessions.create(input);
  }
  getSession(userId: string, sessionId: string): Promise<BrokerSession | null> {
    return this.#sessions.get(userId, sessionId);
  }
  getPooledSession(userId: string): Promise<BrokerSession | null> {
    return this.#sessions.getPooled(userId);
  }
  useSession(userId: string, sessionId: string): Promise<SessionInUse> {
    return this.#sessions.use(userId, sessionId);
  }
  usePooledSession(userId: string): Promise<SessionInUse> {
    return this.#sessions.usePooled(userId);
  }
  remapSession(userId: string, sessionId: string, expectedUpstream: string, upstream: string): Promise<string | null> {
    return this.#sessions.remap(userId, sessionId, expectedUpstream, upstream);
  }
  /** With `tombstoneTtlMs`, the session's id is never revived within that time (a client's DELETE). */
  deleteSession(
    userId: string,
    sessionId: string,
    tombstoneTtlMs?: number,
  ): Promise<{ upstreamSessionId: string } | null> {
    return this.#sessions.delete(userId, sessionId, tombstoneTtlMs);
  }
  touch(userId: string, sessionId?: string, now = Date.now()): Promise<{ session: boolean; route: boolean }> {
    return this.#sessions.touch(userId, sessionId, now);
  }
  /** Many touches (each with its own time of use) in one round trip: a gateway's batched touches. */
  touchMany(uses: readonly SessionUse[]): Promise<void> {
    return this.#sessions.touchMany(uses);
  }
  claimExpiredSessions(cutoffMs: number, limit: number): Promise<ClaimedSession[]> {
    return this.#sessions.claimExpired(cutoffMs, limit);
  }

  // Reviving sessions and what they replay: see SessionRecords and ToolHints.

  lookupSession(userId: string, sessionId: string): Promise<SessionLookup> {
    return this.#records.lookup(userId, sessionId);
  }
  reviveSession(userId: string, sessionId: string, revival: Revival): Promise<RevivalOutcome> {
    return this.#records.revive(userId, sessionId, revival);
  }
  recordSessionState(userId: string, sessionId: string, change: StateChange): Promise<boolean> {
    return this.#records.recordState(userId, sessionId, change);
  }
  recordToolHints(userId: string, tools: readonly ToolHint[]): Promise<void> {
    return this.#toolHints.record(userId, tools);
  }
  safeTools(userId: string, names: readonly string[]): Promise<Set<string>> {
    return this.#toolHints.safe(userId, names);
  }

  // Protocol eras of backend images: see BackendEras.

  backendEra(image: string): Promise<BackendEra | null> {
    return this.#eras.get(image);
  }
  recordBackendEra(image: string, era: BackendEra, ttlSeconds: number): Promise<void> {
    return this.#eras.set(image, era, ttlSeconds);
  }

  // Routes: see Routes.

  getRoute(userId: string): Promise<Route | null> {
    return this.#routes.get(userId);
  }
  setRoute(input: NewRoute): Promise<Route> {
    return this.#routes.set(input);
  }
  deleteRoute(userId: string, containerId: string): Promise<boolean> {
    return this.#routes.delete(userId, containerId);
  }
  claimIdleRoutes(cutoffMs: number, limit: number, lockTtlMs: number): Promise<ClaimedRoute[]> {
    return this.#routes.claimIdle(cutoffMs, limit, lockTtlMs);
  }
  finishRouteRemoval(claim: ClaimedRoute): Promise<void> {
    return this.#routes.finishRemoval(claim);
  }
  abandonRouteRemoval(claim: ClaimedRoute): Promise<void> {
    return this.#routes.abandonRemoval(claim);
  }
  routeUserIds(pageSize?: number): AsyncGenerator<string[]> {
    return this.#routes.userIds(pageSize);
  }
  markUnrouted(userId: string, containerId: string, now = Date.now()): Promise<UnroutedMark | null> {
    return this.#routes.markUnrouted(userId, containerId, now);
  }
  pruneUnrouted(listedContainerIds: readonly string[]): Promise<void> {
    return this.#routes.pruneUnrouted(listedContainerIds);
  }

  // Per-user locks: see UserLocks.

  /** Runs `work` holding the user's lock, waiting up to `options.timeoutMs` for it. */
  withUserLock<T>(userId: string, options: LockOptions, work: (token: string) => Promise<T>): Promise<T> {
    return this.#locks.withLock(userId, options, work);
  }
  /** Runs `work` holding the user's lock if it is free now; undefined, without running, when it is not. */
  withUserLockIfFree<T>(userId: string, ttlMs: number, work: (token: string) => Promise<T>): Promise<T | undefined> {
    return this.#locks.withLockIfFree(userId, ttlMs, work);
  }

  // Auth verdicts and rate limits: see AuthVerdicts and RateLimit.

  /** The cached verdict of verifying this user's key upstream: true, false, or null (unknown). */
  getAuthVerdict(userId: string): Promise<boolean | null> {
    return this.#authVerdicts.get(userId);
  }
  setAuthVerdict(userId: string, valid: boolean): Promise<void> {
    return this.#authVerdicts.set(userId, valid);
  }
  /** Charges `points` requests (a batch: one per message) against the user's window. */
  consumeRateLimit(userId: string, points = 1): Promise<RateLimitVerdict> {
    return this.#rateLimit.consume(userId, points);
  }
  /** Charges one against a client IP's per-minute budget in `bucket`; 0 per minute: unlimited. */
  consumeIpLimit(bucket: "starts" | "verify", ip: string, perMinute: number): Promise<RateLimitVerdict> {
    return this.#ipLimits.consume(bucket, ip, perMinute);
  }

  // MAX_BACKENDS: see Routes.reserveStart.

  reserveBackendStart(userId: string, max: number, ttlMs: number): Promise<boolean> {
    return this.#routes.reserveStart(userId, max, ttlMs);
  }
  releaseBackendStart(userId: string): Promise<void> {
    return this.#routes.releaseStart(userId);
  }
  /** MAX_BACKENDS full: the LRU idle route with nothing in flight, claimed, its slot passed to `userId`. */
  reclaimIdleBackend(userId: string, cutoffMs: number, reserveTtlMs: number, lockTtlMs: number) {
    return this.#routes.reclaimIdle(userId, cutoffMs, reserveTtlMs, lockTtlMs);
  }
  /** Users with requests or streams in flight on this replica, until `untilMs` (refreshed while they last). */
  markBusy(userIds: readonly string[], untilMs: number): Promise<void> {
    return this.#routes.markBusy(userIds, untilMs);
  }

  /** Redis's `used_memory` and `maxmemory` (0: no limit), from INFO memory. */
  async memory(): Promise<{ used: number; max: number }> {
    const info = await guard(() => this.#redis.info("memory"));
    const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, "m").exec(info)?.[1] ?? Number.NaN);
    return { used: field("used_memory"), max: field("maxmemory") };
  }
}

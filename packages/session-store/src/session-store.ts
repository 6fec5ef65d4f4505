import { randomBytes, randomUUID } from "node:crypto";
import { Redis, type RedisOptions } from "ioredis";
import { RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import { StoreUnavailableError } from "./errors.js";
import { guard } from "./guard.js";
import { type Keyspace, keyspace } from "./keys.js";
import { type LockOptions, UserLocks } from "./locks.js";
import { defineScripts, type StoreScripts } from "./scripts.js";
import type { BrokerSession, ClaimedRoute, ClaimedSession, RateLimitVerdict, Route } from "./types.js";

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
    // Fail a command after one reconnect attempt instead of queueing it forever while Redis is
    // down: the gateway answers 503 + Retry-After and the client retries.
    maxRetriesPerRequest: 1,
    commandTimeout: commandTimeoutMs,
    connectTimeout: 2000,
    retryStrategy: (attempt: number) => Math.min(attempt * 100, 2000),
  } satisfies RedisOptions;
}

const toNumber = (value: string | undefined) => Number(value ?? 0);
/** A Redis flat field/value list as a record. */
function record(flat: string[]): Record<string, string> {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i] as string] = flat[i + 1] as string;
  return fields;
}

const validSessionId = (id: string) => /^[A-Za-z0-9_-]{1,128}$/.test(id);

function sessionFrom(userId: string, id: string, fields: Record<string, string>): BrokerSession | null {
  if (!fields.upstream) return null;
  return {
    id,
    userId,
    upstreamSessionId: fields.upstream,
    initializeParams: JSON.parse(fields.init ?? "null"),
    protocolVersion: fields.proto ?? "",
    createdAt: toNumber(fields.created),
    lastUsedAt: toNumber(fields.lastUsed),
  };
}

function routeFrom(userId: string, fields: Record<string, string>): Route | null {
  if (!fields.containerId || !fields.endpoint) return null;
  return {
    userId,
    containerId: fields.containerId,
    endpoint: fields.endpoint,
    state: fields.state === "stopping" ? "stopping" : "ready",
    createdAt: toNumber(fields.created),
    lastUsedAt: toNumber(fields.lastUsed),
  };
}

/**
 * Everything the broker keeps in Redis. The gateway and the reaper call this; nothing else
 * knows a key. Every multi-key write is one Lua script or MULTI.
 */
export class SessionStore {
  readonly keys: Keyspace;
  readonly locks: UserLocks;
  readonly #scripts: StoreScripts;
  readonly #sessionKeyTtlMs: number;
  readonly #limiter: RateLimiterRedis | undefined;

  constructor(
    readonly redis: Redis,
    private readonly options: SessionStoreOptions,
  ) {
    this.keys = keyspace(options.prefix ?? "mcpb:");
    this.#scripts = defineScripts(redis);
    this.locks = new UserLocks(redis, this.keys, this.#scripts);
    this.#sessionKeyTtlMs = (options.sessionIdleTtlSeconds + (options.sessionTtlGraceSeconds ?? 300)) * 1000;
    if (options.rateLimitPoints && options.rateLimitPoints > 0) {
      this.#limiter = new RateLimiterRedis({
        storeClient: redis,
        keyPrefix: this.keys.rateLimitPrefix,
        points: options.rateLimitPoints,
        duration: options.rateLimitWindowSeconds ?? 60,
      });
    }
  }

  /** Connects to `url`; the client reconnects by itself after an outage. */
  static connect(url: string, options: SessionStoreOptions): SessionStore {
    const redis = new Redis(url, redisOptions(options.commandTimeoutMs));
    redis.on("error", options.onConnectionError ?? (() => {}));
    return new SessionStore(redis, options);
  }

  async ping(): Promise<void> {
    await guard(() => this.redis.ping());
  }

  async close(): Promise<void> {
    await this.locks.close();
    this.redis.disconnect();
  }

  // --- broker sessions -------------------------------------------------------------------

  /** Stores a new broker session for `userId`; `pooled` also makes it the user's pooled session. */
  async createSession(input: {
    userId: string;
    upstreamSessionId: string;
    initializeParams: unknown;
    protocolVersion: string;
    pooled?: boolean;
  }): Promise<BrokerSession> {
    const now = Date.now();
    const session: BrokerSession = {
      id: randomBytes(24).toString("base64url"),
      userId: input.userId,
      upstreamSessionId: input.upstreamSessionId,
      initializeParams: input.initializeParams,
      protocolVersion: input.protocolVersion,
      createdAt: now,
      lastUsedAt: now,
    };
    const key = this.keys.session(session.userId, session.id);
    const multi = this.redis
      .multi()
      .hset(key, {
        upstream: session.upstreamSessionId,
        init: JSON.stringify(session.initializeParams ?? null),
        proto: session.protocolVersion,
        created: now,
        lastUsed: now,
      })
      .pexpire(key, this.#sessionKeyTtlMs)
      .zadd(this.keys.sessionsIndex, now, this.keys.sessionMember(session.userId, session.id));
    if (input.pooled) multi.set(this.keys.pooled(session.userId), session.id, "PX", this.#sessionKeyTtlMs);
    await guard(() => multi.exec());
    return session;
  }

  /** The session, if it exists and belongs to `userId`; another user's id reads as absent. */
  async getSession(userId: string, sessionId: string): Promise<BrokerSession | null> {
    if (!validSessionId(sessionId)) return null;
    const fields = await guard(() => this.redis.hgetall(this.keys.session(userId, sessionId)));
    return sessionFrom(userId, sessionId, fields);
  }

  /**
   * The hot path of a request on a known session: reads the session and the user's route and
   * marks both used (as `touch`), in one round trip.
   */
  async useSession(userId: string, sessionId: string): Promise<{ session: BrokerSession | null; route: Route | null }> {
    if (!validSessionId(sessionId)) return { session: null, route: null };
    const now = Date.now();
    const pipeline = this.redis
      .pipeline()
      .hgetall(this.keys.session(userId, sessionId))
      .hgetall(this.keys.route(userId)) as unknown as {
      exec(): Promise<[Error | null, unknown][] | null>;
    } & StoreScripts;
    pipeline.touchActivity(...this.#touchArgs(userId, sessionId, now));
    const results = await guard(() => pipeline.exec());
    const failed = results?.find(([error]) => error);
    if (!results || failed) throw failed?.[0] ?? new Error("empty pipeline result");
    return {
      session: sessionFrom(userId, sessionId, results[0]?.[1] as Record<string, string>),
      route: routeFrom(userId, results[1]?.[1] as Record<string, string>),
    };
  }

  /**
   * The hot path of a session-less request: the user's pooled session (if alive) and route,
   * both marked used, in one round trip.
   */
  async usePooledSession(userId: string): Promise<{ session: BrokerSession | null; route: Route | null }> {
    const [id, session, route] = await guard(() =>
      this.#scripts.usePooled(
        this.keys.pooled(userId),
        this.keys.route(userId),
        this.keys.sessionsIndex,
        this.keys.routesIndex,
        Date.now(),
        this.#sessionKeyTtlMs,
        userId,
        this.keys.user(userId),
      ),
    );
    return {
      session: id ? sessionFrom(userId, id, record(session)) : null,
      route: routeFrom(userId, record(route)),
    };
  }

  /** The user's pooled session (for clients that send no session id), if it is still alive. */
  async getPooledSession(userId: string): Promise<BrokerSession | null> {
    const id = await guard(() => this.redis.get(this.keys.pooled(userId)));
    return id ? this.getSession(userId, id) : null;
  }

  /**
   * Points the session at a new upstream session if it still points at `expectedUpstream`.
   * Returns the upstream id the session has afterwards (someone else's, when they won a race),
   * or null when the session is gone.
   */
  async remapSession(userId: string, sessionId: string, expectedUpstream: string, upstream: string) {
    return guard(() => this.#scripts.remapSession(this.keys.session(userId, sessionId), expectedUpstream, upstream));
  }

  /** Deletes the session; returns what it pointed at upstream, or null when it did not exist. */
  async deleteSession(userId: string, sessionId: string): Promise<{ upstreamSessionId: string } | null> {
    const result = await guard(() =>
      this.#scripts.deleteSession(
        this.keys.session(userId, sessionId),
        this.keys.pooled(userId),
        this.keys.sessionsIndex,
        sessionId,
        this.keys.sessionMember(userId, sessionId),
      ),
    );
    return result ? { upstreamSessionId: result[0] } : null;
  }

  // --- routes ----------------------------------------------------------------------------

  async getRoute(userId: string): Promise<Route | null> {
    return routeFrom(userId, await guard(() => this.redis.hgetall(this.keys.route(userId))));
  }

  /** Records the user's ready container and puts it in the idle index. */
  async setRoute(input: { userId: string; containerId: string; endpoint: string }): Promise<Route> {
    const now = Date.now();
    const key = this.keys.route(input.userId);
    await guard(() =>
      this.redis
        .multi()
        .del(key)
        .hset(key, {
          containerId: input.containerId,
          endpoint: input.endpoint,
          state: "ready",
          created: now,
          lastUsed: now,
        })
        .zadd(this.keys.routesIndex, now, input.userId)
        .exec(),
    );
    return { ...input, state: "ready", createdAt: now, lastUsedAt: now };
  }

  /** Drops the route if it still names `containerId` (a stale route whose container is gone). */
  async deleteRoute(userId: string, containerId: string): Promise<boolean> {
    const removed = await guard(() =>
      this.#scripts.finishRoute(
        this.keys.route(userId),
        this.keys.lock(userId),
        containerId,
        "",
        this.keys.lockReleased,
      ),
    );
    if (removed === 1) await guard(() => this.redis.zrem(this.keys.routesIndex, userId));
    return removed === 1;
  }

  // --- use and expiry --------------------------------------------------------------------

  /**
   * Marks the user's session (when given) and route as used now, renewing the session's TTL
   * and both idle-index scores in one round trip. Reports what still existed to be touched.
   */
  async touch(userId: string, sessionId?: string, now = Date.now()): Promise<{ session: boolean; route: boolean }> {
    const [session, route] = await guard(() => this.#scripts.touchActivity(...this.#touchArgs(userId, sessionId, now)));
    return { session: session === 1, route: route === 1 };
  }

  #touchArgs(userId: string, sessionId: string | undefined, now: number): (string | number)[] {
    return [
      sessionId ? this.keys.session(userId, sessionId) : this.keys.session(userId, "-"),
      this.keys.pooled(userId),
      this.keys.sessionsIndex,
      this.keys.routesIndex,
      this.keys.route(userId),
      now,
      this.#sessionKeyTtlMs,
      sessionId ?? "",
      userId,
    ];
  }

  /** Removes and returns up to `limit` sessions last used before `cutoffMs` (atomic with touch). */
  async claimExpiredSessions(cutoffMs: number, limit: number): Promise<ClaimedSession[]> {
    const flat = await guard(() =>
      this.#scripts.claimSessions(this.keys.sessionsIndex, cutoffMs, limit, this.keys.prefix),
    );
    const claimed: ClaimedSession[] = [];
    for (let i = 0; i + 3 < flat.length; i += 4) {
      claimed.push({
        userId: flat[i] as string,
        sessionId: flat[i + 1] as string,
        upstreamSessionId: flat[i + 2] as string,
        protocolVersion: flat[i + 3] as string,
      });
    }
    return claimed;
  }

  /**
   * Claims up to `limit` routes last used before `cutoffMs` for removal: each claim holds the
   * user's lock and marks the route stopping. Call `finishRouteRemoval` once the container is gone.
   */
  async claimIdleRoutes(cutoffMs: number, limit: number, lockTtlMs: number): Promise<ClaimedRoute[]> {
    const lockToken = randomUUID();
    const flat = await guard(() =>
      this.#scripts.claimRoutes(this.keys.routesIndex, cutoffMs, limit, this.keys.prefix, lockToken, lockTtlMs),
    );
    const claimed: ClaimedRoute[] = [];
    for (let i = 0; i + 2 < flat.length; i += 3) {
      claimed.push({
        userId: flat[i] as string,
        containerId: flat[i + 1] as string,
        endpoint: flat[i + 2] as string,
        lockToken,
      });
    }
    return claimed;
  }

  /** Drops a claimed route (if it still names the container) and releases the claim's lock. */
  async finishRouteRemoval(claim: ClaimedRoute): Promise<void> {
    await guard(() =>
      this.#scripts.finishRoute(
        this.keys.route(claim.userId),
        this.keys.lock(claim.userId),
        claim.containerId,
        claim.lockToken,
        this.keys.lockReleased,
      ),
    );
  }

  /** Gives a claimed route back (its container refused to stop): ready again, lock released. */
  async abandonRouteRemoval(claim: ClaimedRoute): Promise<void> {
    const key = this.keys.route(claim.userId);
    await guard(async () => {
      if ((await this.redis.hget(key, "containerId")) === claim.containerId) {
        await this.redis
          .multi()
          .hset(key, "state", "ready")
          .zadd(this.keys.routesIndex, Date.now(), claim.userId)
          .exec();
      }
    });
    await this.locks.release(claim.userId, claim.lockToken);
  }

  /** Every user with a route, a page at a time (ZSCAN: no blocking scan of the keyspace). */
  async *routeUserIds(pageSize = 500): AsyncGenerator<string[]> {
    let cursor = "0";
    do {
      const [next, flat] = await guard(() => this.redis.zscan(this.keys.routesIndex, cursor, "COUNT", pageSize));
      cursor = next;
      const users = flat.filter((_, i) => i % 2 === 0);
      if (users.length > 0) yield users;
    } while (cursor !== "0");
  }

  /** Sessions and routes the idle indexes hold. */
  async counts(): Promise<{ sessions: number; routes: number }> {
    const [sessions, routes] = await guard(() =>
      Promise.all([this.redis.zcard(this.keys.sessionsIndex), this.redis.zcard(this.keys.routesIndex)]),
    );
    return { sessions, routes };
  }

  // --- locks -----------------------------------------------------------------------------

  withUserLock<T>(userId: string, options: LockOptions, work: (token: string) => Promise<T>): Promise<T> {
    return this.locks.withLock(userId, options, work);
  }

  // --- auth verdicts and rate limits -----------------------------------------------------

  /** The cached verdict of verifying this user's key upstream: true, false, or null (unknown). */
  async getAuthVerdict(userId: string): Promise<boolean | null> {
    const value = await guard(() => this.redis.get(this.keys.auth(userId)));
    return value === null ? null : value === "1";
  }

  async setAuthVerdict(userId: string, valid: boolean): Promise<void> {
    const ttl = valid ? (this.options.authPositiveTtlSeconds ?? 600) : (this.options.authNegativeTtlSeconds ?? 30);
    await guard(() => this.redis.set(this.keys.auth(userId), valid ? "1" : "0", "EX", ttl));
  }

  /** Counts one request against the user's window (rate-limiter-flexible, atomic in Redis). */
  async consumeRateLimit(userId: string): Promise<RateLimitVerdict> {
    if (!this.#limiter) return { allowed: true, remaining: Number.POSITIVE_INFINITY };
    try {
      const result = await this.#limiter.consume(userId);
      return { allowed: true, remaining: result.remainingPoints };
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) return { allowed: false, retryAfterMs: rejection.msBeforeNext };
      throw new StoreUnavailableError(rejection);
    }
  }
}

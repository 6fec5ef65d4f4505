import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import { guard, guardExec } from "./guard.js";
import { fieldsOf, routeFrom, sessionFrom, sessionHash } from "./hashes.js";
import type { Keyspace } from "./keys.js";
import type { StoreScripts } from "./scripts.js";
import type { BrokerSession, ClaimedSession, Route } from "./types.js";

export interface NewSession {
  /** The session's id: a client session's token nonce; a random one when absent. */
  id?: string;
  userId: string;
  upstreamSessionId: string;
  /** Replayed when the upstream session must be re-created; null: not stored (the token carries them). */
  initializeParams: unknown;
  protocolVersion: string;
  /**
   * When the client's token expires (ms): marks a client's session, of which the reaper keeps a
   * record until then when it releases the mapping (docs/architecture.md#sessions).
   */
  expiresAt?: number;
  pooled?: boolean;
  /** MAX_SESSIONS_PER_USER: the user's oldest client sessions beyond this are released. */
  maxPerUser?: number;
}

/** A use of a user's route (and session, when given) at `at` (ms), for `touchMany`. */
export interface SessionUse {
  userId: string;
  sessionId?: string | undefined;
  at: number;
}

export type SessionInUse = { session: BrokerSession | null; route: Route | null };

/** Client-supplied ids reach key names: anything else could address another key. */
export const validSessionId = (id: string) => /^[A-Za-z0-9_-]{1,128}$/.test(id);

/**
 * Broker sessions: each maps a client's session to the upstream server's, lives in a hash with
 * a TTL, and is scored by last use in the sessions idle index. Using a session also marks the
 * user's route used, in the same round trip, because every request that needs one needs both.
 */
export class Sessions {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keyspace,
    private readonly scripts: StoreScripts,
    /** Session keys outlive the idle limit by a grace, so the reaper normally ends them first. */
    private readonly keyTtlMs: number,
  ) {}

  /** Stores a new broker session for `userId`; `pooled` also makes it the user's pooled session. */
  async create(input: NewSession): Promise<BrokerSession> {
    if (input.id !== undefined && !validSessionId(input.id)) throw new TypeError("invalid session id");
    const now = Date.now();
    const session: BrokerSession = {
      id: input.id ?? randomBytes(24).toString("base64url"),
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
      .hset(key, { ...sessionHash(session), ...(input.expiresAt ? { exp: input.expiresAt } : {}) })
      .pexpire(key, this.keyTtlMs)
      .zadd(this.keys.sessionsIndex, now, this.keys.sessionMember(session.userId, session.id));
    if (input.pooled) multi.set(this.keys.pooled(session.userId), session.id, "PX", this.keyTtlMs);
    await guardExec(multi);
    if (input.maxPerUser) await this.#cap(session, input.maxPerUser);
    return session;
  }

  /**
   * Releases the user's oldest sessions beyond `max`: their mappings go (no tombstone), so a
   * client still holding one gets a fresh upstream session on its next request, evicting another.
   */
  async #cap(session: BrokerSession, max: number): Promise<void> {
    const key = this.keys.userSessions(session.userId);
    const released = await guard(() =>
      this.scripts.capSessions(key, session.id, session.createdAt, max, this.keyTtlMs),
    );
    for (const id of released) await this.delete(session.userId, id);
  }

  /** The session, if it exists and belongs to `userId`; another user's id reads as absent. */
  async get(userId: string, sessionId: string): Promise<BrokerSession | null> {
    if (!validSessionId(sessionId)) return null;
    const fields = await guard(() => this.redis.hgetall(this.keys.session(userId, sessionId)));
    return sessionFrom(userId, sessionId, fields);
  }

  /** The user's pooled session (for clients that send no session id), if it is still alive. */
  async getPooled(userId: string): Promise<BrokerSession | null> {
    const id = await guard(() => this.redis.get(this.keys.pooled(userId)));
    return id ? this.get(userId, id) : null;
  }

  /**
   * The hot path of a request on a known session: reads the session and the user's route and
   * marks both used (as `touch`), in one round trip.
   */
  async use(userId: string, sessionId: string): Promise<SessionInUse> {
    if (!validSessionId(sessionId)) return { session: null, route: null };
    const pipeline = this.redis
      .pipeline()
      .hgetall(this.keys.session(userId, sessionId))
      .hgetall(this.keys.route(userId)) as unknown as {
      exec(): Promise<[Error | null, unknown][] | null>;
    } & StoreScripts;
    pipeline.touchActivity(...this.#touchArgs(userId, sessionId, Date.now()));
    const results = await guardExec(pipeline);
    return {
      session: sessionFrom(userId, sessionId, results[0]?.[1] as Record<string, string>),
      route: routeFrom(userId, results[1]?.[1] as Record<string, string>),
    };
  }

  /**
   * The hot path of a session-less request: the user's pooled session (if alive) and route,
   * both marked used, in one round trip.
   */
  async usePooled(userId: string): Promise<SessionInUse> {
    const [id, session, route] = await guard(() =>
      this.scripts.usePooled(
        this.keys.pooled(userId),
        this.keys.route(userId),
        this.keys.sessionsIndex,
        this.keys.routesIndex,
        Date.now(),
        this.keyTtlMs,
        userId,
        ...this.keys.layout,
      ),
    );
    return {
      session: id ? sessionFrom(userId, id, fieldsOf(session)) : null,
      route: routeFrom(userId, fieldsOf(route)),
    };
  }

  /**
   * Points the session at a new upstream session if it still points at `expectedUpstream`.
   * Returns the upstream id the session has afterwards (someone else's, when they won a race),
   * or null when the session is gone.
   */
  async remap(userId: string, sessionId: string, expectedUpstream: string, upstream: string): Promise<string | null> {
    return guard(() => this.scripts.remapSession(this.keys.session(userId, sessionId), expectedUpstream, upstream));
  }

  /**
   * Deletes the session (its mapping, or the record the reaper kept); returns what it pointed at
   * upstream ("" for a record), or null when there was nothing. With `tombstoneTtlMs`, its id is
   * never revived within that time.
   */
  async delete(userId: string, sessionId: string, tombstoneTtlMs = 0): Promise<{ upstreamSessionId: string } | null> {
    if (!validSessionId(sessionId)) return null;
    const result = await guard(() =>
      this.scripts.deleteSession(
        this.keys.session(userId, sessionId),
        this.keys.pooled(userId),
        this.keys.sessionsIndex,
        this.keys.tombstone(userId, sessionId),
        sessionId,
        this.keys.sessionMember(userId, sessionId),
        Math.max(0, Math.ceil(tombstoneTtlMs)),
      ),
    );
    return result ? { upstreamSessionId: result[0] } : null;
  }

  /**
   * Marks the user's session (when given) and route as used now, renewing the session's TTL
   * and both idle-index scores in one round trip. Reports what still existed to be touched.
   */
  async touch(userId: string, sessionId?: string, now = Date.now()): Promise<{ session: boolean; route: boolean }> {
    const [session, route] = await guard(() => this.scripts.touchActivity(...this.#touchArgs(userId, sessionId, now)));
    return { session: session === 1, route: route === 1 };
  }

  /**
   * `touch` for many sessions in one round trip (a gateway's batched touches), each with the time
   * it was last used. A session or route the reaper claimed meanwhile is not brought back.
   */
  async touchMany(uses: readonly SessionUse[]): Promise<void> {
    if (uses.length === 0) return;
    const pipeline = this.redis.pipeline() as unknown as {
      exec(): Promise<[Error | null, unknown][] | null>;
    } & StoreScripts;
    for (const use of uses) pipeline.touchActivity(...this.#touchArgs(use.userId, use.sessionId, use.at));
    await guardExec(pipeline);
  }

  #touchArgs(userId: string, sessionId: string | undefined, now: number): (string | number)[] {
    return [
      // Without a session the script still takes five keys; this one, in the user's slot, is never read.
      this.keys.session(userId, sessionId || "-"),
      this.keys.pooled(userId),
      this.keys.sessionsIndex,
      this.keys.routesIndex,
      this.keys.route(userId),
      now,
      this.keyTtlMs,
      sessionId ?? "",
      userId,
      sessionId ? this.keys.sessionMember(userId, sessionId) : "",
    ];
  }

  /** Sessions the idle index holds. */
  async count(): Promise<number> {
    return guard(() => this.redis.zcard(this.keys.sessionsIndex));
  }

  /**
   * Sessions per user, from one pass over the idle index (ZSCAN, a page at a time): for the
   * operator view, never the request path.
   */
  async countByUser(pageSize = 1000): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    let cursor = "0";
    do {
      const [next, flat] = await guard(() => this.redis.zscan(this.keys.sessionsIndex, cursor, "COUNT", pageSize));
      cursor = next;
      for (let i = 0; i < flat.length; i += 2) {
        const userId = (flat[i] as string).split(":", 1)[0] as string;
        counts.set(userId, (counts.get(userId) ?? 0) + 1);
      }
    } while (cursor !== "0");
    return counts;
  }

  /** One user's live sessions, most recently used first (user ids are hex: no glob characters). */
  async ofUser(userId: string): Promise<BrokerSession[]> {
    const member = this.keys.sessionMember(userId, "");
    const ids: string[] = [];
    let cursor = "0";
    do {
      const [next, flat] = await guard(() =>
        this.redis.zscan(this.keys.sessionsIndex, cursor, "MATCH", `${member}*`, "COUNT", 1000),
      );
      cursor = next;
      for (let i = 0; i < flat.length; i += 2) ids.push((flat[i] as string).slice(member.length));
    } while (cursor !== "0");
    const sessions = await Promise.all(ids.map((id) => this.get(userId, id)));
    return sessions.filter((session) => session !== null).sort((a, b) => b.lastUsedAt - a.lastUsedAt);
  }

  /** Removes and returns up to `limit` sessions last used before `cutoffMs` (atomic with touch). */
  async claimExpired(cutoffMs: number, limit: number): Promise<ClaimedSession[]> {
    const flat = await guard(() =>
      this.scripts.claimSessions(this.keys.sessionsIndex, cutoffMs, limit, ...this.keys.layout),
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
}

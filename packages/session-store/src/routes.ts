import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { guard, guardExec } from "./guard.js";
import { routeFrom, routeHash } from "./hashes.js";
import type { Keyspace } from "./keys.js";
import type { UserLocks } from "./locks.js";
import type { StoreScripts } from "./scripts.js";
import type { ClaimedRoute, Route, UnroutedMark } from "./types.js";

export interface NewRoute {
  userId: string;
  containerId: string;
  endpoint: string;
  /** How long getting the server ready took (ms), shown to operators (apps/reaper operator view). */
  coldStartMs?: number;
}

/**
 * Routes: where each user's MCP server runs, scored by last use in the routes idle index. The
 * reaper claims idle routes under the user's lock, so no gateway starts or recovers that user's
 * container while it is being stopped.
 */
export class Routes {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keyspace,
    private readonly scripts: StoreScripts,
    private readonly locks: UserLocks,
  ) {}

  async get(userId: string): Promise<Route | null> {
    return routeFrom(userId, await guard(() => this.redis.hgetall(this.keys.route(userId))));
  }

  /**
   * Records the user's ready container and puts it in the idle index. A container routed again
   * (re-adopted after Redis lost its route) loses its unrouted mark, so a later loss starts the
   * orphan count afresh.
   */
  async set(input: NewRoute): Promise<Route> {
    const now = Date.now();
    const { coldStartMs, ...where } = input;
    const route: Route = {
      ...where,
      state: "ready",
      createdAt: now,
      lastUsedAt: now,
      ...(coldStartMs === undefined ? {} : { coldStartMs }),
    };
    const key = this.keys.route(input.userId);
    await guardExec(
      this.redis
        .multi()
        .del(key)
        .hset(key, routeHash(route))
        .zadd(this.keys.routesIndex, now, input.userId)
        .zrem(this.keys.backendStarts, input.userId)
        .hdel(this.keys.unrouted, input.containerId),
    );
    return route;
  }

  /**
   * A sweep's sighting of a managed container (docs/architecture.md#reaper): null, with its mark
   * cleared, when the user's route names it; otherwise when sweeps first saw it unrouted and in
   * how many sweeps.
   */
  async markUnrouted(userId: string, containerId: string, now: number): Promise<UnroutedMark | null> {
    const mark = await guard(() =>
      this.scripts.markUnrouted(this.keys.route(userId), this.keys.unrouted, containerId, Math.floor(now)),
    );
    return mark ? { firstSeenAt: Number(mark[0]), sweeps: mark[1] } : null;
  }

  /** Drops the marks of containers not in `containerIds` (the engine's listing): keeps the marks bounded. */
  async pruneUnrouted(containerIds: readonly string[]): Promise<void> {
    const listed = new Set(containerIds);
    const gone = (await guard(() => this.redis.hkeys(this.keys.unrouted))).filter((id) => !listed.has(id));
    if (gone.length > 0) await guard(() => this.redis.hdel(this.keys.unrouted, ...gone));
  }

  /** Drops the route if it still names `containerId` (a stale route whose container is gone). */
  async delete(userId: string, containerId: string): Promise<boolean> {
    const removed = await guard(() =>
      this.scripts.finishRoute(
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

  /**
   * Claims up to `limit` routes last used before `cutoffMs` for removal: each claim holds the
   * user's lock and marks the route stopping. Call `finishRemoval` once the container is gone.
   */
  async claimIdle(cutoffMs: number, limit: number, lockTtlMs: number): Promise<ClaimedRoute[]> {
    const lockToken = randomUUID();
    const flat = await guard(() =>
      this.scripts.claimRoutes(this.keys.routesIndex, cutoffMs, limit, lockToken, lockTtlMs, ...this.keys.layout),
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
  async finishRemoval(claim: ClaimedRoute): Promise<void> {
    await guard(() =>
      this.scripts.finishRoute(
        this.keys.route(claim.userId),
        this.keys.lock(claim.userId),
        claim.containerId,
        claim.lockToken,
        this.keys.lockReleased,
      ),
    );
  }

  /** Gives a claimed route back (its container refused to stop): ready again, lock released. */
  async abandonRemoval(claim: ClaimedRoute): Promise<void> {
    const key = this.keys.route(claim.userId);
    if ((await guard(() => this.redis.hget(key, "containerId"))) === claim.containerId) {
      await guardExec(
        this.redis.multi().hset(key, "state", "ready").zadd(this.keys.routesIndex, Date.now(), claim.userId),
      );
    }
    await this.locks.release(claim.userId, claim.lockToken);
  }

  /**
   * MAX_BACKENDS: true when the user's backend runs or may start (a slot is reserved for
   * `ttlMs`, or until `set`/`releaseStart`); false when running plus starting reach `max`.
   */
  async reserveStart(userId: string, max: number, ttlMs: number): Promise<boolean> {
    const reserved = await guard(() =>
      this.scripts.reserveBackend(
        this.keys.routesIndex,
        this.keys.backendStarts,
        this.keys.spares,
        this.keys.spareStarts,
        userId,
        max,
        Date.now(),
        ttlMs,
      ),
    );
    return reserved === 1;
  }

  /**
   * MAX_BACKENDS is full: claims the least recently used route idle since before `cutoffMs`
   * whose user has nothing in flight (`markBusy`), and gives its slot to `userId` as a start
   * reservation, in one step. The claim is the reaper's: remove the container, then
   * `finishRemoval`. Null when no backend may be reclaimed.
   */
  async reclaimIdle(
    userId: string,
    cutoffMs: number,
    reserveTtlMs: number,
    lockTtlMs: number,
  ): Promise<ClaimedRoute | null> {
    const lockToken = randomUUID();
    const [victim, containerId, endpoint] = await guard(() =>
      this.scripts.reclaimRoute(
        this.keys.routesIndex,
        this.keys.backendStarts,
        this.keys.busyUsers,
        Math.floor(cutoffMs),
        Date.now(),
        userId,
        reserveTtlMs,
        lockToken,
        lockTtlMs,
        ...this.keys.layout,
      ),
    );
    return victim ? { userId: victim, containerId: containerId ?? "", endpoint: endpoint ?? "", lockToken } : null;
  }

  /** Marks users as having a request or stream in flight until `untilMs`: `reclaimIdle` passes them by. */
  async markBusy(userIds: readonly string[], untilMs: number): Promise<void> {
    if (userIds.length === 0) return;
    await guard(() => this.redis.zadd(this.keys.busyUsers, ...userIds.flatMap((id) => [Math.floor(untilMs), id])));
  }

  /** Gives back a reservation whose start failed. */
  async releaseStart(userId: string): Promise<void> {
    await guard(() => this.redis.zrem(this.keys.backendStarts, userId));
  }

  /** Routes the idle index holds. */
  async count(): Promise<number> {
    return guard(() => this.redis.zcard(this.keys.routesIndex));
  }

  /** Every user with a route, a page at a time (ZSCAN: no blocking scan of the keyspace). */
  async *userIds(pageSize = 500): AsyncGenerator<string[]> {
    let cursor = "0";
    do {
      const [next, flat] = await guard(() => this.redis.zscan(this.keys.routesIndex, cursor, "COUNT", pageSize));
      cursor = next;
      const users = flat.filter((_, i) => i % 2 === 0);
      if (users.length > 0) yield users;
    } while (cursor !== "0");
  }
}

import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { guard, guardExec } from "./guard.js";
import type { Keyspace } from "./keys.js";
import type { StoreScripts } from "./scripts.js";

/**
 * The MCP session a spare's warm-up opened (with the broker's own `initialize`, no key) and
 * left open: its claimant adopts it as the user's pooled session instead of opening one.
 */
export interface WarmSession {
  id: string;
  protocolVersion: string;
}

/** A ready keyless backend of the warm pool. */
export interface Spare {
  containerId: string;
  endpoint: string;
  createdAt: number;
  /** Absent when the warm-up failed, or the spare was pooled by a replica that keeps none. */
  warmSession?: WarmSession;
}

const warmOf = (value: string | null): WarmSession | undefined => {
  const [id, protocolVersion] = (value ?? "").split(" ");
  return id && protocolVersion ? { id, protocolVersion } : undefined;
};

const entryOf = (spare: Spare) => `${spare.containerId} ${Math.floor(spare.createdAt)} ${spare.endpoint}`;

function spareFrom(entry: string): Spare {
  const [containerId = "", createdAt = "0", ...endpoint] = entry.split(" ");
  return { containerId, createdAt: Number(createdAt), endpoint: endpoint.join(" ") };
}

/**
 * The warm pool in Redis (docs/architecture.md#warm-pool): spares started without a key, each
 * taken by exactly one user in one atomic step, refilled by any replica without ever holding
 * more than the pool size, all counted by MAX_BACKENDS. A spare enters the pool only from
 * `addSpare` after a fresh start: nothing that served a user ever goes back.
 */
export class WarmPool {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keyspace,
    private readonly scripts: StoreScripts,
  ) {}

  /** A ticket to start one spare, or null when ready plus starting spares reach `size` or backends reach `maxBackends`. */
  async reserveStart(size: number, maxBackends: number, ttlMs: number): Promise<string | null> {
    const ticket = randomUUID();
    const { routesIndex, backendStarts, spares, spareStarts } = this.keys;
    const reserved = await guard(() =>
      this.scripts.reserveSpare(
        routesIndex,
        backendStarts,
        spares,
        spareStarts,
        ticket,
        size,
        maxBackends,
        Date.now(),
        ttlMs,
      ),
    );
    return reserved === 1 ? ticket : null;
  }

  /** Pools a started spare; false when the pool filled meanwhile (the caller removes the container). */
  async add(ticket: string, spare: Spare, size: number): Promise<boolean> {
    const { spares, spareStarts, spareSessions } = this.keys;
    const warm = spare.warmSession ? `${spare.warmSession.id} ${spare.warmSession.protocolVersion}` : "";
    const added = await guard(() =>
      this.scripts.addSpare(spares, spareStarts, spareSessions, ticket, entryOf(spare), size, warm),
    );
    return added === 1;
  }

  /** Gives back a ticket whose start failed. */
  async cancelStart(ticket: string): Promise<void> {
    await guard(() => this.redis.zrem(this.keys.spareStarts, ticket));
  }

  /**
   * Takes the oldest spare for `userId` (one Redis script: no spare goes to two users), binds it
   * to the user and passes its MAX_BACKENDS slot on as the user's start reservation; with it
   * goes its warm session, if it has one.
   */
  async claim(userId: string, reserveTtlMs: number): Promise<Spare | null> {
    const { spares, spareOwners, backendStarts, spareSessions } = this.keys;
    const claimed = await guard(() =>
      this.scripts.claimSpare(spares, spareOwners, backendStarts, spareSessions, userId, Date.now(), reserveTtlMs),
    );
    if (!claimed) return null;
    const [entry, warm] = claimed;
    const warmSession = warmOf(warm);
    return { ...spareFrom(entry), ...(warmSession ? { warmSession } : {}) };
  }

  /** Ready spares, oldest first. */
  async list(): Promise<Spare[]> {
    return (await guard(() => this.redis.lrange(this.keys.spares, 0, -1))).map(spareFrom);
  }

  /** Spares being started now (reservations not lapsed). */
  async starting(): Promise<number> {
    return guard(() => this.redis.zcount(this.keys.spareStarts, Date.now(), "+inf"));
  }

  /** The user a claimed spare serves, or null (never claimed, or its binding was pruned). */
  async owner(containerId: string): Promise<string | null> {
    return guard(() => this.redis.hget(this.keys.spareOwners, containerId));
  }

  /** Drops a spare from the pool (its container is gone or refused): true when it was there. */
  async drop(containerId: string): Promise<boolean> {
    const entry = (await this.list()).find((spare) => spare.containerId === containerId);
    if (!entry) return false;
    const batch = this.redis
      .multi()
      .lrem(this.keys.spares, 1, entryOf(entry))
      .hdel(this.keys.spareSessions, containerId);
    const [[, removed]] = (await guardExec(batch)) as [[null, number], ...unknown[]];
    return removed > 0;
  }

  /**
   * Drops bindings and warm sessions of containers not in `containerIds` (the engine's
   * listing): keeps both bounded.
   */
  async pruneOwners(containerIds: readonly string[]): Promise<void> {
    const listed = new Set(containerIds);
    for (const hash of [this.keys.spareOwners, this.keys.spareSessions]) {
      const gone = (await guard(() => this.redis.hkeys(hash))).filter((id) => !listed.has(id));
      if (gone.length > 0) await guard(() => this.redis.hdel(hash, ...gone));
    }
  }
}

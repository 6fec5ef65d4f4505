import type { Redis } from "ioredis";
import { guard } from "./guard.js";
import type { Keyspace } from "./keys.js";
import type { StoreScripts } from "./scripts.js";

/** How much one session's relay keeps: the oldest entries go first when either bound is passed. */
export interface RelayBounds {
  maxEntries: number;
  maxBytes: number;
}

/** One server-to-client message as the relay holds it; `id` is the Redis stream entry id. */
export interface RelayedEvent {
  id: string;
  data: string;
}

/** What the relay knows of a session besides its events. */
export interface RelayState {
  /** The newest entry written to a client's GET stream; null before the first. */
  delivered: string | null;
  /** The upstream session and SSE event id the last relayed event came from (upstream resumption). */
  upstream: string | null;
  upstreamEvent: string | null;
  /** The status the server refused its GET stream with (405: it offers none); null otherwise. */
  refused: number | null;
}

/** A session's relay, as a reader names it. */
export interface RelayCursor {
  userId: string;
  sessionId: string;
  /** Read entries after this id ("0-0": from the oldest kept). */
  after: string;
}

/**
 * Server-to-client messages of each live session, relayed from the session's upstream GET
 * stream into a bounded Redis Stream that a client GET on any replica reads from
 * (docs/architecture.md#server-to-client-streams). One replica holds each session's upstream
 * stream, under a lease; only the holder may append, so a replica that lost its lease cannot
 * write what its successor writes too.
 */
export class EventRelays {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keyspace,
    private readonly scripts: StoreScripts,
    /** The relay lives as long as a session key does: refreshed while its upstream stream is held. */
    private readonly ttlMs: number,
  ) {}

  /** Takes the session's lease if nobody holds it. */
  async acquire(userId: string, sessionId: string, owner: string, leaseMs: number): Promise<boolean> {
    const ok = await guard(() => this.redis.set(this.keys.relayLease(userId, sessionId), owner, "PX", leaseMs, "NX"));
    return ok === "OK";
  }

  /** Extends the lease (and the relay's data) for its owner; false when it is no longer theirs. */
  async renew(userId: string, sessionId: string, owner: string, leaseMs: number): Promise<boolean> {
    const { relayLease, relayEvents, relayState } = this.keys;
    const renewed = await guard(() =>
      this.scripts.renewRelay(
        relayLease(userId, sessionId),
        relayEvents(userId, sessionId),
        relayState(userId, sessionId),
        owner,
        leaseMs,
        this.ttlMs,
      ),
    );
    return renewed === 1;
  }

  async release(userId: string, sessionId: string, owner: string): Promise<void> {
    await guard(() => this.scripts.releaseRelay(this.keys.relayLease(userId, sessionId), owner));
  }

  /** The lease's owner token, or null when nobody holds the session's upstream stream. */
  holder(userId: string, sessionId: string): Promise<string | null> {
    return guard(() => this.redis.get(this.keys.relayLease(userId, sessionId)));
  }

  /** Appends an event for the lease's owner and trims to the bounds; null when `owner` lost the lease. */
  async append(
    userId: string,
    sessionId: string,
    owner: string,
    event: { data: string; upstreamSessionId: string; upstreamEventId: string | undefined },
    bounds: RelayBounds,
  ): Promise<string | null> {
    const { relayEvents, relayState, relayLease } = this.keys;
    const id = await guard(() =>
      this.scripts.relayEvent(
        relayEvents(userId, sessionId),
        relayState(userId, sessionId),
        relayLease(userId, sessionId),
        owner,
        event.data,
        event.upstreamSessionId,
        event.upstreamEventId ?? "",
        bounds.maxEntries,
        bounds.maxBytes,
        this.ttlMs,
      ),
    );
    return id ?? null;
  }

  async state(userId: string, sessionId: string): Promise<RelayState> {
    const fields = await guard(() => this.redis.hgetall(this.keys.relayState(userId, sessionId)));
    return {
      delivered: fields.delivered ?? null,
      upstream: fields.upstream || null,
      upstreamEvent: fields.upstreamEvent || null,
      refused: fields.refused ? Number(fields.refused) : null,
    };
  }

  /** Records that entries up to `id` reached a client's stream (a GET without Last-Event-ID starts after it). */
  async markDelivered(userId: string, sessionId: string, id: string): Promise<void> {
    await guard(() => this.scripts.markDelivered(this.keys.relayState(userId, sessionId), id, this.ttlMs));
  }

  /** Records that the server refuses the session a GET stream (`status`), or clears it (null). */
  async markRefused(userId: string, sessionId: string, status: number | null): Promise<void> {
    const key = this.keys.relayState(userId, sessionId);
    if (status === null) {
      await guard(() => this.redis.hdel(key, "refused"));
      return;
    }
    await guard(() => this.redis.multi().hset(key, "refused", status).pexpire(key, this.ttlMs).exec());
  }

  /** Forgets the session's relay: its events, state and lease (the session ended). */
  async drop(userId: string, sessionId: string): Promise<void> {
    const { relayEvents, relayState, relayLease } = this.keys;
    await guard(() =>
      this.redis.del(relayEvents(userId, sessionId), relayState(userId, sessionId), relayLease(userId, sessionId)),
    );
  }

  /** How many events the relay holds now. */
  length(userId: string, sessionId: string): Promise<number> {
    return guard(() => this.redis.xlen(this.keys.relayEvents(userId, sessionId)));
  }

  /**
   * A reader on a connection of its own (XREAD BLOCK holds its connection): one per replica
   * serves every client GET stream of that replica, however many.
   */
  reader(blockMs: number): RelayReader {
    return new RelayReader(this.redis, this.keys, blockMs);
  }
}

type XReadReply = [key: string, entries: [id: string, fields: string[]][]][] | null;

/**
 * Reads many sessions' relays with one blocking XREAD. A new cursor must not wait for the
 * running XREAD's timeout: `interrupt` ends it early with CLIENT UNBLOCK, sent from the main
 * connection to this reader's connection.
 */
export class RelayReader {
  readonly #connection: Redis;
  #clientId: number | undefined;
  #reading = false;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keyspace,
    private readonly blockMs: number,
  ) {
    // A command may take the whole block time; it must not be timed out before Redis answers.
    this.#connection = redis.duplicate({ commandTimeout: blockMs + 5000 });
    this.#connection.on("error", () => {}); // reconnects by itself; a failed read reports it
    // The id changes with every (re)connection.
    this.#connection.on("ready", () => {
      this.#connection
        .client("ID")
        .then((id) => {
          this.#clientId = Number(id);
        })
        .catch(() => {});
    });
  }

  /** Entries after each cursor, in the cursors' order; waits up to the block time for the first. */
  async read(cursors: readonly RelayCursor[], count: number): Promise<RelayedEvent[][]> {
    const keys = cursors.map((cursor) => this.keys.relayEvents(cursor.userId, cursor.sessionId));
    this.#reading = true;
    let reply: XReadReply;
    try {
      reply = (await guard(() =>
        this.#connection.xread(
          "COUNT",
          count,
          "BLOCK",
          this.blockMs,
          "STREAMS",
          ...keys,
          ...cursors.map((cursor) => cursor.after),
        ),
      )) as XReadReply;
    } finally {
      this.#reading = false;
    }
    const byKey = new Map((reply ?? []).map(([key, entries]) => [key, entries]));
    return keys.map((key) =>
      (byKey.get(key) ?? []).map(([id, fields]) => ({ id, data: fields[fields.indexOf("d") + 1] ?? "" })),
    );
  }

  /**
   * Ends a blocked read now. The XREAD may not have reached Redis yet, so CLIENT UNBLOCK is
   * repeated (briefly) until it finds the reader blocked or the read has returned.
   */
  async interrupt(): Promise<void> {
    for (let attempt = 0; attempt < 40 && this.#reading; attempt++) {
      const id = this.#clientId;
      if (id !== undefined && (await guard(() => this.redis.client("UNBLOCK", id))) === 1) return;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  close(): void {
    this.#connection.disconnect();
  }
}

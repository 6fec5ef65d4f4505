import type { BrokerSession, Route } from "@mcp-broker/session-store";

/** What a request on a client's session needs before it can be forwarded. */
export interface SessionInUse {
  session: BrokerSession;
  route: Route;
}

interface Entry extends SessionInUse {
  expiresAt: number;
}

/**
 * This replica's memory of session → upstream session id and route, so a warm request costs no
 * Redis round trip (docs/architecture.md#hot-path). Keyed by the verified user id and the
 * token's nonce: a token only reaches `get` after its tag and user binding were checked, and the
 * key names the user, so no entry can answer another user's request. An entry is trusted for
 * `ttlMs` at most; a stale one (the server re-created, the session revived by another replica)
 * fails upstream and recovers like any request (recovery.ts), and the broker then replaces or
 * drops it. `ttlMs` 0 turns the cache off.
 */
export class SessionCache {
  readonly #entries = new Map<string, Entry>();

  constructor(
    private readonly ttlMs: number,
    /** Entries kept at most; the oldest go first (a Map iterates in insertion order). */
    private readonly maxEntries = 10_000,
  ) {}

  get(userId: string, nonce: string, now = Date.now()): SessionInUse | null {
    if (this.ttlMs <= 0) return null;
    const key = userId + nonce;
    const entry = this.#entries.get(key);
    if (!entry) return null;
    if (entry.expiresAt > now && entry.session.userId === userId) return entry;
    this.#entries.delete(key);
    return null;
  }

  /** Remembers what Redis (or a recovery) just said; `expiresAt` starts now, never later. */
  set(userId: string, nonce: string, value: SessionInUse, now = Date.now()): void {
    if (this.ttlMs <= 0 || value.session.userId !== userId) return;
    const key = userId + nonce;
    this.#entries.delete(key);
    if (this.#entries.size >= this.maxEntries) this.#evictOldest();
    this.#entries.set(key, { session: value.session, route: value.route, expiresAt: now + this.ttlMs });
  }

  delete(userId: string, nonce: string): void {
    this.#entries.delete(userId + nonce);
  }

  get size(): number {
    return this.#entries.size;
  }

  #evictOldest(): void {
    const oldest = this.#entries.keys().next();
    if (!oldest.done) this.#entries.delete(oldest.value);
  }
}

import type { SessionStore } from "@mcp-broker/session-store";
import type { Logger } from "pino";

/** How long a busy mark lasts in Redis; refreshed at a third of it while the user stays busy. */
const LEASE_MS = 30_000;

/**
 * Users with a request or GET stream in flight on this replica, marked in Redis so that no
 * replica reclaims their backend for another user (MAX_BACKENDS reclaim). A user is marked
 * when their first request starts (at most once per half lease) and again every third of a
 * lease while anything of theirs is in flight; a replica that dies stops refreshing, and its
 * marks lapse.
 */
export class BusyUsers {
  readonly #held = new Map<string, number>();
  readonly #markedAt = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: SessionStore,
    private readonly logger: Logger,
    private readonly enabled: boolean,
  ) {}

  /** Counts something of the user's in flight until the returned (idempotent) release runs. */
  hold(userId: string): () => void {
    if (!this.enabled) return () => {};
    this.#held.set(userId, (this.#held.get(userId) ?? 0) + 1);
    const now = Date.now();
    if (now - (this.#markedAt.get(userId) ?? 0) > LEASE_MS / 2) this.#mark([userId], now);
    this.#timer ??= setInterval(() => this.#refresh(), LEASE_MS / 3).unref();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#held.get(userId) ?? 1) - 1;
      if (left > 0) this.#held.set(userId, left);
      else this.#held.delete(userId);
    };
  }

  #refresh(): void {
    const now = Date.now();
    for (const userId of this.#markedAt.keys()) {
      if (!this.#held.has(userId)) this.#markedAt.delete(userId);
    }
    if (this.#held.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      return;
    }
    this.#mark([...this.#held.keys()], now);
  }

  #mark(userIds: string[], now: number): void {
    for (const userId of userIds) this.#markedAt.set(userId, now);
    this.store
      .markBusy(userIds, now + LEASE_MS)
      .catch((error: Error) => this.logger.warn({ err: error.message }, "cannot mark users busy"));
  }
}

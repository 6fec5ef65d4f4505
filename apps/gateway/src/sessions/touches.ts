import type { SessionStore, SessionUse } from "@mcp-broker/session-store";
import type { Logger } from "pino";

/**
 * Last-used times of sessions and routes, written to Redis once per `intervalMs` per session
 * instead of once per request (docs/architecture.md#hot-path). Each write carries the time of
 * the last use, not of the flush, so the reaper's idle rules and the operator view see when a
 * session was really used, at most `intervalMs` late. `flush` on shutdown writes what is left.
 * `intervalMs` 0: every use is written at once (fire and forget), as before batching.
 */
export class Touches {
  #pending = new Map<string, SessionUse>();
  readonly #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: SessionStore,
    private readonly log: Logger,
    private readonly intervalMs: number,
  ) {
    if (intervalMs > 0) {
      this.#timer = setInterval(() => void this.flush(), intervalMs);
      this.#timer.unref();
    }
  }

  /** The user's route was used now, and the session too when given. */
  note(userId: string, sessionId?: string, at = Date.now()): void {
    const use = { userId, sessionId, at };
    if (this.intervalMs <= 0) {
      this.#write([use]);
      return;
    }
    // A use without a session still touches the route; a session's use touches both.
    this.#pending.set(sessionId ? `${userId}:${sessionId}` : userId, use);
  }

  /** Writes every pending use in one round trip; resolves when Redis has them (or failed). */
  flush(): Promise<void> {
    if (this.#pending.size === 0) return this.#flushing;
    const uses = [...this.#pending.values()];
    this.#pending = new Map();
    this.#flushing = this.#write(uses);
    return this.#flushing;
  }

  /** Stops the timer and writes what is left (shutdown, drain). */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }

  #write(uses: SessionUse[]): Promise<void> {
    return this.store
      .touchMany(uses)
      .catch((error: Error) => this.log.warn({ err: error.message, uses: uses.length }, "touch failed"));
  }
}

import { GatewayError } from "../errors.js";

/**
 * Open GET streams per user on this replica (MAX_STREAMS_PER_USER): each holds a connection
 * and an upstream stream for hours, so one key must not open them without bound.
 */
export class StreamCounter {
  readonly #open = new Map<string, number>();

  constructor(private readonly max: number) {}

  /** Counts a new stream, or throws TOO_MANY_STREAMS; the returned release is idempotent. */
  open(userId: string): () => void {
    const count = this.#open.get(userId) ?? 0;
    if (count >= this.max) throw new GatewayError("TOO_MANY_STREAMS", String(this.max));
    this.#open.set(userId, count + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#open.get(userId) ?? 1) - 1;
      if (left > 0) this.#open.set(userId, left);
      else this.#open.delete(userId);
    };
  }
}

import type { ServerResponse } from "node:http";
import type { Dispatcher } from "undici";

const FLUSH_HEADERS_AFTER_MS = 20;

/** Where an answer's bytes come from: undici's body, or what the broker streams after a break. */
export interface BodySource {
  next(): Promise<IteratorResult<Uint8Array>>;
  /** The client went away: stop reading (and free the upstream connection). */
  destroy(): void;
}

export function sourceOf(body: Dispatcher.ResponseData["body"]): BodySource {
  const chunks = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  return {
    next: () => chunks.next(),
    destroy: () => body.destroy(),
  };
}

export interface StreamHooks {
  /** Called every `everyMs` while the stream is open and once when it ends (0: never). */
  everyMs?: number;
  tick?: () => void;
  /** Sees each chunk before the client does, and the end of the answer. */
  onChunk?: (chunk: Uint8Array) => void;
  onEnd?: () => void;
  /**
   * The upstream broke mid-stream: what to stream on instead (a repeated request's answer, or
   * errors for the requests left unanswered); null to end.
   */
  resume?: ((error: Error) => Promise<BodySource | null>) | undefined;
  /** The upstream broke and nothing resumed it: the client's stream is ended cleanly instead of errored. */
  onBroken?: (error: Error) => void;
}

/**
 * An answer's bytes as the client gets them, read straight from undici's Node stream. With
 * `tick`, a long-lived stream keeps the user's route warm; a stream that breaks (container
 * killed) goes on with what `resume` gives (docs/architecture.md#recovery-and-replay), or ends
 * cleanly, so SSE clients reconnect and the reconnect is recovered like any request. Written to
 * the client's Node response (`pipeTo`), or as a web stream (`webBody`) where a web transform
 * (id restoring) must sit in between.
 */
export class AnswerBody {
  #source: BodySource;
  #open = true;
  readonly #timer: NodeJS.Timeout | undefined;

  constructor(
    first: BodySource,
    private readonly hooks: StreamHooks = {},
  ) {
    this.#source = first;
    this.#timer = hooks.tick && hooks.everyMs ? setInterval(hooks.tick, hooks.everyMs) : undefined;
    this.#timer?.unref();
  }

  /** The next chunk; null at the end, after a cancel, or after a break nothing resumed (`onBroken`). */
  async next(): Promise<Uint8Array | null> {
    const hooks = this.hooks;
    for (;;) {
      try {
        const { done, value } = await this.#source.next();
        if (!this.#open) return null; // cancelled by the client while reading
        if (done) {
          hooks.onEnd?.();
          this.#stop();
          return null;
        }
        hooks.onChunk?.(value);
        return value;
      } catch (error) {
        if (!this.#open) return null;
        const next = hooks.resume ? await hooks.resume(error as Error).catch(() => null) : null;
        if (next && this.#open) {
          this.#source = next;
          continue;
        }
        next?.destroy();
        if (!this.#stop()) return null;
        if (!hooks.onBroken) throw error;
        hooks.onBroken(error as Error);
        return null;
      }
    }
  }

  /** The client went away: stop, and free the upstream connection. */
  cancel(): void {
    this.#stop();
    this.#source.destroy();
  }

  get open(): boolean {
    return this.#open;
  }

  /**
   * Writes the answer to the client's Node response with backpressure, no web stream in
   * between; the response closing first (client gone) cancels the upstream body.
   */
  async pipeTo(out: ServerResponse): Promise<void> {
    const gone = () => {
      if (!out.writableFinished) this.cancel();
    };
    out.once("close", gone);
    const uncork = () => {
      if (!out.writableEnded) out.uncork(); // end() uncorks fully by itself
    };
    // Headers go with the first chunk (one write), unless it keeps them waiting: an event
    // stream's first event may come minutes later, and the client needs the headers now.
    let early: NodeJS.Timeout | undefined = setTimeout(() => {
      early = undefined;
      if (!out.headersSent && !out.destroyed) out.flushHeaders();
    }, FLUSH_HEADERS_AFTER_MS);
    try {
      for (;;) {
        const chunk = await this.next();
        if (early) early = void clearTimeout(early);
        if (chunk === null || out.destroyed) break;
        // An answer's last chunk and the server's end of it mostly come in one read: held until
        // this turn of the event loop is over, the chunk and the chunked encoding's terminator
        // leave in one write, a syscall less per answer (about 5% of the warm path's CPU).
        out.cork();
        setImmediate(uncork);
        if (!out.write(chunk)) await drainedOrClosed(out);
      }
      if (!out.destroyed) out.end();
    } catch (error) {
      out.destroy(error as Error);
    } finally {
      clearTimeout(early);
    }
  }

  #stop(): boolean {
    if (!this.#open) return false;
    this.#open = false;
    clearInterval(this.#timer);
    if (this.#timer) this.hooks.tick?.();
    return true;
  }
}

/**
 * Resolves when the response can take more, or is gone. Both listeners go once either fires:
 * `Promise.race` of two `events.once` left the loser's listeners on the response at every
 * full buffer, so a long stream to a slow client piled them up (MaxListenersExceededWarning).
 */
function drainedOrClosed(out: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      out.off("drain", done);
      out.off("close", done);
      resolve();
    };
    out.once("drain", done);
    out.once("close", done);
  });
}

/** The answer as a web stream, for a `Response` (cancelling it destroys the upstream body). */
export function webBody(body: AnswerBody): ReadableStream<Uint8Array> {
  let cancelled = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const chunk = await body.next();
        if (chunk) controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        else if (!cancelled) controller.close();
      } catch (error) {
        controller.error(error);
      }
    },
    cancel() {
      cancelled = true;
      body.cancel();
    },
  });
}

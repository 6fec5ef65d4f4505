import type { Dispatcher } from "undici";

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
 * The upstream body as a web stream for the client's Response, read straight from undici's
 * Node stream (one web stream, not Readable.toWeb plus a wrapper: each costs a transferable
 * object per request). Cancelling it (client gone) destroys the upstream body. With `tick`,
 * a long-lived stream keeps the user's route warm; a stream that breaks (container killed)
 * goes on with what `resume` gives (docs/architecture.md#recovery-and-replay), or ends cleanly,
 * so SSE clients reconnect and the reconnect is recovered like any request.
 */
export function webBody(first: BodySource, hooks: StreamHooks = {}): ReadableStream<Uint8Array> {
  let source = first;
  const timer = hooks.tick && hooks.everyMs ? setInterval(hooks.tick, hooks.everyMs) : undefined;
  timer?.unref();
  let open = true;
  const stop = () => {
    if (!open) return false;
    open = false;
    clearInterval(timer);
    if (timer) hooks.tick?.();
    return true;
  };
  return new ReadableStream<Uint8Array>({
    // A pull that enqueues nothing is not called again: it loops until it has a chunk or an end.
    async pull(controller) {
      for (;;) {
        try {
          const { done, value } = await source.next();
          if (!open) return; // cancelled by the client while reading
          if (done) {
            hooks.onEnd?.();
            stop();
            controller.close();
          } else {
            hooks.onChunk?.(value);
            controller.enqueue(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
          }
          return;
        } catch (error) {
          if (!open) return;
          const next = hooks.resume ? await hooks.resume(error as Error).catch(() => null) : null;
          if (next && open) {
            source = next;
            continue;
          }
          next?.destroy();
          if (!stop()) return;
          if (hooks.onBroken) {
            hooks.onBroken(error as Error);
            controller.close();
          } else {
            controller.error(error);
          }
          return;
        }
      }
    },
    cancel() {
      stop();
      source.destroy();
    },
  });
}

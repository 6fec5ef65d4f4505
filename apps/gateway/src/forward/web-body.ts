import type { Dispatcher } from "undici";

export interface StreamHooks {
  /** Called every `everyMs` while the stream is open and once when it ends (0: never). */
  everyMs?: number;
  tick?: () => void;
  /** The upstream broke mid-stream: the client's stream is ended cleanly instead of errored. */
  onBroken?: (error: Error) => void;
}

/**
 * The upstream body as a web stream for the client's Response, read straight from undici's
 * Node stream (one web stream, not Readable.toWeb plus a wrapper: each costs a transferable
 * object per request). Cancelling it (client gone) destroys the upstream body. With `tick`,
 * a long-lived stream keeps the user's route warm; a stream that breaks (container killed)
 * ends cleanly, so SSE clients reconnect and the reconnect is recovered like any request.
 */
export function webBody(body: Dispatcher.ResponseData["body"], hooks: StreamHooks = {}): ReadableStream<Uint8Array> {
  const chunks = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
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
    async pull(controller) {
      try {
        const { done, value } = await chunks.next();
        if (!open) return; // cancelled by the client while reading
        if (done) {
          stop();
          controller.close();
        } else {
          controller.enqueue(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
        }
      } catch (error) {
        if (!stop()) return;
        if (hooks.onBroken) {
          hooks.onBroken(error as Error);
          controller.close();
        } else {
          controller.error(error);
        }
      }
    },
    cancel() {
      stop();
      body.destroy();
    },
  });
}

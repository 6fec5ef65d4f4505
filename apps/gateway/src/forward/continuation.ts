import { rpcErrorBody } from "../errors.js";
import { isEventStream } from "./headers.js";
import { readBodyCapped, type UpstreamAnswer } from "./upstream-call.js";
import { type BodySource, sourceOf } from "./web-body.js";

const encoder = new TextEncoder();

/** SSE events carrying `messages`, one JSON-RPC message each, as a body source. */
export function eventsSource(messages: readonly unknown[]): BodySource {
  const text = messages.map((message) => `event: message\ndata: ${JSON.stringify(message)}\n\n`).join("");
  let sent = text.length === 0;
  return {
    async next() {
      if (sent) return { done: true, value: undefined };
      sent = true;
      return { done: false, value: encoder.encode(text) };
    },
    destroy() {},
  };
}

/** One JSON-RPC error per request left unanswered, as the rest of a broken SSE answer. */
export function errorEvents(upstreamIds: readonly unknown[], error: { rpcCode: number; message: string }): BodySource {
  return eventsSource(upstreamIds.map((id) => rpcErrorBody(error.rpcCode, error.message, id)));
}

/**
 * The answer to a request sent again after its SSE answer broke, as the rest of that answer:
 * the client already has its 200 and headers, so an event stream continues as it comes and a
 * JSON answer becomes events; anything else answers the unanswered requests with `fallback`.
 */
export async function continuation(
  answer: UpstreamAnswer,
  unanswered: readonly unknown[],
  fallback: { rpcCode: number; message: string },
  maxBodyBytes: number,
): Promise<BodySource> {
  if (typeof answer.body !== "string" && answer.status === 200 && isEventStream(answer.headers)) {
    return sourceOf(answer.body);
  }
  const text = typeof answer.body === "string" ? answer.body : await readBodyCapped(answer.body, maxBodyBytes);
  let messages: unknown[] = [];
  try {
    const parsed: unknown = JSON.parse(text);
    messages = (Array.isArray(parsed) ? parsed : [parsed]).filter(
      (message) => typeof message === "object" && message !== null && "jsonrpc" in message,
    );
  } catch {}
  // A request the answer does not answer (an error page, an error with `id: null`) gets `fallback`.
  const answered = new Set(messages.map((message) => JSON.stringify((message as { id?: unknown }).id)));
  const left = unanswered.filter((id) => !answered.has(JSON.stringify(id)));
  return eventsSource([...messages, ...left.map((id) => rpcErrorBody(fallback.rpcCode, fallback.message, id))]);
}

import type { Logger } from "pino";
import { type IdMap, restoreIdsInSse, restoreIdsInText } from "../rpc-ids.js";
import type { AnswerTracker } from "./answer-tracker.js";
import { type ClientHeaders, type HeaderPolicy, isEventStream } from "./headers.js";
import { readBodyCapped, type UpstreamAnswer } from "./upstream-call.js";
import { AnswerBody, type BodySource, type StreamHooks, sourceOf, webBody } from "./web-body.js";

/**
 * What the broker hands the route: status, headers and body, nothing the route must decide.
 * An `AnswerBody` is piped to the client's Node response; a web stream (ids restored in an
 * event stream) goes through a web `Response`.
 */
export interface Answer {
  status: number;
  headers: ClientHeaders;
  body: AnswerBody | ReadableStream<Uint8Array> | string | null;
}

export interface ReplyOptions {
  headers: HeaderPolicy;
  log: Logger;
  /** The broker's session id to give the client (a session it just opened). */
  sessionId?: string | undefined;
  /** upstream id → the client's id, to restore in the answer (the pooled session). */
  ids?: IdMap | undefined;
  /** Marks the route used while a POST's event stream is open: tool work in progress. */
  keepWarm?: { everyMs: number; tick: () => void } | undefined;
  /** Watches the answer's messages as they pass (forward/answer-tracker.ts). */
  tracker?: AnswerTracker | undefined;
  /** What an event stream that broke before its answers goes on with (docs/architecture.md#recovery-and-replay). */
  resume?: ((error: Error) => Promise<BodySource | null>) | undefined;
  /** MAX_UPSTREAM_BODY_BYTES, for a JSON answer read whole to restore ids. */
  maxBodyBytes?: number | undefined;
}

/**
 * Turns the server's answer into the client's. Bodies stream through without buffering,
 * except a JSON answer whose ids must be restored (one message, read whole to rewrite it),
 * and piped between Node streams unless ids are restored in an event stream;
 * see docs/architecture.md#streaming.
 */
export async function reply(upstream: UpstreamAnswer, options: ReplyOptions): Promise<Answer> {
  const { status } = upstream;
  const headers = options.headers.toClient(upstream.headers, options.sessionId);
  const ids = options.ids?.size ? options.ids : undefined;
  if (typeof upstream.body === "string") {
    return { status, headers, body: ids ? restoreIdsInText(upstream.body, ids) : upstream.body };
  }
  if (status === 202 || status === 204) {
    upstream.body.dump().catch(() => {});
    return { status, headers, body: null };
  }
  const sse = isEventStream(upstream.headers);
  const tracker = options.tracker;
  if (ids && !sse) {
    const text = await readBodyCapped(upstream.body, options.maxBodyBytes ?? Number.POSITIVE_INFINITY);
    tracker?.jsonEnd(text);
    return { status, headers, body: restoreIdsInText(text, ids) };
  }
  const log = options.log;
  const hooks: StreamHooks = sse
    ? {
        ...options.keepWarm,
        ...(tracker ? { onChunk: (chunk) => tracker.sse(chunk) } : {}),
        resume: options.resume,
        onBroken: (error) => log.info({ err: error.message }, "upstream event stream broke; ending it for the client"),
      }
    : tracker
      ? { onChunk: (chunk) => tracker.json(chunk), onEnd: () => tracker.jsonEnd() }
      : {};
  const body = new AnswerBody(sourceOf(upstream.body), hooks);
  // Only the pooled session's event streams need a transform: the rest pipes Node to Node.
  if (ids) return { status, headers, body: webBody(body).pipeThrough(restoreIdsInSse(ids)) };
  return { status, headers, body };
}

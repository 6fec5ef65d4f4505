import { EventEmitter } from "node:events";
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { Agent, type Dispatcher, request } from "undici";

/** RFC 9110 §7.6.1 hop-by-hop headers, plus what the gateway sets itself. */
const DROP_UPSTREAM = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authorization",
  "proxy-authenticate",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
  "mcp-session-id",
  "authorization",
  "origin",
  "cookie",
  "x-forwarded-for",
]);
const DROP_DOWNSTREAM = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "content-length",
  "mcp-session-id",
  "date",
]);

export function createDispatcher(): Agent {
  // One pool per upstream origin, kept alive: a warm request costs no TCP handshake.
  return new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 120_000, connections: 256 });
}

/**
 * Headers for the upstream request: the client's, less hop-by-hop ones, with the upstream
 * session id and the user's key in the header the MCP server reads per request.
 */
export function upstreamHeaders(
  incoming: IncomingHttpHeaders,
  options: { apiKeyHeader: string; apiKey: string; sessionId?: string | undefined },
): Record<string, string> {
  const headers: Record<string, string> = {};
  const keyHeader = options.apiKeyHeader.toLowerCase();
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || DROP_UPSTREAM.has(name) || name === keyHeader) continue;
    headers[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  headers[keyHeader] = options.apiKey;
  if (options.sessionId) headers["mcp-session-id"] = options.sessionId;
  return headers;
}

/**
 * Reads a request body from Node's stream, refusing it past `limit` bytes (declared or sent):
 * no web Request, no web stream in between.
 */
export async function readBody(incoming: IncomingMessage, limit: number): Promise<string | null> {
  if (Number(incoming.headers["content-length"] ?? 0) > limit) return null;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of incoming as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Response headers for the client; SSE gets the no-buffering hints proxies honour. */
export function clientHeaders(upstream: IncomingHttpHeaders, sessionId?: string): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(upstream)) {
    if (value === undefined || DROP_DOWNSTREAM.has(name)) continue;
    for (const item of Array.isArray(value) ? value : [value]) headers.append(name, item);
  }
  if (sessionId) headers.set("mcp-session-id", sessionId);
  if (isEventStream(upstream)) {
    headers.set("cache-control", "no-cache, no-transform");
    headers.set("x-accel-buffering", "no");
  }
  return headers;
}

export function isEventStream(headers: IncomingHttpHeaders): boolean {
  return String(headers["content-type"] ?? "").includes("text/event-stream");
}

export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Fires `abort` when the client goes away before its answer is complete. undici accepts an
 * EventEmitter as `signal`; building a web AbortSignal per request cost 2% of the gateway's
 * CPU in the warm-path profile (BENCHMARKS.md).
 */
export class ClientGone extends EventEmitter {
  aborted = false;

  static watch(response: ServerResponse): ClientGone {
    const gone = new ClientGone();
    response.once("close", () => {
      if (!response.writableFinished) {
        gone.aborted = true;
        gone.emit("abort");
      }
    });
    return gone;
  }
}

export interface UpstreamRequest {
  endpoint: string;
  method: "GET" | "POST" | "DELETE";
  headers: Record<string, string>;
  body?: string;
  signal?: ClientGone;
  /** Longest wait for response headers, and for each next chunk of the body (0: forever). */
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
}

export function callUpstream(dispatcher: Dispatcher, call: UpstreamRequest): Promise<Dispatcher.ResponseData> {
  return request(call.endpoint, {
    dispatcher,
    method: call.method,
    headers: call.headers,
    body: call.body ?? null,
    signal: call.signal ?? null,
    headersTimeout: call.headersTimeoutMs,
    bodyTimeout: call.bodyTimeoutMs,
  });
}

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

const NOT_DELIVERED = new Set(["ECONNREFUSED", "UND_ERR_CONNECT_TIMEOUT", "EHOSTUNREACH", "ENOTFOUND", "EAI_AGAIN"]);
const CONNECTION_LOST = new Set(["ECONNRESET", "UND_ERR_SOCKET", "EPIPE", "UND_ERR_CLOSED"]);

/**
 * Classifies a failed upstream call: `refused` means the request never reached a server (safe
 * to retry anywhere); `lost` means the connection broke and the server may have seen it.
 */
export function connectionFailure(error: unknown): "refused" | "lost" | null {
  let current = error as { code?: string; cause?: unknown } | undefined;
  for (let depth = 0; current && depth < 4; depth++) {
    if (current.code && NOT_DELIVERED.has(current.code)) return "refused";
    if (current.code && CONNECTION_LOST.has(current.code)) return "lost";
    current = current.cause as typeof current;
  }
  return null;
}

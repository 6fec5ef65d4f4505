import { inClientSpan } from "@mcp-broker/service-runtime";
import { createParser } from "eventsource-parser";
import { type Dispatcher, request } from "undici";

/**
 * The MCP calls the broker makes to a user's server as a client of its own: open a session,
 * end one, cancel a request. The gateway (pooled sessions, revival, client DELETE, client
 * disconnects) and the reaper (idle sessions) share them, so both speak to a server alike;
 * see docs/architecture.md#upstream-sessions.
 */

/** Where and how to reach one server's MCP endpoint. */
export interface McpEndpoint {
  /** Full URL of the MCP endpoint, e.g. http://127.0.0.1:49153/mcp. */
  url: string;
  /** Sent with every call: the header the server reads the user's key from, a protocol version. */
  headers?: Readonly<Record<string, string>>;
  /** A keep-alive pool to send through; undici's global dispatcher when absent. */
  dispatcher?: Dispatcher;
  /** Longest wait for the answer's headers, and for each next chunk of its body. */
  timeoutMs: number;
  /** The most of an answer read into memory (the gateway's MAX_UPSTREAM_BODY_BYTES); default 16 MiB. */
  maxBodyBytes?: number;
}

const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;

/**
 * An answer read whole, refused past `limit` bytes with `tooLarge()`'s error: a server answering
 * without end must not exhaust memory. The gateway reads upstream bodies with it too.
 */
export async function readBodyCapped(
  body: Dispatcher.ResponseData["body"],
  limit: number,
  tooLarge: () => Error,
): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      throw tooLarge();
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

const readText = (body: Dispatcher.ResponseData["body"], limit = DEFAULT_MAX_BODY_BYTES) =>
  readBodyCapped(body, limit, () => new UpstreamInitializeError(`upstream answer larger than ${limit} bytes`));

/** The server did not open a session: an error answer, or no session id. */
export class UpstreamInitializeError extends Error {
  readonly code = "UPSTREAM_INITIALIZE_FAILED";
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

const POST_HEADERS = { "content-type": "application/json", accept: "application/json, text/event-stream" };

function send(
  endpoint: McpEndpoint,
  call: { method: "POST" | "DELETE"; headers: Record<string, string>; body?: string },
): Promise<Dispatcher.ResponseData> {
  // The broker's own calls are client spans too, their traceparent the span's (docs/architecture.md#tracing).
  const headers = { ...endpoint.headers, ...call.headers };
  return inClientSpan(`${call.method} upstream (broker)`, { method: call.method, url: endpoint.url, headers }, (sent) =>
    request(endpoint.url, {
      ...(endpoint.dispatcher ? { dispatcher: endpoint.dispatcher } : {}),
      method: call.method,
      headers: sent,
      body: call.body ?? null,
      headersTimeout: endpoint.timeoutMs,
      bodyTimeout: endpoint.timeoutMs,
    }),
  );
}

const headerValue = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

/** The first JSON-RPC response in a JSON body or an SSE stream (MCP servers answer either way). */
function firstResponse(eventStream: boolean, text: string): { result?: unknown; error?: { message?: string } } {
  const payloads: string[] = [];
  if (eventStream) {
    const parser = createParser({ onEvent: (event) => payloads.push(event.data) });
    // The body has ended, so has its last event, even one its server left unterminated.
    parser.feed(text);
    parser.feed("\n\n");
  } else {
    payloads.push(text);
  }
  for (const payload of payloads) {
    try {
      const message = JSON.parse(payload);
      if (message && ("result" in message || "error" in message)) return message;
    } catch {}
  }
  return {};
}

/** An upstream session just opened, and what the server said about itself in its `initialize` result. */
export interface OpenedMcpSession {
  sessionId: string;
  /** `protocolVersion`, `capabilities`, `serverInfo`, `instructions`, as the server sent them. */
  result: Record<string, unknown>;
}

/** Opens an upstream session (see `openMcpSession`) and resolves to the server's session id. */
export async function initializeMcpSession(endpoint: McpEndpoint, params: unknown): Promise<string> {
  return (await openMcpSession(endpoint, params)).sessionId;
}

/**
 * Opens an upstream session as a client would: `initialize` with the given params, then
 * `notifications/initialized` (MCP lifecycle). Resolves to the server's session id and its
 * `initialize` result; throws undici's error when there was no answer, UpstreamInitializeError
 * when it refused.
 */
export async function openMcpSession(endpoint: McpEndpoint, params: unknown): Promise<OpenedMcpSession> {
  const init = await send(endpoint, {
    method: "POST",
    headers: POST_HEADERS,
    body: JSON.stringify({ jsonrpc: "2.0", id: "mcp-broker-init", method: "initialize", params }),
  });
  const text = await readText(init.body, endpoint.maxBodyBytes);
  const sessionId = headerValue(init.headers["mcp-session-id"]);
  const eventStream = String(init.headers["content-type"] ?? "").includes("text/event-stream");
  const answer = firstResponse(eventStream, text);
  if (init.statusCode !== 200 || !sessionId || answer.error) {
    const reason = answer.error?.message ? `, ${answer.error.message}` : "";
    throw new UpstreamInitializeError(
      `upstream initialize failed: status ${init.statusCode}${reason}${sessionId ? "" : ", no session id"}`,
    );
  }
  const protocolVersion = (answer.result as { protocolVersion?: string } | undefined)?.protocolVersion;
  const initialized = await send(endpoint, {
    method: "POST",
    headers: {
      ...POST_HEADERS,
      "mcp-session-id": sessionId,
      ...(protocolVersion ? { "mcp-protocol-version": protocolVersion } : {}),
    },
    body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
  });
  await initialized.body.dump();
  return { sessionId, result: (answer.result ?? {}) as Record<string, unknown> };
}

/**
 * Sends one request on an open session and resolves to its answer's JSON-RPC error, or null
 * when it succeeded: the broker replays what a client set on a session (`logging/setLevel`,
 * `resources/subscribe`) on the session that replaces it. Throws undici's error when no answer came.
 */
export async function requestMcp(
  endpoint: McpEndpoint,
  sessionId: string,
  method: string,
  params: unknown,
): Promise<{ message?: string } | null> {
  const response = await send(endpoint, {
    method: "POST",
    headers: { ...POST_HEADERS, "mcp-session-id": sessionId },
    body: JSON.stringify({ jsonrpc: "2.0", id: `mcp-broker-${method}`, method, params }),
  });
  const text = await readText(response.body, endpoint.maxBodyBytes);
  const eventStream = String(response.headers["content-type"] ?? "").includes("text/event-stream");
  const answer = firstResponse(eventStream, text);
  if (response.statusCode !== 200) return answer.error ?? { message: `status ${response.statusCode}` };
  return answer.error ?? null;
}

/**
 * Ends an upstream session (HTTP DELETE, MCP transports). Resolves to the status, whatever it
 * is (404: the server had already forgotten it; 405: it does not support DELETE); throws only
 * when no answer came. Callers treat it as best effort.
 */
export async function endMcpSession(endpoint: McpEndpoint, sessionId: string): Promise<number> {
  const response = await send(endpoint, { method: "DELETE", headers: { "mcp-session-id": sessionId } });
  await response.body.dump();
  return response.statusCode;
}

/**
 * Tells the server the client gave up on a request (`notifications/cancelled`): a closed HTTP
 * connection alone does not stop a tool that is running (MCP cancellation).
 */
export async function cancelMcpRequest(
  endpoint: McpEndpoint,
  sessionId: string,
  requestId: unknown,
  reason: string,
): Promise<void> {
  const response = await send(endpoint, {
    method: "POST",
    headers: { ...POST_HEADERS, "mcp-session-id": sessionId },
    body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId, reason } }),
  });
  await response.body.dump();
}

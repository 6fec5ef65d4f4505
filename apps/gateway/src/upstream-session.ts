import type { Dispatcher } from "undici";
import { callUpstream, headerValue, isEventStream } from "./forward.js";

/** The newest protocol revision the broker speaks when it initializes on a client's behalf. */
export const DEFAULT_PROTOCOL_VERSION = "2025-06-18";

export interface UpstreamTarget {
  dispatcher: Dispatcher;
  endpoint: string;
  apiKeyHeader: string;
  apiKey: string;
  timeoutMs: number;
}

export class UpstreamInitializeError extends Error {
  readonly code = "UPSTREAM_INITIALIZE_FAILED";
}

const POST_HEADERS = { "content-type": "application/json", accept: "application/json, text/event-stream" };

function firstResponse(contentType: boolean, text: string): { result?: unknown; error?: { message?: string } } {
  const payloads = contentType
    ? text
        .split(/\r?\n/)
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trim())
    : [text];
  for (const payload of payloads) {
    try {
      const message = JSON.parse(payload);
      if (message && ("result" in message || "error" in message)) return message;
    } catch {}
  }
  return {};
}

/**
 * Opens an upstream session as a client would: `initialize` with the given params, then
 * `notifications/initialized`. Used for the pooled session of clients that never initialize,
 * and to replay a client's own initialize when its upstream session vanished.
 */
export async function initializeUpstream(target: UpstreamTarget, params: unknown): Promise<string> {
  const headers = { ...POST_HEADERS, [target.apiKeyHeader]: target.apiKey };
  const init = await callUpstream(target.dispatcher, {
    endpoint: target.endpoint,
    method: "POST",
    headers,
    body: JSON.stringify({ jsonrpc: "2.0", id: "mcp-broker-init", method: "initialize", params }),
    headersTimeoutMs: target.timeoutMs,
    bodyTimeoutMs: target.timeoutMs,
  });
  const text = await init.body.text();
  const sessionId = headerValue(init.headers, "mcp-session-id");
  const answer = firstResponse(isEventStream(init.headers), text);
  if (init.statusCode !== 200 || !sessionId || answer.error) {
    throw new UpstreamInitializeError(
      `upstream initialize failed: status ${init.statusCode}${answer.error?.message ? `, ${answer.error.message}` : ""}${sessionId ? "" : ", no session id"}`,
    );
  }
  const protocolVersion = (answer.result as { protocolVersion?: string } | undefined)?.protocolVersion;
  const initialized = await callUpstream(target.dispatcher, {
    endpoint: target.endpoint,
    method: "POST",
    headers: {
      ...headers,
      "mcp-session-id": sessionId,
      ...(protocolVersion ? { "mcp-protocol-version": protocolVersion } : {}),
    },
    body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
    headersTimeoutMs: target.timeoutMs,
    bodyTimeoutMs: target.timeoutMs,
  });
  await initialized.body.dump();
  return sessionId;
}

/** Ends an upstream session (DELETE); best effort: returns the status, or throws on no answer. */
export async function deleteUpstream(target: UpstreamTarget, sessionId: string): Promise<number> {
  const response = await callUpstream(target.dispatcher, {
    endpoint: target.endpoint,
    method: "DELETE",
    headers: { [target.apiKeyHeader]: target.apiKey, "mcp-session-id": sessionId },
    headersTimeoutMs: Math.min(target.timeoutMs, 10_000),
    bodyTimeoutMs: Math.min(target.timeoutMs, 10_000),
  });
  await response.body.dump();
  return response.statusCode;
}

/** Tells the upstream server the client gave up on a request (MCP `notifications/cancelled`). */
export async function cancelUpstream(target: UpstreamTarget, sessionId: string, requestId: unknown): Promise<void> {
  const response = await callUpstream(target.dispatcher, {
    endpoint: target.endpoint,
    method: "POST",
    headers: { ...POST_HEADERS, [target.apiKeyHeader]: target.apiKey, "mcp-session-id": sessionId },
    body: JSON.stringify({
      jsonrpc: "2.0",
      method: "notifications/cancelled",
      params: { requestId, reason: "client disconnected" },
    }),
    headersTimeoutMs: 10_000,
    bodyTimeoutMs: 10_000,
  });
  await response.body.dump();
}

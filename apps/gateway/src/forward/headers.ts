import type { IncomingHttpHeaders } from "node:http";

/** RFC 9110 §7.6.1: meaningful for one connection only, never forwarded either way. */
const HOP_BY_HOP = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"];

/**
 * The only client headers the user's server sees (an allow-list: anything new a client invents,
 * `Expect`, cookies, credentials, proxy headers, stays at the gateway). The key travels in the
 * key header the gateway sets itself; docs/architecture.md#headers.
 */
const ALLOW_UPSTREAM = [
  "accept",
  "content-type",
  "mcp-protocol-version",
  "mcp-method",
  "mcp-name",
  "last-event-id",
  "user-agent",
  "x-request-id",
  "traceparent",
  "tracestate",
];

/** Server headers the client never sees: hop-by-hop ones, and what its own server sets. */
const DROP_DOWNSTREAM = [...HOP_BY_HOP, "content-length", "mcp-session-id", "date"];

/** Answer headers for the client: Node's `writeHead` takes them as they are (a list for repeated names). */
export type ClientHeaders = Record<string, string | string[]>;

export interface HeaderPolicy {
  /** The client's headers for the upstream request, with the user's key in the header the server reads. */
  toUpstream(incoming: IncomingHttpHeaders, apiKey: string): Record<string, string>;
  /** The server's answer headers for the client, with the broker's session id when it issued one. */
  toClient(upstream: IncomingHttpHeaders, sessionId?: string): ClientHeaders;
}

/** The allow/drop tables for one gateway, built once (the key header name comes from config). */
export function headerPolicy(apiKeyHeader: string): HeaderPolicy {
  const keyHeader = apiKeyHeader.toLowerCase();
  const allowUpstream = new Set(ALLOW_UPSTREAM);
  const dropDownstream = new Set(DROP_DOWNSTREAM);
  return {
    toUpstream(incoming, apiKey) {
      const headers: Record<string, string> = {};
      for (const name in incoming) {
        const value = incoming[name];
        if (value === undefined || !allowUpstream.has(name)) continue;
        headers[name] = Array.isArray(value) ? value.join(", ") : value;
      }
      // The gateway reads JSON answers to restore request ids: a compressed one would pass unread.
      headers["accept-encoding"] = "identity";
      // The Outline MCP server reads the key per request, ahead of the one it was started with.
      headers[keyHeader] = apiKey;
      return headers;
    },
    toClient(upstream, sessionId) {
      const headers: ClientHeaders = {};
      for (const name in upstream) {
        const value = upstream[name];
        if (value === undefined || dropDownstream.has(name)) continue;
        headers[name] = value;
      }
      if (sessionId) headers["mcp-session-id"] = sessionId;
      if (isEventStream(upstream)) {
        // Proxies (nginx) buffer a response unless told not to; an SSE stream must flow as written.
        headers["cache-control"] = "no-cache, no-transform";
        headers["x-accel-buffering"] = "no";
      }
      return headers;
    },
  };
}

export function isEventStream(headers: IncomingHttpHeaders): boolean {
  return String(headers["content-type"] ?? "").includes("text/event-stream");
}

export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The same headers as a web `Response` takes them: one pair per value. */
export function webHeaders(headers: ClientHeaders): [string, string][] {
  const pairs: [string, string][] = [];
  for (const name in headers) {
    const value = headers[name] as string | string[];
    if (Array.isArray(value)) for (const item of value) pairs.push([name, item]);
    else pairs.push([name, value]);
  }
  return pairs;
}

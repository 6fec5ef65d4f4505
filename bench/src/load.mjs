// MCP-aware load with autocannon: every request is a `tools/call` of the outline-stub's cheap
// `echo` tool on an initialized session, with a JSON-RPC id unique per session (an MCP server
// keys in-flight requests by id, so reusing one would measure collisions, not throughput).
import autocannon from "autocannon";

export const MCP_HEADERS = { "content-type": "application/json", accept: "application/json, text/event-stream" };

/** Initializes a session at `url` (direct server or gateway) and returns its Mcp-Session-Id. */
export async function initialize(url, headers = {}) {
  const response = await fetch(url, {
    method: "POST",
    headers: { ...MCP_HEADERS, ...headers },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 0,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "bench", version: "1" } },
    }),
  });
  await response.text();
  const session = response.headers.get("mcp-session-id");
  if (response.status !== 200 || !session) throw new Error(`initialize at ${url}: status ${response.status}`);
  const initialized = await fetch(url, {
    method: "POST",
    headers: { ...MCP_HEADERS, ...headers, "mcp-session-id": session },
    body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
  });
  await initialized.text();
  return session;
}

/**
 * Runs `connections` concurrent connections for `seconds` against `url`, spreading requests
 * over `targets` ({ headers }) round robin. Returns throughput and latency percentiles (ms).
 */
export async function measure({ url, targets, connections, seconds }) {
  let next = 0;
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    method: "POST",
    requests: [
      {
        setupRequest(request) {
          const n = next++;
          const target = targets[n % targets.length];
          return {
            ...request,
            method: "POST",
            headers: { ...MCP_HEADERS, ...target.headers },
            body: JSON.stringify({
              jsonrpc: "2.0",
              id: n + 1,
              method: "tools/call",
              params: { name: "echo", arguments: { text: "ping" } },
            }),
          };
        },
      },
    ],
  });
  if (result.errors > 0 || result.non2xx > 0 || result.requests.total === 0) {
    throw new Error(
      `load against ${url}: ${result.errors} errors, ${result.non2xx} non-2xx of ${result.requests.total}`,
    );
  }
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p90: result.latency.p90,
    p99: result.latency.p99,
    total: result.requests.total,
  };
}

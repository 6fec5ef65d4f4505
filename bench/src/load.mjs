// MCP-aware load with autocannon: every request is a `tools/call` of the outline-stub's cheap
// `echo` tool on an initialized session, with a JSON-RPC id unique per session (an MCP server
// keys in-flight requests by id, so reusing one would measure collisions, not throughput).
import autocannon from "autocannon";
import { Agent, request } from "undici";

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

/**
 * Latency at concurrency 1: `count` sequential `tools/call`s on one keep-alive connection,
 * timed with sub-millisecond resolution (autocannon's histogram counts whole milliseconds).
 */
export async function latencyAtOne({ url, headers, count }) {
  const dispatcher = new Agent({ connections: 1 });
  const samples = [];
  try {
    for (let n = 0; n < count; n++) {
      const started = performance.now();
      const answer = await request(url, {
        dispatcher,
        method: "POST",
        headers: { ...MCP_HEADERS, ...headers },
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: `c1-${n}`,
          method: "tools/call",
          params: { name: "echo", arguments: { text: "ping" } },
        }),
      });
      await answer.body.text();
      if (answer.statusCode !== 200) throw new Error(`latency run against ${url}: status ${answer.statusCode}`);
      samples.push(performance.now() - started);
    }
  } finally {
    await dispatcher.close();
  }
  // The first tenth warms connections and the JIT: not counted.
  const kept = samples.slice(Math.floor(count / 10)).sort((a, b) => a - b);
  const at = (p) => kept[Math.min(kept.length - 1, Math.floor(kept.length * p))];
  return { p50: at(0.5), p99: at(0.99), samples: kept.length };
}

import { setTimeout as sleep } from "node:timers/promises";
import { inSpan } from "@mcp-broker/service-runtime";

export interface ReadinessOptions {
  timeoutMs: number;
  intervalMs?: number;
  /** Called between probes; throw to stop waiting (the server exited). */
  checkAlive?: () => Promise<void>;
}

/**
 * Resolves once `endpoint` answers as an MCP endpoint, not merely once its port accepts:
 * a JSON-RPC `ping` POSTed without a session gets a 2xx from a stateless server and a 400
 * from a stateful one (the Outline server, the SDK's); 404 (route not mounted yet) and 5xx
 * (proxy or server still starting) mean not yet. Returns false when the deadline passes.
 */
export function waitUntilReady(endpoint: string, options: ReadinessOptions): Promise<boolean> {
  // Every driver's readiness wait is one span of a cold start (docs/architecture.md#tracing).
  return inSpan("readiness wait", async (span) => {
    const deadline = Date.now() + options.timeoutMs;
    let probes = 0;
    try {
      while (Date.now() < deadline) {
        probes++;
        if (await answersMcp(endpoint, Math.max(100, Math.min(2000, deadline - Date.now())))) return true;
        if (options.checkAlive && probes % 5 === 0) await options.checkAlive();
        await sleep(Math.min(options.intervalMs ?? 100, Math.max(0, deadline - Date.now())));
      }
      return false;
    } finally {
      span?.setAttribute("mcpb.readiness.probes", probes);
    }
  });
}

export async function answersMcp(endpoint: string, timeoutMs = 2000): Promise<boolean> {
  try {
    const response = await fetch(endpoint, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: "mcp-broker-readiness", method: "ping" }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    await response.body?.cancel();
    return response.status < 500 && response.status !== 404;
  } catch {
    return false;
  }
}

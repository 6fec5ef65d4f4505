import { once } from "node:events";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** One request as it passed the proxy: what it was and when its answer's headers came back. */
export interface ProxiedCall {
  method: string;
  /** The JSON-RPC method (or the tool a `tools/call` names) of a POST; empty for GET/DELETE. */
  rpc: string;
  session: boolean;
  sentAt: number;
  status?: number | undefined;
  answeredAt?: number;
}

/**
 * A header-injecting reverse proxy on 127.0.0.1: the conformance suite sends no API key, so
 * this adds the broker's key header to every request and passes everything else (Host and
 * Origin included, so the broker's DNS-rebinding check sees what the suite sent) and every
 * answer through unchanged, streaming. It records the traffic, to show races in order.
 */
export async function startKeyProxy(
  target: string,
  header: string,
  key: string,
  port = 0,
): Promise<{ url: string; calls: ProxiedCall[]; close(): Promise<void> }> {
  const upstream = new URL(target);
  const calls: ProxiedCall[] = [];
  const started = performance.now();
  const server: Server = createServer((incoming, outgoing) => {
    const chunks: Buffer[] = [];
    incoming.on("data", (chunk: Buffer) => chunks.push(chunk));
    incoming.on("end", () => {
      const body = Buffer.concat(chunks);
      const call: ProxiedCall = {
        method: incoming.method ?? "GET",
        rpc: rpcOf(body),
        session: incoming.headers["mcp-session-id"] !== undefined,
        sentAt: Math.round(performance.now() - started),
      };
      calls.push(call);
      const forwarded = request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: incoming.method,
          path: incoming.url,
          headers: { ...incoming.headers, [header]: key },
        },
        (answer) => {
          call.status = answer.statusCode;
          call.answeredAt = Math.round(performance.now() - started);
          outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(outgoing);
        },
      );
      forwarded.on("error", () => outgoing.destroy());
      outgoing.on("close", () => forwarded.destroy());
      forwarded.end(body);
    });
  });
  server.listen(port, "127.0.0.1");
  await once(server, "listening");
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}${upstream.pathname}`,
    calls,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function rpcOf(body: Buffer): string {
  if (body.length === 0) return "";
  try {
    const message = JSON.parse(body.toString("utf8"));
    const one = Array.isArray(message) ? message[0] : message;
    if (one?.method === "tools/call") return `tools/call ${one.params?.name}`;
    return one?.method ?? (one?.result !== undefined ? "response" : "error response");
  } catch {
    return "(not JSON)";
  }
}

import { once } from "node:events";
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { cancelMcpRequest, endMcpSession, initializeMcpSession, UpstreamInitializeError } from "./mcp-client.js";

interface Seen {
  method: string;
  headers: IncomingHttpHeaders;
  // biome-ignore lint/suspicious/noExplicitAny: the test reads arbitrary JSON-RPC fields
  body: any;
}

/** A server answering each request with the next scripted answer, recording what it was sent. */
async function scripted(answers: Array<(response: ServerResponse) => void>) {
  const seen: Seen[] = [];
  const server: Server = createServer(async (request, response) => {
    let text = "";
    for await (const chunk of request) text += chunk;
    seen.push({ method: request.method ?? "", headers: request.headers, body: text ? JSON.parse(text) : null });
    const answer = answers.shift();
    if (answer) answer(response);
    else response.writeHead(500).end();
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
  return {
    seen,
    endpoint: { url, headers: { "x-outline-api-key": "ol_api_k" }, timeoutMs: 2000 },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const result = { protocolVersion: "2025-03-26", capabilities: {}, serverInfo: { name: "s", version: "1" } };
const accepted = (response: ServerResponse) => response.writeHead(202).end();

describe("the MCP client the gateway and the reaper share", () => {
  it("initializes with a JSON answer, then sends notifications/initialized on the new session", async () => {
    const server = await scripted([
      (r) =>
        r
          .writeHead(200, { "content-type": "application/json", "mcp-session-id": "s-1" })
          .end(JSON.stringify({ jsonrpc: "2.0", id: "mcp-broker-init", result })),
      accepted,
    ]);
    try {
      expect(await initializeMcpSession(server.endpoint, { protocolVersion: "2025-03-26" })).toBe("s-1");
      const [init, initialized] = server.seen;
      expect(init?.body).toMatchObject({ method: "initialize", params: { protocolVersion: "2025-03-26" } });
      expect(init?.headers).toMatchObject({
        "x-outline-api-key": "ol_api_k",
        accept: "application/json, text/event-stream",
      });
      expect(initialized?.body).toEqual({ jsonrpc: "2.0", method: "notifications/initialized" });
      expect(initialized?.headers).toMatchObject({ "mcp-session-id": "s-1", "mcp-protocol-version": "2025-03-26" });
    } finally {
      await server.close();
    }
  });

  it("reads the answer from an SSE stream, after a notification, even with its last event unterminated", async () => {
    const progress = JSON.stringify({ jsonrpc: "2.0", method: "notifications/message", params: {} });
    const server = await scripted([
      (r) =>
        r
          .writeHead(200, { "content-type": "text/event-stream", "mcp-session-id": "s-2" })
          .end(
            `: hi\r\n\r\nevent: message\r\ndata: ${progress}\r\n\r\ndata: ${JSON.stringify({ jsonrpc: "2.0", id: 1, result })}\n`,
          ),
      accepted,
    ]);
    try {
      expect(await initializeMcpSession(server.endpoint, {})).toBe("s-2");
    } finally {
      await server.close();
    }
  });

  it("refuses an error answer, and an answer without a session id", async () => {
    const server = await scripted([
      (r) =>
        r
          .writeHead(200, { "content-type": "application/json", "mcp-session-id": "s-3" })
          .end(
            JSON.stringify({ jsonrpc: "2.0", id: 1, error: { code: -32602, message: "Unsupported protocol version" } }),
          ),
      (r) =>
        r.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", id: 1, result })),
    ]);
    try {
      const refused = initializeMcpSession(server.endpoint, {});
      await expect(refused).rejects.toThrow(UpstreamInitializeError);
      await expect(refused).rejects.toThrow("status 200, Unsupported protocol version");
      await expect(initializeMcpSession(server.endpoint, {})).rejects.toMatchObject({
        code: "UPSTREAM_INITIALIZE_FAILED",
        message: "upstream initialize failed: status 200, no session id",
      });
    } finally {
      await server.close();
    }
  });

  it("ends a session with DELETE and reports the status, whatever it is", async () => {
    const server = await scripted([(r) => r.writeHead(200).end(), (r) => r.writeHead(404).end("gone")]);
    try {
      const endpoint = { ...server.endpoint, headers: { "mcp-protocol-version": "2025-06-18" } };
      expect(await endMcpSession(endpoint, "s-4")).toBe(200);
      expect(await endMcpSession(endpoint, "s-5")).toBe(404);
      expect(
        server.seen.map((s) => [s.method, s.headers["mcp-session-id"], s.headers["mcp-protocol-version"]]),
      ).toEqual([
        ["DELETE", "s-4", "2025-06-18"],
        ["DELETE", "s-5", "2025-06-18"],
      ]);
    } finally {
      await server.close();
    }
  });

  it("throws when no answer comes", async () => {
    const server = await scripted([]);
    await server.close();
    await expect(endMcpSession(server.endpoint, "s-6")).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });

  it("cancels a request with notifications/cancelled on its session", async () => {
    const server = await scripted([accepted]);
    try {
      await cancelMcpRequest(server.endpoint, "s-7", "mcpb-1-9", "client disconnected");
      expect(server.seen[0]?.headers["mcp-session-id"]).toBe("s-7");
      expect(server.seen[0]?.body).toEqual({
        jsonrpc: "2.0",
        method: "notifications/cancelled",
        params: { requestId: "mcpb-1-9", reason: "client disconnected" },
      });
    } finally {
      await server.close();
    }
  });
});

import { once } from "node:events";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** One JSON-RPC message the server received, with what came with it. */
export interface ReceivedMessage {
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON-RPC fields
  message: any;
  session: string | undefined;
  headers: IncomingHttpHeaders;
}

/**
 * Lets a test take over one message (return true when it answered): to drop the connection
 * after the request arrived, answer late, or stream an answer in awkward pieces.
 */
export type Takeover = (received: ReceivedMessage, response: ServerResponse) => boolean | Promise<boolean>;

export interface TinyMcpServer {
  url: string;
  name: string;
  /** Every POSTed message, in arrival order. */
  received: ReceivedMessage[];
  /** Headers of every HTTP request, in arrival order. */
  requests: Array<{ method: string; headers: IncomingHttpHeaders }>;
  sessions: Set<string>;
  takeover: Takeover | undefined;
  /** How it answers a session id it does not know: 404 (TS SDK) or 400 (older Python SDK). */
  unknownSession: 404 | 400;
  close(): Promise<void>;
}

/** Headers a real server may send that must never reach the client, plus one that must. */
const ANSWER_HEADERS = { "keep-alive": "timeout=77", "x-upstream": "tiny", "proxy-connection": "keep-alive" };

function json(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): true {
  response.writeHead(status, { ...ANSWER_HEADERS, ...headers, "content-type": "application/json" });
  response.end(body === null ? undefined : JSON.stringify(body));
  return true;
}

const rpcError = (code: number, message: string) => ({ jsonrpc: "2.0", error: { code, message }, id: null });

/**
 * A stateful MCP server in a few lines, for tests that need exact control of its answers and
 * failures (the outline-stub runs in-process too, for whole-protocol tests). Same session
 * rules: initialize opens a session, unknown ids are 404 (or 400), requests without one 400.
 */
export async function startTinyMcpServer(name = "tiny"): Promise<TinyMcpServer> {
  let next = 0;
  const tiny: Omit<TinyMcpServer, "url" | "close"> = {
    name,
    received: [],
    requests: [],
    sessions: new Set(),
    takeover: undefined,
    unknownSession: 404,
  };

  const answerPost = async (request: IncomingMessage, response: ServerResponse) => {
    let text = "";
    for await (const chunk of request) text += chunk;
    const session = request.headers["mcp-session-id"] as string | undefined;
    const received = { message: JSON.parse(text), session, headers: request.headers };
    tiny.received.push(received);
    if (tiny.takeover && (await tiny.takeover(received, response))) return;
    const { message } = received;
    if (session && !tiny.sessions.has(session)) {
      if (tiny.unknownSession === 400)
        return json(response, 400, rpcError(-32000, "Bad Request: No valid session ID provided"));
      return json(response, 404, rpcError(-32001, "Session not found"));
    }
    if (message.method === "initialize") {
      const id = `${name}-session-${++next}`;
      tiny.sessions.add(id);
      const result = { protocolVersion: "2025-06-18", capabilities: {}, serverInfo: { name, version: "1" } };
      return json(response, 200, { jsonrpc: "2.0", id: message.id, result }, { "mcp-session-id": id });
    }
    if (!session) return json(response, 400, rpcError(-32000, "Bad Request: No valid session ID provided"));
    if (!("id" in message)) return json(response, 202, null);
    return json(response, 200, { jsonrpc: "2.0", id: message.id, result: { server: name, method: message.method } });
  };

  const server = createServer((request, response) => {
    tiny.requests.push({ method: request.method ?? "", headers: request.headers });
    const session = request.headers["mcp-session-id"] as string | undefined;
    if (request.method === "POST") {
      answerPost(request, response).catch((error: Error) => json(response, 500, rpcError(-32603, error.message)));
    } else if (request.method === "DELETE") {
      json(response, session && tiny.sessions.delete(session) ? 200 : 404, null);
    } else if (request.method === "GET" && session && tiny.sessions.has(session)) {
      response.writeHead(200, { ...ANSWER_HEADERS, "content-type": "text/event-stream" });
      response.write(": open\n\n");
    } else {
      json(response, 405, rpcError(-32000, "Method not allowed"));
    }
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return Object.assign(tiny, {
    url: `http://127.0.0.1:${port}/mcp`,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  });
}

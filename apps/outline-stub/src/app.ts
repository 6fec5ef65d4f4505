import { randomUUID } from "node:crypto";
import { monitoringRoutes } from "@mcp-broker/service-runtime";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import { Hono } from "hono";
import { createConformanceServer } from "./conformance-tools.js";
import type { DocumentStore } from "./documents.js";
import { createMcpServer } from "./tools.js";

/** Which MCP server a session gets: the Outline-like tools, or the conformance suite's (`STUB_TOOLS`). */
export type StubTools = "outline" | "conformance";

export interface StubOptions {
  apiKey: string;
  allowedKeys: readonly string[];
  /** Demo mode: keys matching it are accepted as well as `allowedKeys`. */
  allowedKeyPattern?: RegExp | undefined;
  documents: DocumentStore;
  tools?: StubTools | undefined;
}

export interface Stub {
  app: Hono;
  /** Live MCP sessions, by id. */
  sessions: ReadonlyMap<string, WebStandardStreamableHTTPServerTransport>;
  /** End every session, as a restart of the real server would. */
  closeAll(): Promise<void>;
}

const rpcError = (code: number, message: string) => ({ jsonrpc: "2.0", error: { code, message }, id: null });

/**
 * MCP transports (2025-11-25): a server MUST validate Origin against DNS rebinding. A browser
 * always sends one; only a loopback origin is this local server's own (the broker forwards none).
 */
function foreignOrigin(origin: string | undefined): boolean {
  if (origin === undefined) return false;
  try {
    return !["localhost", "127.0.0.1", "[::1]"].includes(new URL(origin).hostname);
  } catch {
    return true;
  }
}

/**
 * A stateful Streamable HTTP MCP server with the session rules of the Outline MCP server
 * (a FastMCP / SDK stateful server): `initialize` without a session id opens a session,
 * anything else without one is 400, an unknown or ended id is 404, DELETE ends a session.
 */
export function createStub(options: StubOptions): Stub {
  const sessions = new Map<string, WebStandardStreamableHTTPServerTransport>();
  const instanceId = randomUUID();
  const cancelled = { count: 0 };
  const app = new Hono();

  app.route("/", monitoringRoutes({ health: () => ({ sessions: sessions.size, instance: instanceId }) }));

  app.post("/api/auth.info", (c) => {
    const key = /^Bearer\s+(.+)$/i.exec(c.req.header("authorization") ?? "")?.[1]?.trim();
    const allowed = key && (options.allowedKeys.includes(key) || options.allowedKeyPattern?.test(key));
    if (!allowed) {
      return c.json({ ok: false, error: "authentication_required", status: 401 }, 401);
    }
    return c.json({
      ok: true,
      status: 200,
      data: { user: { id: key.slice(-6), name: "Stub User" }, team: { name: "Stub" } },
    });
  });

  app.all("/mcp", async (c) => {
    if (foreignOrigin(c.req.header("origin"))) return c.json(rpcError(-32000, "Origin not allowed"), 403);
    const sessionId = c.req.header("mcp-session-id");
    if (sessionId) {
      const transport = sessions.get(sessionId);
      if (!transport) return c.json(rpcError(-32001, "Session not found"), 404);
      return transport.handleRequest(c.req.raw);
    }
    if (c.req.method !== "POST") {
      return c.json(rpcError(-32000, "Bad Request: No valid session ID provided"), 400);
    }
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      return c.json({ jsonrpc: "2.0", error: { code: -32700, message: "Parse error" }, id: null }, 400);
    }
    if (!isInitializeRequest(body)) {
      return c.json(rpcError(-32000, "Bad Request: No valid session ID provided"), 400);
    }
    const transport: WebStandardStreamableHTTPServerTransport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, transport);
      },
      onsessionclosed: (id) => {
        sessions.delete(id);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    const server =
      options.tools === "conformance"
        ? createConformanceServer()
        : createMcpServer({ documents: options.documents, apiKey: options.apiKey, instanceId, cancelled });
    await server.connect(transport);
    return transport.handleRequest(c.req.raw, { parsedBody: body });
  });

  return {
    app,
    sessions,
    async closeAll() {
      const open = [...sessions.values()];
      sessions.clear();
      await Promise.allSettled(open.map((transport) => transport.close()));
    },
  };
}

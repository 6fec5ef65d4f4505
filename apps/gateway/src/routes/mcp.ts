import type { BrokerSession, SessionStore } from "@mcp-broker/session-store";
import { type Context, Hono } from "hono";
import type { Broker, UpstreamAnswer } from "../broker.js";
import { sessionNotFound } from "../broker.js";
import type { GatewayConfig } from "../config.js";
import { type GatewayEnv, requestHeader, type User } from "../env.js";
import { HttpError, RPC } from "../errors.js";
import {
  ClientGone,
  clientHeaders,
  headerValue,
  isEventStream,
  readBody,
  upstreamHeaders,
  webBody,
} from "../forward.js";
import { type IdMap, type JsonRpcMessage, restoreIds, restoreIdsInSse } from "../rpc-ids.js";
import { cancelUpstream } from "../upstream-session.js";

export interface McpRouteDeps {
  config: GatewayConfig;
  store: SessionStore;
  broker: Broker;
}

type Ctx = Context<GatewayEnv>;

/** Parses and checks a POST body: one JSON-RPC 2.0 message or a non-empty batch of them. */
function parseMessages(text: string): { messages: JsonRpcMessage[]; batch: boolean } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new HttpError(400, RPC.parseError, "Parse error: the request body is not valid JSON");
  }
  const batch = Array.isArray(parsed);
  const messages = (batch ? parsed : [parsed]) as unknown[];
  const valid = (m: unknown): m is JsonRpcMessage =>
    typeof m === "object" &&
    m !== null &&
    (m as JsonRpcMessage).jsonrpc === "2.0" &&
    (typeof (m as JsonRpcMessage).method === "string" || "result" in m || "error" in m);
  if (messages.length === 0 || !messages.every(valid)) {
    throw new HttpError(400, RPC.invalidRequest, "Invalid Request: expected a JSON-RPC 2.0 message or batch");
  }
  return { messages, batch };
}

const requestIds = (messages: readonly JsonRpcMessage[]) =>
  messages.filter((m) => typeof m.method === "string" && "id" in m).map((m) => m.id);

/**
 * POST, GET and DELETE on /mcp (DESIGN.md "Request flow"). Authentication has already run;
 * every answer streams through without buffering, except a JSON answer whose ids must be
 * restored (one message, read whole to rewrite it).
 */
export function mcpRoutes({ config, store, broker }: McpRouteDeps): Hono<GatewayEnv> {
  const app = new Hono<GatewayEnv>();
  const timeouts = { headersTimeoutMs: config.UPSTREAM_TIMEOUT_MS, bodyTimeoutMs: config.UPSTREAM_TIMEOUT_MS };
  const touchEveryMs = Math.min(60_000, (config.CONTAINER_IDLE_TTL_SECONDS * 1000) / 3);
  const headersFor = (c: Ctx, user: User) =>
    upstreamHeaders(c.env.incoming.headers, { apiKeyHeader: config.API_KEY_HEADER, apiKey: user.key });

  const touch = (c: Ctx, session?: BrokerSession | null) => {
    const user = c.get("user");
    store
      .touch(user.id, session?.id)
      .catch((error: Error) => c.get("log").warn({ err: error.message }, "touch failed"));
  };

  /** Streams an upstream answer to the client, restoring ids and keeping the route warm. */
  const respond = (
    c: Ctx,
    answer: UpstreamAnswer,
    options: { sessionId?: string; ids?: IdMap; listenOnly?: boolean } = {},
  ) => {
    const headers = clientHeaders(answer.headers, options.sessionId);
    const ids = options.ids;
    if (typeof answer.body === "string") {
      const body = ids?.size ? restoreInText(answer.body, ids) : answer.body;
      return new Response(body, { status: answer.status, headers });
    }
    if (answer.status === 202 || answer.status === 204) {
      answer.body.dump().catch(() => {});
      return new Response(null, { status: answer.status, headers });
    }
    if (ids?.size && !isEventStream(answer.headers)) {
      return answer.body
        .text()
        .then((text) => new Response(restoreInText(text, ids), { status: answer.status, headers }));
    }
    // A POST stream is work in progress and keeps the route warm; a GET stream only listens.
    const sse = isEventStream(answer.headers);
    let stream = webBody(answer.body, {
      everyMs: sse && !options.listenOnly ? touchEveryMs : 0,
      tick: () => touch(c, answer.session),
      ...(sse
        ? {
            onBroken: (error: Error) =>
              c.get("log").info({ err: error.message }, "upstream event stream broke; ending it for the client"),
          }
        : {}),
    });
    if (ids?.size) stream = stream.pipeThrough(restoreIdsInSse(ids));
    return new Response(stream, { status: answer.status, headers });
  };

  /** On client disconnect, tell the server to stop working on the requests it was sent. */
  const cancelOnAbort = (
    c: Ctx,
    gone: ClientGone,
    answer: () => UpstreamAnswer | undefined,
    upstreamIds: unknown[],
  ) => {
    if (upstreamIds.length === 0) return;
    gone.once("abort", () => {
      const done = answer();
      if (!done?.session) return;
      const user = c.get("user");
      for (const id of upstreamIds) {
        cancelUpstream(broker.target(user, done.route), done.session.upstreamSessionId, id).catch((error: Error) =>
          c.get("log").warn({ err: error.message }, "could not send notifications/cancelled upstream"),
        );
      }
    });
  };

  app.post("/mcp", async (c) => {
    const contentType = requestHeader(c, "content-type") ?? "";
    if (!contentType.toLowerCase().includes("application/json")) {
      throw new HttpError(415, RPC.invalidRequest, "Unsupported Media Type: Content-Type must be application/json");
    }
    const user = c.get("user");
    const log = c.get("log");
    const text = await readBody(c.env.incoming, config.MAX_BODY_BYTES);
    if (text === null) {
      throw new HttpError(413, RPC.invalidRequest, `Request body larger than ${config.MAX_BODY_BYTES} bytes`);
    }
    const { messages, batch } = parseMessages(text);
    const gone = ClientGone.watch(c.env.outgoing);
    const request = { method: "POST" as const, headers: headersFor(c, user), signal: gone, ...timeouts };
    const clientSessionId = requestHeader(c, "mcp-session-id");
    const initialize = messages.find((m) => m.method === "initialize");

    if (clientSessionId) {
      // One round trip: the session, the user's route, and the touch of both.
      const { session, route } = await store.useSession(user.id, clientSessionId);
      if (!session) throw sessionNotFound();
      let answer: UpstreamAnswer | undefined;
      cancelOnAbort(c, gone, () => answer, requestIds(messages));
      answer = await broker.exchange(user, log, session, { ...request, body: text }, { route });
      return respond(c, answer);
    }

    if (initialize) {
      if (messages.length !== 1) {
        throw new HttpError(400, RPC.invalidRequest, "initialize must be the only message in its request");
      }
      const answer = await broker.exchange(user, log, null, { ...request, body: text });
      const upstreamSessionId = headerValue(answer.headers, "mcp-session-id");
      if (answer.status !== 200 || !upstreamSessionId) return respond(c, answer);
      const params = (initialize.params ?? {}) as { protocolVersion?: string };
      const session = await store.createSession({
        userId: user.id,
        upstreamSessionId,
        initializeParams: params,
        protocolVersion: params.protocolVersion ?? "",
        pooled: true,
      });
      log.info({ session: session.id.slice(0, 8) }, "session initialized");
      return respond(c, answer, { sessionId: session.id });
    }

    if (requestHeader(c, "mcp-method")) {
      // MCP 2026-07-28 has no sessions: pass through untouched, so a server that answers 400
      // makes the client fall back to initialize, as that revision specifies.
      touch(c);
      return respond(c, await broker.exchange(user, log, null, { ...request, body: text }));
    }

    // A client that never initializes (older Claude Code, curl): the user's pooled session,
    // shared by every such client, so request ids are rewritten to unique upstream ids.
    // One round trip when the pool exists: pooled session, route, and the touch of both.
    const used = await store.usePooledSession(user.id);
    const session =
      used.session ?? (await broker.openPooledSession(user, log, requestHeader(c, "mcp-protocol-version")));
    const rewritten = broker.ids.rewrite(messages);
    let answer: UpstreamAnswer | undefined;
    cancelOnAbort(c, gone, () => answer, [...rewritten.ids.keys()]);
    const body = JSON.stringify(batch ? rewritten.messages : rewritten.messages[0]);
    answer = await broker.exchange(user, log, session, { ...request, body }, { route: used.route });
    return respond(c, answer, { ids: rewritten.ids });
  });

  app.get("/mcp", async (c) => {
    const user = c.get("user");
    const clientSessionId = requestHeader(c, "mcp-session-id");
    // MCP: GET answers with an SSE stream or 405, nothing else (other answers broke Claude Code).
    const notOffered = (reason: string) =>
      c.json({ jsonrpc: "2.0", error: { code: RPC.server, message: reason }, id: null }, 405, {
        Allow: "POST, DELETE",
      });
    if (!clientSessionId) return notOffered("No server-to-client stream without an Mcp-Session-Id");
    const { session, route } = await store.useSession(user.id, clientSessionId);
    if (!session) throw sessionNotFound();
    const answer = await broker.exchange(
      user,
      c.get("log"),
      session,
      {
        method: "GET",
        headers: headersFor(c, user),
        signal: ClientGone.watch(c.env.outgoing),
        headersTimeoutMs: config.UPSTREAM_TIMEOUT_MS,
        bodyTimeoutMs: 0, // a GET stream may stay quiet for hours
      },
      { startServer: false, route },
    );
    if (answer.status !== 200 || !isEventStream(answer.headers)) {
      if (typeof answer.body !== "string") await answer.body.dump();
      return notOffered(`The MCP server offers no stream for this session (status ${answer.status})`);
    }
    return respond(c, answer, { listenOnly: true });
  });

  app.delete("/mcp", async (c) => {
    const user = c.get("user");
    const clientSessionId = requestHeader(c, "mcp-session-id");
    if (!clientSessionId) throw new HttpError(400, RPC.invalidRequest, "DELETE needs the Mcp-Session-Id to end");
    const session = await store.getSession(user.id, clientSessionId);
    if (!session) throw sessionNotFound();
    await broker.endSession(user, c.get("log"), session);
    c.get("log").info({ session: session.id.slice(0, 8) }, "session ended by client");
    return c.body(null, 200);
  });

  return app;
}

function restoreInText(text: string, ids: IdMap): string {
  try {
    return JSON.stringify(restoreIds(JSON.parse(text), ids));
  } catch {
    return text; // not JSON (an upstream error page): pass it on as it came
  }
}

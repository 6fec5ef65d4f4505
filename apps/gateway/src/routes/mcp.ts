import type { SessionStore } from "@mcp-broker/session-store";
import { Hono } from "hono";
import type { Broker } from "../broker.js";
import type { BusyUsers } from "../busy-users.js";
import type { GatewayConfig } from "../config.js";
import { type GatewayEnv, requestHeader } from "../env.js";
import { GatewayError } from "../errors.js";
import { ClientGone, readBody } from "../forward/client-request.js";
import { chargeRequests } from "../middleware/auth.js";
import type { JsonRpcMessage } from "../rpc-ids.js";
import { describeMcpRequest } from "../tracing.js";
import { sendAnswer } from "./answer.js";
import { checkRequestMetadata } from "./request-metadata.js";
import { StreamCounter } from "./stream-counter.js";

export interface McpRouteDeps {
  config: Pick<
    GatewayConfig,
    "MAX_BODY_BYTES" | "MAX_BATCH" | "MAX_INITIALIZE_PARAMS_BYTES" | "MAX_STREAMS_PER_USER" | "RATE_LIMIT_PER_MINUTE"
  >;
  broker: Broker;
  store: SessionStore;
  /** Marks users with something in flight, so MAX_BACKENDS never reclaims their backend. */
  busy: BusyUsers;
}

/** Limits on what one POST may carry, checked before anything is forwarded or stored. */
function checkLimits(config: McpRouteDeps["config"], messages: readonly JsonRpcMessage[]): void {
  if (messages.length > config.MAX_BATCH) throw new GatewayError("BATCH_TOO_LARGE", String(config.MAX_BATCH));
  const initialize = messages.find((m) => m.method === "initialize");
  // The params ride in the session (token or Redis) and are replayed on every revival.
  if (initialize && Buffer.byteLength(JSON.stringify(initialize.params ?? null)) > config.MAX_INITIALIZE_PARAMS_BYTES) {
    throw new GatewayError("INITIALIZE_TOO_LARGE", String(config.MAX_INITIALIZE_PARAMS_BYTES));
  }
}

/** Parses and checks a POST body: one JSON-RPC 2.0 message or a non-empty batch of them. */
export function parseMessages(text: string): { messages: JsonRpcMessage[]; batch: boolean } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new GatewayError("PARSE_ERROR");
  }
  const batch = Array.isArray(parsed);
  const messages = (batch ? parsed : [parsed]) as unknown[];
  const valid = (m: unknown): m is JsonRpcMessage =>
    typeof m === "object" &&
    m !== null &&
    (m as JsonRpcMessage).jsonrpc === "2.0" &&
    (typeof (m as JsonRpcMessage).method === "string" || "result" in m || "error" in m);
  if (messages.length === 0 || !messages.every(valid)) throw new GatewayError("INVALID_REQUEST");
  return { messages, batch };
}

/**
 * POST, GET and DELETE on /mcp, as HTTP only: method, content type, body size and JSON-RPC
 * shape are checked here; everything about sessions, servers and recovery is the broker's
 * (docs/architecture.md#request-flow). Authentication has already run.
 */
export function mcpRoutes({ config, broker, store, busy }: McpRouteDeps): Hono<GatewayEnv> {
  const app = new Hono<GatewayEnv>();
  const streams = new StreamCounter(config.MAX_STREAMS_PER_USER);

  app.post("/mcp", async (c) => {
    const contentType = requestHeader(c, "content-type") ?? "";
    if (!contentType.toLowerCase().includes("application/json")) throw new GatewayError("UNSUPPORTED_MEDIA_TYPE");
    const text = await readBody(c.env.incoming, config.MAX_BODY_BYTES);
    if (text === null) throw new GatewayError("BODY_TOO_LARGE", String(config.MAX_BODY_BYTES));
    const { messages, batch } = parseMessages(text);
    describeMcpRequest(messages);
    checkLimits(config, messages);
    const mcpMethod = requestHeader(c, "mcp-method");
    const protocolVersion = requestHeader(c, "mcp-protocol-version");
    if (mcpMethod !== undefined) {
      checkRequestMetadata({ mcpMethod, mcpName: requestHeader(c, "mcp-name"), protocolVersion }, messages, batch);
    }
    // Authentication charged one request; a batch costs one per message.
    await chargeRequests(config, store, c.get("user"), messages.length - 1);
    c.env.outgoing.once("close", busy.hold(c.get("user").id));
    const answer = await broker.post(c.get("user"), c.get("log"), {
      messages,
      batch,
      text,
      headers: c.env.incoming.headers,
      clientSessionId: requestHeader(c, "mcp-session-id"),
      protocolVersion,
      mcpMethod,
      gone: ClientGone.watch(c.env.outgoing),
    });
    return sendAnswer(c, answer);
  });

  app.get("/mcp", async (c) => {
    const user = c.get("user");
    // Held until the client's connection closes, whatever ends the stream.
    const release = streams.open(user.id);
    c.env.outgoing.once("close", release);
    c.env.outgoing.once("close", busy.hold(user.id));
    try {
      const answer = await broker.listen(user, c.get("log"), {
        headers: c.env.incoming.headers,
        clientSessionId: requestHeader(c, "mcp-session-id"),
        lastEventId: requestHeader(c, "last-event-id"),
        gone: ClientGone.watch(c.env.outgoing),
      });
      return sendAnswer(c, answer);
    } catch (error) {
      release();
      throw error;
    }
  });

  app.delete("/mcp", async (c) => {
    await broker.end(c.get("user"), c.get("log"), requestHeader(c, "mcp-session-id"));
    return c.body(null, 200);
  });

  return app;
}

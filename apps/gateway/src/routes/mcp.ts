import { Hono } from "hono";
import type { Broker } from "../broker.js";
import type { GatewayConfig } from "../config.js";
import { type GatewayEnv, requestHeader } from "../env.js";
import { GatewayError } from "../errors.js";
import { ClientGone, readBody } from "../forward/client-request.js";
import type { Answer } from "../forward/reply.js";
import type { JsonRpcMessage } from "../rpc-ids.js";

export interface McpRouteDeps {
  config: Pick<GatewayConfig, "MAX_BODY_BYTES">;
  broker: Broker;
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

const toResponse = (answer: Answer) => new Response(answer.body, { status: answer.status, headers: answer.headers });

/**
 * POST, GET and DELETE on /mcp, as HTTP only: method, content type, body size and JSON-RPC
 * shape are checked here; everything about sessions, servers and recovery is the broker's
 * (docs/architecture.md#request-flow). Authentication has already run.
 */
export function mcpRoutes({ config, broker }: McpRouteDeps): Hono<GatewayEnv> {
  const app = new Hono<GatewayEnv>();

  app.post("/mcp", async (c) => {
    const contentType = requestHeader(c, "content-type") ?? "";
    if (!contentType.toLowerCase().includes("application/json")) throw new GatewayError("UNSUPPORTED_MEDIA_TYPE");
    const text = await readBody(c.env.incoming, config.MAX_BODY_BYTES);
    if (text === null) throw new GatewayError("BODY_TOO_LARGE", String(config.MAX_BODY_BYTES));
    const { messages, batch } = parseMessages(text);
    const answer = await broker.post(c.get("user"), c.get("log"), {
      messages,
      batch,
      text,
      headers: c.env.incoming.headers,
      clientSessionId: requestHeader(c, "mcp-session-id"),
      protocolVersion: requestHeader(c, "mcp-protocol-version"),
      mcpMethod: requestHeader(c, "mcp-method"),
      gone: ClientGone.watch(c.env.outgoing),
    });
    return toResponse(answer);
  });

  app.get("/mcp", async (c) => {
    const answer = await broker.listen(c.get("user"), c.get("log"), {
      headers: c.env.incoming.headers,
      clientSessionId: requestHeader(c, "mcp-session-id"),
      gone: ClientGone.watch(c.env.outgoing),
    });
    return toResponse(answer);
  });

  app.delete("/mcp", async (c) => {
    await broker.end(c.get("user"), c.get("log"), requestHeader(c, "mcp-session-id"));
    return c.body(null, 200);
  });

  return app;
}

import {
  type Attributes,
  failSpan,
  inServerSpan,
  inSpan,
  recordingSpan,
  SpanKind,
  tracingOn,
} from "@mcp-broker/service-runtime";
import type { SessionStore } from "@mcp-broker/session-store";
import type { MiddlewareHandler } from "hono";
import { type GatewayEnv, requestHeader } from "./env.js";
import type { JsonRpcMessage } from "./rpc-ids.js";

/**
 * The gateway's spans (docs/architecture.md#tracing). Attribute names follow OpenTelemetry's
 * MCP and HTTP conventions where they exist; the broker's own carry the `mcpb.` prefix. Users
 * and sessions appear only as the same short prefixes the logs use: never a key, never a whole
 * session id (a bearer credential for that session).
 */
export const ATTR = {
  mcpMethod: "mcp.method.name",
  toolName: "gen_ai.tool.name",
  batchSize: "mcpb.batch.size",
  userPrefix: "mcpb.user.id_prefix",
  sessionPrefix: "mcpb.session.id_prefix",
  httpMethod: "http.request.method",
  httpRoute: "http.route",
  httpStatus: "http.response.status_code",
  dbSystem: "db.system.name",
  dbOperation: "db.operation.name",
} as const;

/** The nonce's first 8 characters of a broker session id (as logged), or undefined for anything else. */
function sessionPrefix(id: string | undefined): string | undefined {
  return id ? /^mcpb1\.[0-9a-f]{16}\.([A-Za-z0-9_-]{8})/.exec(id)?.[1] : undefined;
}

/**
 * A server span per /mcp request, child of the client's `traceparent` if it sent one; ended
 * when the answer has been written (an event stream: when it closes), not when the handler returns.
 * Registered only while tracing is on: with it off, the request crosses no extra middleware.
 */
export function traceRequests(): MiddlewareHandler<GatewayEnv> {
  return (c, next) => {
    const method = c.req.method;
    return inServerSpan(
      c.env.incoming.headers,
      `${method} /mcp`,
      async (span) => {
        try {
          await next();
        } finally {
          if (span?.isRecording()) {
            const user = c.get("user");
            const session = sessionPrefix(requestHeader(c, "mcp-session-id"));
            if (user) span.setAttribute(ATTR.userPrefix, user.tag);
            if (session) span.setAttribute(ATTR.sessionPrefix, session);
            span.setAttribute(ATTR.httpStatus, c.res.status);
            if (c.res.status >= 500) failSpan(span, { code: String(c.res.status) });
          }
          const outgoing = c.env.outgoing;
          if (outgoing && !outgoing.writableFinished && !outgoing.destroyed) outgoing.once("close", () => span?.end());
          else span?.end();
        }
      },
      () => ({ [ATTR.httpMethod]: method, [ATTR.httpRoute]: "/mcp" }),
    );
  };
}

/**
 * Names the request's span after what it asks (MCP semantic conventions: `{method} {tool}`),
 * once the route has parsed the body. A batch is named after its first request.
 */
export function describeMcpRequest(messages: readonly JsonRpcMessage[]): void {
  const span = recordingSpan();
  const first = messages[0];
  if (!span || !first) return;
  const method = typeof first.method === "string" ? first.method : "response";
  const tool = method === "tools/call" ? (first.params as { name?: unknown } | undefined)?.name : undefined;
  const attributes: Attributes = { [ATTR.mcpMethod]: method };
  if (typeof tool === "string") attributes[ATTR.toolName] = tool.slice(0, 128);
  if (messages.length > 1) attributes[ATTR.batchSize] = messages.length;
  span.setAttributes(attributes);
  span.updateName(typeof tool === "string" ? `${method} ${tool.slice(0, 128)}` : method);
}

/**
 * The session store with a client span around each call made inside a traced request: each
 * is one Redis round trip (a script or a pipeline), or, for `withUserLock`, the lock held
 * around its work. Calls outside a request (readiness checks) and all calls with tracing off
 * go straight to the store.
 */
export function tracedStore(store: SessionStore): SessionStore {
  if (!tracingOn()) return store;
  return new Proxy(store, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property);
      if (typeof value !== "function" || typeof property !== "string") return value;
      const method = value as (...args: unknown[]) => unknown;
      return (...args: unknown[]) => {
        if (!recordingSpan()) return method.apply(target, args);
        return inSpan(`redis ${property}`, async () => method.apply(target, args), {
          kind: SpanKind.CLIENT,
          attributes: () => ({ [ATTR.dbSystem]: "redis", [ATTR.dbOperation]: property }),
        });
      };
    },
  });
}

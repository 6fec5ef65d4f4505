/** JSON-RPC error codes the gateway answers with (server-defined range, plus the standard ones). */
export const RPC = {
  parseError: -32700,
  invalidRequest: -32600,
  internalError: -32603,
  /** The MCP SDKs' code for "Session not found". */
  sessionNotFound: -32001,
  server: -32000,
  unavailable: -32003,
  unauthorized: -32004,
  rateLimited: -32005,
  /** MCP 2026-07-28 transports, Server Validation: the request metadata headers do not match the body. */
  headerMismatch: -32020,
} as const;

/**
 * Every error the gateway answers with, as undici's `lib/core/errors.js` lists its own: code
 * throws `new GatewayError(code, detail)` (errors.ts), callers branch on the code, and the table
 * below is the one place a code becomes an HTTP answer (docs/architecture.md#failure-rules).
 */
export type ErrorCode =
  // the request itself
  | "PARSE_ERROR"
  | "INVALID_REQUEST"
  | "INITIALIZE_NOT_ALONE"
  | "HEADER_MISMATCH"
  | "UNSUPPORTED_MEDIA_TYPE"
  | "BODY_TOO_LARGE"
  | "BATCH_TOO_LARGE"
  | "INITIALIZE_TOO_LARGE"
  | "METHOD_NOT_ALLOWED"
  | "ORIGIN_NOT_ALLOWED"
  | "NO_ROUTE"
  | "OAUTH_NOT_SUPPORTED"
  // who is asking
  | "UNAUTHORIZED_MISSING"
  | "UNAUTHORIZED_MALFORMED"
  | "UNAUTHORIZED_REJECTED"
  | "AUTH_UNAVAILABLE"
  | "RATE_LIMITED"
  | "VERIFY_LIMITED"
  | "STARTS_LIMITED"
  | "BACKENDS_FULL"
  | "TOO_MANY_STREAMS"
  // sessions and streams
  | "SESSION_NOT_FOUND"
  | "SESSION_ID_REQUIRED"
  | "NO_STREAM"
  // the user's MCP server, once reached
  | "UPSTREAM_TIMEOUT"
  | "UPSTREAM_FAILED"
  | "UPSTREAM_TOO_LARGE"
  | "NOT_REPEATED"
  | "CLIENT_CLOSED"
  // the store's and the container manager's own codes (StoreError, ContainerError)
  | "STORE_UNAVAILABLE"
  | "LOCK_TIMEOUT"
  | "DOCKER_UNAVAILABLE"
  | "IMAGE_NOT_FOUND"
  | "CONTAINER_START_TIMEOUT"
  | "CONTAINER_START_FAILED"
  | "INTERNAL";

export interface ErrorRule {
  status: number;
  rpc: number;
  /** The message the client reads; `detail` is what the thrower knew (a header name, a limit). */
  message: (detail: string) => string;
  headers?: (detail: string) => Record<string, string>;
}

const say = (text: string) => () => text;
// RFC 6750 §3; MCP clients show this, and stop OAuth discovery when it names no metadata.
const challenge = (error?: string) => () => ({
  "WWW-Authenticate": `Bearer realm="mcp-session-broker"${error ? `, error="${error}"` : ""}`,
});
const retryAfter = (seconds: number) => () => ({ "Retry-After": String(seconds) });
/** A 429 whose detail is the seconds until the budget refills. */
const limited = (what: string): ErrorRule => ({
  status: 429,
  rpc: RPC.rateLimited,
  message: (seconds) => `${what}; retry in ${seconds} s`,
  headers: (seconds) => ({ "Retry-After": seconds }),
});
const keyHint = (header: string) => `send your API key in the ${header} header (or Authorization: Bearer <key>)`;

export const ERRORS: { readonly [Code in ErrorCode]: ErrorRule } = {
  PARSE_ERROR: {
    status: 400,
    rpc: RPC.parseError,
    message: say("Parse error: the request body is not valid JSON"),
  },
  INVALID_REQUEST: {
    status: 400,
    rpc: RPC.invalidRequest,
    message: say("Invalid Request: expected a JSON-RPC 2.0 message or batch"),
  },
  INITIALIZE_NOT_ALONE: {
    status: 400,
    rpc: RPC.invalidRequest,
    message: say("initialize must be the only message in its request"),
  },
  HEADER_MISMATCH: {
    status: 400,
    rpc: RPC.headerMismatch,
    message: (detail) => `Header mismatch: ${detail}`,
  },
  UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    rpc: RPC.invalidRequest,
    message: say("Unsupported Media Type: Content-Type must be application/json"),
  },
  BODY_TOO_LARGE: {
    status: 413,
    rpc: RPC.invalidRequest,
    message: (limit) => `Request body larger than ${limit} bytes`,
  },
  BATCH_TOO_LARGE: {
    status: 400,
    rpc: RPC.invalidRequest,
    message: (limit) => `Batch larger than ${limit} messages`,
  },
  INITIALIZE_TOO_LARGE: {
    status: 413,
    rpc: RPC.invalidRequest,
    message: (limit) => `initialize params larger than ${limit} bytes`,
  },
  METHOD_NOT_ALLOWED: {
    status: 405,
    rpc: RPC.invalidRequest,
    message: (method) => `Method ${method} not allowed on /mcp`,
    headers: () => ({ Allow: "GET, POST, DELETE" }),
  },
  // MCP transports: servers must validate Origin to stop DNS rebinding from browsers.
  ORIGIN_NOT_ALLOWED: { status: 403, rpc: RPC.invalidRequest, message: (origin) => `Origin ${origin} is not allowed` },
  NO_ROUTE: { status: 404, rpc: RPC.invalidRequest, message: (request) => `No route for ${request}` },
  // 404, never `{}`: MCP clients then stop probing for OAuth and show the 401's message.
  OAUTH_NOT_SUPPORTED: {
    status: 404,
    rpc: RPC.invalidRequest,
    message: (header) => `This server does not use OAuth: send your API key in the ${header} header`,
  },
  UNAUTHORIZED_MISSING: {
    status: 401,
    rpc: RPC.unauthorized,
    message: (header) => `Missing API key: ${keyHint(header)}`,
    headers: challenge(),
  },
  UNAUTHORIZED_MALFORMED: {
    status: 401,
    rpc: RPC.unauthorized,
    message: (header) => `Malformed API key: ${keyHint(header)}`,
    headers: challenge("invalid_token"),
  },
  UNAUTHORIZED_REJECTED: {
    status: 401,
    rpc: RPC.unauthorized,
    message: say("API key rejected by the upstream service"),
    headers: challenge("invalid_token"),
  },
  AUTH_UNAVAILABLE: {
    status: 503,
    rpc: RPC.unavailable,
    message: (reason) => `Cannot verify API keys right now (${reason})`,
    headers: retryAfter(10),
  },
  RATE_LIMITED: limited("Rate limit exceeded"),
  // Per client IP, in front of the upstream verification (random keys must not flood it).
  VERIFY_LIMITED: limited("Too many new API keys from your address"),
  // Per client IP: each new key's first request starts a server (memory, CPU).
  STARTS_LIMITED: limited("Too many MCP servers started from your address"),
  BACKENDS_FULL: {
    status: 503,
    rpc: RPC.unavailable,
    message: say("Every MCP server slot is in use; retry shortly"),
    headers: retryAfter(30),
  },
  TOO_MANY_STREAMS: {
    status: 429,
    rpc: RPC.rateLimited,
    message: (limit) => `Too many open streams for this API key (limit ${limit})`,
    headers: retryAfter(5),
  },
  SESSION_NOT_FOUND: {
    status: 404,
    rpc: RPC.sessionNotFound,
    message: say("Session not found: initialize a new session"),
  },
  SESSION_ID_REQUIRED: {
    status: 400,
    rpc: RPC.invalidRequest,
    message: say("DELETE needs the Mcp-Session-Id to end"),
  },
  // MCP: GET answers with an SSE stream or 405, nothing else (other answers broke Claude Code).
  NO_STREAM: {
    status: 405,
    rpc: RPC.server,
    message: (reason) => reason || "No server-to-client stream: your MCP server is not running",
    headers: () => ({ Allow: "POST, DELETE" }),
  },
  UPSTREAM_TIMEOUT: { status: 504, rpc: RPC.server, message: say("Your MCP server did not answer in time") },
  UPSTREAM_FAILED: {
    status: 502,
    rpc: RPC.server,
    message: (reason) => `Your MCP server failed to answer (${reason})`,
  },
  UPSTREAM_TOO_LARGE: {
    status: 502,
    rpc: RPC.server,
    message: (limit) => `Your MCP server's answer is larger than ${limit} bytes`,
  },
  // A call lost with its server, not safe to send again (docs/architecture.md#recovery-and-replay):
  // HTTP 200 with a JSON-RPC error per request, so the client's call fails and its session lives on.
  NOT_REPEATED: {
    status: 200,
    rpc: RPC.internalError,
    message: say("the MCP server stopped while running this call; it was not repeated"),
  },
  CLIENT_CLOSED: { status: 499, rpc: RPC.server, message: say("Client closed the request") },
  STORE_UNAVAILABLE: {
    status: 503,
    rpc: RPC.unavailable,
    message: say("Session store unavailable; retry shortly"),
    headers: retryAfter(5),
  },
  LOCK_TIMEOUT: {
    status: 503,
    rpc: RPC.unavailable,
    message: say("Your MCP server is still starting; retry shortly"),
    headers: retryAfter(5),
  },
  DOCKER_UNAVAILABLE: {
    status: 503,
    rpc: RPC.unavailable,
    message: say("Container engine unavailable; retry shortly"),
    headers: retryAfter(10),
  },
  // The container manager's message names the image, which is what the operator must fix.
  IMAGE_NOT_FOUND: { status: 503, rpc: RPC.unavailable, message: (message) => message, headers: retryAfter(60) },
  CONTAINER_START_TIMEOUT: {
    status: 504,
    rpc: RPC.unavailable,
    message: say("Your MCP server did not become ready in time; retry shortly"),
  },
  CONTAINER_START_FAILED: {
    status: 502,
    rpc: RPC.unavailable,
    message: say("Your MCP server failed to start; the operator's logs say why"),
  },
  // The detail stays in the log; the client learns nothing about the gateway's insides.
  INTERNAL: { status: 500, rpc: RPC.server, message: say("Internal gateway error") },
};

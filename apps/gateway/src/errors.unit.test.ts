import {
  ContainerStartError,
  ContainerStartTimeoutError,
  DockerUnavailableError,
  ImageNotFoundError,
} from "@mcp-broker/container-manager";
import { LockTimeoutError, StoreUnavailableError } from "@mcp-broker/session-store";
import { ERRORS, type ErrorCode } from "./error-codes.js";
import { GatewayError, toGatewayError } from "./errors.js";

const bearer = 'Bearer realm="mcp-session-broker"';
const invalidToken = `${bearer}, error="invalid_token"`;
const keyHint = "send your API key in the X-Outline-API-Key header (or Authorization: Bearer <key>)";

/** code, detail → status, JSON-RPC code, message, headers: what clients and tests rely on. */
const EXPECTED: Array<[ErrorCode, string, number, number, string, Record<string, string>]> = [
  ["PARSE_ERROR", "", 400, -32700, "Parse error: the request body is not valid JSON", {}],
  ["INVALID_REQUEST", "", 400, -32600, "Invalid Request: expected a JSON-RPC 2.0 message or batch", {}],
  ["INITIALIZE_NOT_ALONE", "", 400, -32600, "initialize must be the only message in its request", {}],
  ["HEADER_MISMATCH", "Mcp-Name header missing", 400, -32020, "Header mismatch: Mcp-Name header missing", {}],
  ["UNSUPPORTED_MEDIA_TYPE", "", 415, -32600, "Unsupported Media Type: Content-Type must be application/json", {}],
  ["BODY_TOO_LARGE", "2048", 413, -32600, "Request body larger than 2048 bytes", {}],
  ["BATCH_TOO_LARGE", "32", 400, -32600, "Batch larger than 32 messages", {}],
  ["INITIALIZE_TOO_LARGE", "8192", 413, -32600, "initialize params larger than 8192 bytes", {}],
  ["METHOD_NOT_ALLOWED", "PUT", 405, -32600, "Method PUT not allowed on /mcp", { Allow: "GET, POST, DELETE" }],
  ["ORIGIN_NOT_ALLOWED", "https://evil.example", 403, -32600, "Origin https://evil.example is not allowed", {}],
  ["NO_ROUTE", "GET /nope", 404, -32600, "No route for GET /nope", {}],
  [
    "OAUTH_NOT_SUPPORTED",
    "X-Outline-API-Key",
    404,
    -32600,
    "This server does not use OAuth: send your API key in the X-Outline-API-Key header",
    {},
  ],
  [
    "UNAUTHORIZED_MISSING",
    "X-Outline-API-Key",
    401,
    -32004,
    `Missing API key: ${keyHint}`,
    { "WWW-Authenticate": bearer },
  ],
  [
    "UNAUTHORIZED_MALFORMED",
    "X-Outline-API-Key",
    401,
    -32004,
    `Malformed API key: ${keyHint}`,
    { "WWW-Authenticate": invalidToken },
  ],
  [
    "UNAUTHORIZED_REJECTED",
    "",
    401,
    -32004,
    "API key rejected by the upstream service",
    { "WWW-Authenticate": invalidToken },
  ],
  [
    "AUTH_UNAVAILABLE",
    "status 500",
    503,
    -32003,
    "Cannot verify API keys right now (status 500)",
    { "Retry-After": "10" },
  ],
  ["RATE_LIMITED", "7", 429, -32005, "Rate limit exceeded; retry in 7 s", { "Retry-After": "7" }],
  ["VERIFY_LIMITED", "9", 429, -32005, "Too many new API keys from your address; retry in 9 s", { "Retry-After": "9" }],
  [
    "STARTS_LIMITED",
    "9",
    429,
    -32005,
    "Too many MCP servers started from your address; retry in 9 s",
    { "Retry-After": "9" },
  ],
  ["BACKENDS_FULL", "", 503, -32003, "Every MCP server slot is in use; retry shortly", { "Retry-After": "30" }],
  ["TOO_MANY_STREAMS", "20", 429, -32005, "Too many open streams for this API key (limit 20)", { "Retry-After": "5" }],
  ["SESSION_NOT_FOUND", "", 404, -32001, "Session not found: initialize a new session", {}],
  ["SESSION_ID_REQUIRED", "", 400, -32600, "DELETE needs the Mcp-Session-Id to end", {}],
  [
    "NO_STREAM",
    "",
    405,
    -32000,
    "No server-to-client stream: your MCP server is not running",
    { Allow: "POST, DELETE" },
  ],
  ["NO_STREAM", "No stream here", 405, -32000, "No stream here", { Allow: "POST, DELETE" }],
  ["UPSTREAM_TIMEOUT", "UND_ERR_HEADERS_TIMEOUT", 504, -32000, "Your MCP server did not answer in time", {}],
  ["UPSTREAM_FAILED", "ECONNRESET", 502, -32000, "Your MCP server failed to answer (ECONNRESET)", {}],
  ["UPSTREAM_TOO_LARGE", "1024", 502, -32000, "Your MCP server's answer is larger than 1024 bytes", {}],
  ["NOT_REPEATED", "", 200, -32603, "the MCP server stopped while running this call; it was not repeated", {}],
  ["CLIENT_CLOSED", "UND_ERR_ABORTED", 499, -32000, "Client closed the request", {}],
  ["STORE_UNAVAILABLE", "", 503, -32003, "Session store unavailable; retry shortly", { "Retry-After": "5" }],
  ["LOCK_TIMEOUT", "", 503, -32003, "Your MCP server is still starting; retry shortly", { "Retry-After": "5" }],
  ["DOCKER_UNAVAILABLE", "", 503, -32003, "Container engine unavailable; retry shortly", { "Retry-After": "10" }],
  [
    "IMAGE_NOT_FOUND",
    "backend image x:1 is not available",
    503,
    -32003,
    "backend image x:1 is not available",
    {
      "Retry-After": "60",
    },
  ],
  ["CONTAINER_START_TIMEOUT", "", 504, -32003, "Your MCP server did not become ready in time; retry shortly", {}],
  ["CONTAINER_START_FAILED", "", 502, -32003, "Your MCP server failed to start; the operator's logs say why", {}],
  ["INTERNAL", "", 500, -32000, "Internal gateway error", {}],
];

describe("the error table", () => {
  it.each(EXPECTED)("%s (%j) answers %i, JSON-RPC %i", (code, detail, status, rpc, message, headers) => {
    const error = new GatewayError(code, detail);
    expect({ status: error.status, rpc: error.rpcCode, message: error.message, headers: error.headers }).toEqual({
      status,
      rpc,
      message,
      headers,
    });
  });

  it("has a row for every code, and every code is checked above", () => {
    expect(new Set(EXPECTED.map(([code]) => code))).toEqual(new Set(Object.keys(ERRORS)));
  });

  it("maps the store's and the container manager's errors by their code", () => {
    const mapped = (error: unknown) => {
      const answer = toGatewayError(error);
      return [answer.code, answer.status, answer.headers["Retry-After"]];
    };
    expect(mapped(new StoreUnavailableError(new Error("ECONNREFUSED")))).toEqual(["STORE_UNAVAILABLE", 503, "5"]);
    expect(mapped(new LockTimeoutError("user", 1000))).toEqual(["LOCK_TIMEOUT", 503, "5"]);
    expect(mapped(new DockerUnavailableError(new Error("no socket")))).toEqual(["DOCKER_UNAVAILABLE", 503, "10"]);
    expect(mapped(new ContainerStartTimeoutError("c", 100))).toEqual(["CONTAINER_START_TIMEOUT", 504, undefined]);
    expect(mapped(new ContainerStartError("c", "exit 1"))).toEqual(["CONTAINER_START_FAILED", 502, undefined]);
    const image = toGatewayError(new ImageNotFoundError("mcp-broker/none:never", "not found"));
    expect([image.code, image.status, image.message]).toEqual([
      "IMAGE_NOT_FOUND",
      503,
      "backend image mcp-broker/none:never is not available: not found",
    ]);
  });

  it("answers anything else as INTERNAL, keeping the cause for the log only", () => {
    const cause = new Error("secret detail");
    const answer = toGatewayError(cause);
    expect([answer.code, answer.status, answer.message]).toEqual(["INTERNAL", 500, "Internal gateway error"]);
    expect(answer.cause).toBe(cause);
    const known = new GatewayError("SESSION_NOT_FOUND");
    expect(toGatewayError(known)).toBe(known);
  });
});

import { ContainerError } from "@mcp-broker/container-manager";
import { StoreError } from "@mcp-broker/session-store";

/** JSON-RPC error codes the gateway answers with (server-defined range, plus the standard ones). */
export const RPC = {
  parseError: -32700,
  invalidRequest: -32600,
  /** The MCP SDKs' code for "Session not found". */
  sessionNotFound: -32001,
  server: -32000,
  unavailable: -32003,
  unauthorized: -32004,
  rateLimited: -32005,
} as const;

/** An error the gateway answers with as is: an HTTP status, a JSON-RPC code, extra headers. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly rpcCode: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "HttpError";
  }
}

export function rpcErrorBody(code: number, message: string, id: unknown = null) {
  return { jsonrpc: "2.0" as const, error: { code, message }, id };
}

/**
 * The one place errors become HTTP answers: typed errors from the store and the container
 * manager map by `code` (Redis down → 503 + Retry-After, image missing → 503 naming it,
 * start timeout → 504); anything unknown is a 500 whose detail stays in the log.
 */
export function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  if (error instanceof StoreError) {
    if (error.code === "LOCK_TIMEOUT") {
      return new HttpError(503, RPC.unavailable, "Your MCP server is still starting; retry shortly", {
        "Retry-After": "5",
      });
    }
    return new HttpError(503, RPC.unavailable, "Session store unavailable; retry shortly", { "Retry-After": "5" });
  }
  if (error instanceof ContainerError) {
    switch (error.code) {
      case "DOCKER_UNAVAILABLE":
        return new HttpError(503, RPC.unavailable, "Container engine unavailable; retry shortly", {
          "Retry-After": "10",
        });
      case "IMAGE_NOT_FOUND":
        return new HttpError(503, RPC.unavailable, error.message, { "Retry-After": "60" });
      case "CONTAINER_START_TIMEOUT":
        return new HttpError(504, RPC.unavailable, "Your MCP server did not become ready in time; retry shortly");
      case "CONTAINER_START_FAILED":
        return new HttpError(502, RPC.unavailable, "Your MCP server failed to start; the operator's logs say why");
    }
  }
  return new HttpError(500, RPC.server, "Internal gateway error");
}

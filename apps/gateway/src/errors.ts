import { ContainerError } from "@mcp-broker/container-manager";
import { CodedError } from "@mcp-broker/service-runtime";
import { StoreError } from "@mcp-broker/session-store";
import { ERRORS, type ErrorCode } from "./error-codes.js";

// The error the gateway throws, and its JSON-RPC body; error-codes.ts lists the codes and
// what each answers with (docs/architecture.md#failure-rules).

/** An error the gateway answers with; its code decides the status, JSON-RPC code and headers. */
export class GatewayError extends CodedError<ErrorCode> {
  readonly status: number;
  readonly rpcCode: number;
  readonly headers: Record<string, string>;
  /** The client's request ids when the error answers each request (a batch gets an array); else `id: null`. */
  replyTo: { ids: readonly unknown[]; batch: boolean } | undefined;

  constructor(
    code: ErrorCode,
    readonly detail = "",
    options?: ErrorOptions,
  ) {
    const rule = ERRORS[code];
    super(code, rule.message(detail), options);
    this.status = rule.status;
    this.rpcCode = rule.rpc;
    this.headers = rule.headers?.(detail) ?? {};
  }
}

/**
 * Any error as the gateway's answer. The store's and the container manager's errors map by
 * their `code` into the same table (their codes are closed sets, so the compiler checks the
 * table has a row for each container code; any store failure but a lock wait reads as Redis
 * being unavailable); anything unknown is INTERNAL, its detail left to the log.
 */
export function toGatewayError(error: unknown): GatewayError {
  if (error instanceof GatewayError) return error;
  if (error instanceof StoreError) {
    const code = error.code === "LOCK_TIMEOUT" ? "LOCK_TIMEOUT" : "STORE_UNAVAILABLE";
    return new GatewayError(code, error.message, { cause: error });
  }
  if (error instanceof ContainerError) {
    const code: ErrorCode = (error as ContainerError).code;
    return new GatewayError(code, error.message, { cause: error });
  }
  return new GatewayError("INTERNAL", "", { cause: error });
}

export function rpcErrorBody(code: number, message: string, id: unknown = null) {
  return { jsonrpc: "2.0" as const, error: { code, message }, id };
}

/** The JSON-RPC body of an error answer: one error per request when it names them, else one with `id: null`. */
export function errorAnswerBody(error: GatewayError) {
  const replyTo = error.replyTo;
  if (!replyTo || replyTo.ids.length === 0) return rpcErrorBody(error.rpcCode, error.message);
  const bodies = replyTo.ids.map((id) => rpcErrorBody(error.rpcCode, error.message, id));
  return replyTo.batch ? bodies : bodies[0];
}

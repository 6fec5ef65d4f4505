import type { ErrorCode } from "../error-codes.js";
import { GatewayError } from "../errors.js";
import type { JsonRpcMessage } from "../rpc-ids.js";

/** Every way a call to the user's MCP server can fail, as the broker tells them apart. */
export type FailureKind = "refused" | "lost" | "session-gone" | "timeout" | "aborted" | "failed";

/** What src/recovery.ts does about a failure; each recovery runs at most once per request. */
export type Recovery = "replace-server" | "replace-server-if-dead" | "revive-session" | "none";

export interface FailureRule {
  /** Error `code`s meaning this failure; `name`s for errors that carry none (a web AbortError). */
  codes?: readonly string[];
  names?: readonly string[];
  /** Where codes are looked for: the error and its `cause`s (undici wraps socket errors), or the error only. */
  search?: "cause-chain" | "error";
  /** An upstream answer meaning this failure (its body read as text). */
  answer?: (status: number, body: string) => boolean;
  recovery: Recovery;
  /** What the recovery may send again: any request, or only what is safe to repeat (`safeToRepeat`). */
  replay?: "any" | "safe-only";
  /** The client's answer once the failure is not (or no longer) recovered; null: the server's answer passes on. */
  clientError: ErrorCode | null;
}

/**
 * The one classification of upstream failures (docs/architecture.md#recovery-and-replay).
 * Rows are checked in order; a code found nearer the top of the cause chain wins.
 */
export const FAILURES: { readonly [Kind in FailureKind]: FailureRule } = {
  // Never delivered: no server saw the request, so any request may be sent again.
  refused: {
    codes: ["ECONNREFUSED", "UND_ERR_CONNECT_TIMEOUT", "EHOSTUNREACH", "ENOTFOUND", "EAI_AGAIN"],
    search: "cause-chain",
    recovery: "replace-server",
    replay: "any",
    clientError: "UPSTREAM_FAILED",
  },
  // Sent, then the connection broke (before the headers, or mid-stream before the answer): the
  // server may have acted on it. Only what is safe to repeat is sent again (on a new server when
  // the old one is dead); anything else is answered NOT_REPEATED, after the dead server is
  // re-created so the next call works. A server still running answers 502: the call's fate there
  // is unknown.
  lost: {
    codes: ["ECONNRESET", "UND_ERR_SOCKET", "EPIPE", "UND_ERR_CLOSED"],
    search: "cause-chain",
    recovery: "replace-server-if-dead",
    replay: "safe-only",
    clientError: "UPSTREAM_FAILED",
  },
  // The server does not know the session, so it did not process the request. 404 (TS SDK,
  // Python SDK >= 1.26) or 400 "No valid session ID" (older Python SDK, the TS SDK's example).
  "session-gone": {
    answer: (status, body) => status === 404 || (status === 400 && /session/i.test(body)),
    recovery: "revive-session",
    replay: "any",
    clientError: null,
  },
  timeout: {
    codes: ["UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT"],
    search: "error",
    recovery: "none",
    clientError: "UPSTREAM_TIMEOUT",
  },
  aborted: {
    codes: ["UND_ERR_ABORTED"],
    names: ["AbortError"],
    search: "error",
    recovery: "none",
    clientError: "CLIENT_CLOSED",
  },
  failed: { recovery: "none", clientError: "UPSTREAM_FAILED" },
};

const KINDS = Object.keys(FAILURES) as FailureKind[];
const byCode = (search: FailureRule["search"]) =>
  new Map(
    KINDS.flatMap((kind) =>
      (FAILURES[kind].search === search ? (FAILURES[kind].codes ?? []) : []).map((code) => [code, kind]),
    ),
  );
const IN_CHAIN = byCode("cause-chain");
const ON_ERROR = byCode("error");
const BY_NAME = new Map(KINDS.flatMap((kind) => (FAILURES[kind].names ?? []).map((name) => [name, kind])));

type Coded = { code?: unknown; name?: unknown; cause?: unknown } | null | undefined;

/** The kind of a thrown failure (no answer came); `failed` when nothing more is known. */
export function classifyError(error: unknown): FailureKind {
  let current = error as Coded;
  for (let depth = 0; current && depth < 4; depth++) {
    const kind = IN_CHAIN.get(String(current.code));
    if (kind) return kind;
    current = current.cause as Coded;
  }
  const own = error as Coded;
  return ON_ERROR.get(String(own?.code)) ?? BY_NAME.get(String(own?.name)) ?? "failed";
}

/** Statuses whose body the broker reads to classify them (only for a request on a known session). */
export const mayBeSessionGone = (status: number) => status === 404 || status === 400;

/** The kind of a failure the server answered with, or null for an answer to pass on. */
export function classifyAnswer(status: number, body: string): FailureKind | null {
  return KINDS.find((kind) => FAILURES[kind].answer?.(status, body)) ?? null;
}

/** The client's answer for a failure that is not recovered. */
export function failureError(error: unknown): GatewayError {
  if (error instanceof GatewayError) return error;
  const code = FAILURES[classifyError(error)].clientError ?? "UPSTREAM_FAILED";
  const coded = error as { code?: unknown; message?: unknown } | null | undefined;
  const detail = String(coded?.code ?? coded?.message ?? error);
  return new GatewayError(code, detail, { cause: error });
}

/**
 * Methods whose repetition changes nothing on the server (MCP 2025-06-18: they read or list).
 * `tools/call` is safe only for a tool annotated `readOnlyHint` or `idempotentHint`.
 */
const SAFE_METHODS = new Set(["initialize", "ping", "resources/read", "prompts/get", "completion/complete"]);
const isSafeMethod = (method: string) => SAFE_METHODS.has(method) || method.endsWith("/list");

/** The tools a POST calls: what `safeToRepeat` needs to know about. */
export function calledTools(messages: readonly JsonRpcMessage[]): string[] {
  return messages.flatMap((message) => {
    if (message.method !== "tools/call" || !("id" in message)) return [];
    const name = (message.params as { name?: unknown } | undefined)?.name;
    return [typeof name === "string" ? name : ""];
  });
}

/**
 * Whether a POST may be sent again after its connection was lost: every request in it must be
 * (a batch is as safe as its least safe request); notifications and responses change nothing
 * twice. `safeTools` are the called tools whose last `tools/list` annotations say so.
 */
export function safeToRepeat(messages: readonly JsonRpcMessage[], safeTools: ReadonlySet<string>): boolean {
  return messages.every((message) => {
    if (typeof message.method !== "string" || !("id" in message)) return true;
    if (message.method !== "tools/call") return isSafeMethod(message.method);
    const name = (message.params as { name?: unknown } | undefined)?.name;
    return typeof name === "string" && safeTools.has(name);
  });
}

/**
 * The tools of a `tools/list` result and whether each is safe to repeat: its annotations say
 * `readOnlyHint: true` (it changes nothing) or `idempotentHint: true` (twice is as once).
 * Null for any other message.
 */
export function toolHintsOf(message: Record<string, unknown>): Array<{ name: string; safeToRepeat: boolean }> | null {
  const tools = (message.result as { tools?: unknown } | undefined)?.tools;
  if (!Array.isArray(tools)) return null;
  return tools.flatMap((tool: { name?: unknown; annotations?: Record<string, unknown> } | null) => {
    if (typeof tool?.name !== "string") return [];
    const hints = tool.annotations ?? {};
    return [{ name: tool.name, safeToRepeat: hints.readOnlyHint === true || hints.idempotentHint === true }];
  });
}

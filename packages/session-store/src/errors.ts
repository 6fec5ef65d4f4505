import { CodedError } from "@mcp-broker/service-runtime";

/** Every code a store error can carry: a closed set, so a `switch` over `code` is checked. */
export type StoreErrorCode = "STORE_UNAVAILABLE" | "LOCK_TIMEOUT" | "SCRIPT_INCLUDE";

/** Base for the store's errors: callers branch on `code`, never on message text. */
export class StoreError<Code extends StoreErrorCode = StoreErrorCode> extends CodedError<Code> {}

/** Redis did not answer (down, unreachable, timed out). Maps to 503 with Retry-After. */
export class StoreUnavailableError extends StoreError<"STORE_UNAVAILABLE"> {
  constructor(cause: unknown) {
    super("STORE_UNAVAILABLE", `session store unavailable: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

/** A user's lock stayed held past the caller's deadline. */
export class LockTimeoutError extends StoreError<"LOCK_TIMEOUT"> {
  constructor(
    readonly userId: string,
    waitedMs: number,
  ) {
    super("LOCK_TIMEOUT", `lock for user ${userId.slice(0, 12)} still held after ${waitedMs} ms`);
  }
}

/** A Lua script's `@include` names a missing file or closes a cycle; found when the scripts load. */
export class ScriptIncludeError extends StoreError<"SCRIPT_INCLUDE"> {
  constructor(message: string, options?: ErrorOptions) {
    super("SCRIPT_INCLUDE", message, options);
  }
}

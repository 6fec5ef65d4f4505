/** Base for the store's errors: callers branch on `code`, never on message text. */
export class StoreError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Redis did not answer (down, unreachable, timed out). Maps to 503 with Retry-After. */
export class StoreUnavailableError extends StoreError {
  constructor(cause: unknown) {
    super("STORE_UNAVAILABLE", `session store unavailable: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

/** A user's lock stayed held past the caller's deadline. */
export class LockTimeoutError extends StoreError {
  constructor(
    readonly userId: string,
    waitedMs: number,
  ) {
    super("LOCK_TIMEOUT", `lock for user ${userId.slice(0, 12)} still held after ${waitedMs} ms`);
  }
}

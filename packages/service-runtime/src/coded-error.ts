/**
 * Base for errors that callers branch on by `code`, never by message text — as undici's
 * `lib/core/errors.js` does: one class per failure, each with a stable literal code.
 * A package narrows `Code` to its closed set, so a `switch (error.code)` is checked.
 */
export class CodedError<Code extends string = string> extends Error {
  constructor(
    readonly code: Code,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    // The subclass's own name in logs and stack traces, without each subclass repeating it.
    this.name = new.target.name;
  }
}

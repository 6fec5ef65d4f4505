import { ReplyError } from "ioredis";
import { StoreError, StoreUnavailableError } from "./errors.js";

/**
 * Replies that mean "this Redis cannot serve you right now", not "your command is wrong": a
 * restarted server still loading its AOF, a replica after a failover, a master without quorum.
 */
const NOT_SERVING = /^(LOADING|READONLY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|BUSY) /;

/**
 * Runs a Redis call and turns connection failures (refused, closed, timed out, retries used up)
 * and not-serving replies into StoreUnavailableError. Any other ReplyError is Redis answering —
 * a bug in a script or a command — and passes through unchanged so it is not mistaken for an outage.
 */
export async function guard<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof StoreError) throw error;
    if (error instanceof ReplyError && !NOT_SERVING.test((error as Error).message)) throw error;
    throw new StoreUnavailableError(error);
  }
}

/**
 * Runs a pipeline or MULTI under `guard`. Both resolve with each command's error instead of
 * rejecting (a Redis restart fails every queued command with MaxRetriesPerRequestError), so the
 * first error is raised here, inside the guard, and is classified like any other.
 */
export function guardExec(batch: {
  exec(): Promise<[Error | null, unknown][] | null>;
}): Promise<[Error | null, unknown][]> {
  return guard(async () => {
    const replies = await batch.exec();
    const failed = replies?.find(([error]) => error);
    if (!replies || failed) throw failed?.[0] ?? new Error("empty pipeline result");
    return replies;
  });
}

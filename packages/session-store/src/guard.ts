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

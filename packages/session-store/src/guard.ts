import { ReplyError } from "ioredis";
import { StoreError, StoreUnavailableError } from "./errors.js";

/**
 * Runs a Redis call and turns connection failures (refused, closed, timed out, retries used up)
 * into StoreUnavailableError. A ReplyError is Redis answering — a bug in a script or a command —
 * and passes through unchanged so it is not mistaken for an outage.
 */
export async function guard<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof StoreError || error instanceof ReplyError) throw error;
    throw new StoreUnavailableError(error);
  }
}

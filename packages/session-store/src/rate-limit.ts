import type { Redis } from "ioredis";
import { RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import { StoreUnavailableError } from "./errors.js";
import type { Keyspace } from "./keys.js";
import type { RateLimitVerdict } from "./types.js";

/** Requests per user per window, counted in Redis so every gateway replica shares the budget. */
export class RateLimit {
  readonly #limiter: RateLimiterRedis | undefined;

  /** `points` 0 turns the limit off. */
  constructor(redis: Redis, keys: Keyspace, points: number, windowSeconds: number) {
    if (points > 0) {
      this.#limiter = new RateLimiterRedis({
        storeClient: redis,
        keyPrefix: keys.rateLimitPrefix,
        points,
        duration: windowSeconds,
      });
    }
  }

  /** Counts one request against the user's window (rate-limiter-flexible, atomic in Redis). */
  async consume(userId: string): Promise<RateLimitVerdict> {
    if (!this.#limiter) return { allowed: true, remaining: Number.POSITIVE_INFINITY };
    try {
      const result = await this.#limiter.consume(userId);
      return { allowed: true, remaining: result.remainingPoints };
    } catch (rejection) {
      // The limiter rejects with a RateLimiterRes when the budget is spent, and with the error otherwise.
      if (rejection instanceof RateLimiterRes) return { allowed: false, retryAfterMs: rejection.msBeforeNext };
      throw new StoreUnavailableError(rejection);
    }
  }
}

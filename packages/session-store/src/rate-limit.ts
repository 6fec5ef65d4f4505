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

  /** Counts `points` requests against the user's window (rate-limiter-flexible, atomic in Redis). */
  async consume(userId: string, points = 1): Promise<RateLimitVerdict> {
    return consumeFrom(this.#limiter, userId, points);
  }
}

/**
 * Per-client-IP budgets per minute (new-key starts, key verifications), one limiter per bucket
 * and budget, made on first use and shared by every replica through Redis.
 */
export class IpLimits {
  readonly #limiters = new Map<string, RateLimiterRedis>();

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keyspace,
  ) {}

  /** `perMinute` 0 turns the bucket off. */
  async consume(bucket: string, ip: string, perMinute: number): Promise<RateLimitVerdict> {
    if (perMinute <= 0) return { allowed: true, remaining: Number.POSITIVE_INFINITY };
    const name = `${bucket}:${perMinute}`;
    let limiter = this.#limiters.get(name);
    if (!limiter) {
      limiter = new RateLimiterRedis({
        storeClient: this.redis,
        keyPrefix: `${this.keys.ipLimitPrefix}:${bucket}`,
        points: perMinute,
        duration: 60,
      });
      this.#limiters.set(name, limiter);
    }
    return consumeFrom(limiter, ip, 1);
  }
}

async function consumeFrom(
  limiter: RateLimiterRedis | undefined,
  key: string,
  points: number,
): Promise<RateLimitVerdict> {
  if (!limiter) return { allowed: true, remaining: Number.POSITIVE_INFINITY };
  try {
    const result = await limiter.consume(key, points);
    return { allowed: true, remaining: result.remainingPoints };
  } catch (rejection) {
    // The limiter rejects with a RateLimiterRes when the budget is spent, and with the error otherwise.
    if (rejection instanceof RateLimiterRes) return { allowed: false, retryAfterMs: rejection.msBeforeNext };
    throw new StoreUnavailableError(rejection);
  }
}

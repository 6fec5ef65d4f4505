import type { Redis } from "ioredis";
import { guard } from "./guard.js";
import type { Keyspace } from "./keys.js";

const MINUTE_MS = 60_000;
/** Minute buckets outlive the hour operators look at by a margin, then expire by themselves. */
const BUCKET_TTL_SECONDS = 2 * 60 * 60;

/** Counts per event name (`recovery:container`, `revival:redis-lost`, `replay-refused`). */
export type EventCounts = Record<string, number>;

/**
 * Recent recoveries, revivals and refusals, across every gateway replica, for the operator view:
 * one hash per minute, so "the last hour" is a sum of 60 small hashes. Prometheus has the
 * long history; this answers "what happened lately" with nothing but Redis.
 */
export class Activity {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keyspace,
  ) {}

  /** One HINCRBY (and its TTL) in one round trip; the caller does not wait for it. */
  async count(event: string, now = Date.now()): Promise<void> {
    const key = this.keys.events(Math.floor(now / MINUTE_MS));
    await guard(() => this.redis.multi().hincrby(key, event, 1).expire(key, BUCKET_TTL_SECONDS).exec());
  }

  /** Events counted in the `minutes` minute buckets up to `now` (the current one included). */
  async since(minutes: number, now = Date.now()): Promise<EventCounts> {
    const last = Math.floor(now / MINUTE_MS);
    const pipeline = this.redis.pipeline();
    for (let minute = last - minutes + 1; minute <= last; minute++) pipeline.hgetall(this.keys.events(minute));
    const replies = (await guard(() => pipeline.exec())) ?? [];
    const totals: EventCounts = {};
    for (const [error, bucket] of replies) {
      if (error) throw error;
      for (const [event, count] of Object.entries(bucket as Record<string, string>)) {
        totals[event] = (totals[event] ?? 0) + Number(count);
      }
    }
    return totals;
  }
}

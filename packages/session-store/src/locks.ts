import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { Redis } from "ioredis";
import { LockTimeoutError } from "./errors.js";
import { guard } from "./guard.js";
import type { Keyspace } from "./keys.js";
import type { StoreScripts } from "./scripts.js";

export interface LockOptions {
  /** How long the lock lives if its owner crashes before releasing it. */
  ttlMs: number;
  /** How long to wait for another owner to release it. */
  timeoutMs: number;
}

/**
 * Per-user locks: a token-owned key with an expiry (SET NX PX), released only by its owner
 * (Lua compare-and-delete), which publishes the release so waiters on any replica wake at once.
 * A lock that expires instead (crashed owner) publishes nothing, so a waiter also wakes when
 * the lock's remaining TTL runs out — it never polls faster than that.
 */
export class UserLocks {
  readonly #waiters = new Map<string, Set<() => void>>();
  #subscribed: Promise<void> | undefined;
  #subscriber: Redis | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keyspace,
    private readonly scripts: StoreScripts,
  ) {}

  /** Takes the lock if it is free; returns its token, or null when someone else holds it. */
  async tryAcquire(userId: string, ttlMs: number): Promise<string | null> {
    const token = randomUUID();
    const ok = await guard(() => this.redis.set(this.keys.lock(userId), token, "PX", ttlMs, "NX"));
    return ok === "OK" ? token : null;
  }

  /** Waits (without spinning) until the lock is free and takes it. */
  async acquire(userId: string, options: LockOptions): Promise<string> {
    const key = this.keys.lock(userId);
    const started = Date.now();
    await this.#subscribe();
    for (;;) {
      // Register before trying, so a release between the try and the wait is not missed.
      const released = this.#waitFor(key);
      try {
        const token = await this.tryAcquire(userId, options.ttlMs);
        if (token) return token;
        const remaining = started + options.timeoutMs - Date.now();
        if (remaining <= 0) throw new LockTimeoutError(userId, Date.now() - started);
        const ttl = await guard(() => this.redis.pttl(key));
        const wait = Math.min(remaining, ttl > 0 ? ttl + 5 : 20);
        const controller = new AbortController();
        await Promise.race([released.promise, sleep(wait, undefined, { signal: controller.signal }).catch(() => {})]);
        controller.abort();
      } finally {
        released.cancel();
      }
    }
  }

  /** Releases the lock if `token` still owns it; returns whether it did. */
  async release(userId: string, token: string): Promise<boolean> {
    const released = await guard(() => this.scripts.releaseLock(this.keys.lock(userId), token, this.keys.lockReleased));
    return released === 1;
  }

  /** Runs `work` holding the user's lock, releasing it afterwards whatever happens. */
  async withLock<T>(userId: string, options: LockOptions, work: (token: string) => Promise<T>): Promise<T> {
    const token = await this.acquire(userId, options);
    try {
      return await work(token);
    } finally {
      await this.release(userId, token).catch(() => {});
    }
  }

  /**
   * Runs `work` holding the user's lock if nobody holds it now; resolves to undefined without
   * running it when someone does. A failed release fails the call: the caller learns the lock
   * stays held until its TTL.
   */
  async withLockIfFree<T>(userId: string, ttlMs: number, work: (token: string) => Promise<T>): Promise<T | undefined> {
    const token = await this.tryAcquire(userId, ttlMs);
    if (!token) return undefined;
    try {
      return await work(token);
    } finally {
      await this.release(userId, token);
    }
  }

  async close(): Promise<void> {
    this.#subscriber?.disconnect();
    this.#subscriber = undefined;
    this.#subscribed = undefined;
  }

  #subscribe(): Promise<void> {
    this.#subscribed ??= (async () => {
      // Resubscribed here after a reconnect, not by ioredis's autoResubscribe: that SUBSCRIBE has
      // no rejection handler, so a connection lost again at that moment (Redis restarting) made
      // an unhandled rejection, which ends a Node process (seen in failures.test.ts). Releases
      // missed meanwhile cost nothing: a waiter also wakes when the lock's TTL runs out.
      const subscriber = this.redis.duplicate({ autoResubscribe: false });
      this.#subscriber = subscriber;
      let subscribed = false;
      subscriber.on("error", () => {}); // the main connection reports outages; this one reconnects alone
      subscriber.on("ready", () => {
        if (subscribed) subscriber.subscribe(this.keys.lockReleased).catch(() => {});
      });
      subscriber.on("message", (_channel: string, lockKey: string) => {
        for (const wake of this.#waiters.get(lockKey) ?? []) wake();
      });
      try {
        await guard(() => subscriber.subscribe(this.keys.lockReleased));
        subscribed = true;
      } catch (error) {
        subscriber.disconnect(); // not left reconnecting: the next acquire makes a new one
        throw error;
      }
    })().catch((error) => {
      this.#subscribed = undefined;
      this.#subscriber = undefined;
      throw error;
    });
    return this.#subscribed;
  }

  #waitFor(key: string): { promise: Promise<void>; cancel(): void } {
    let wake!: () => void;
    const promise = new Promise<void>((resolve) => {
      wake = resolve;
    });
    const set = this.#waiters.get(key) ?? new Set();
    set.add(wake);
    this.#waiters.set(key, set);
    return {
      promise,
      cancel: () => {
        set.delete(wake);
        if (set.size === 0) this.#waiters.delete(key);
      },
    };
  }
}

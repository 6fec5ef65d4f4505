import { type LocalRedis, startLocalRedis } from "@mcp-broker/test-support";
import { SessionStore } from "./session-store.js";

/** The relay's Redis side (docs/architecture.md#server-to-client-streams), on a local redis-server. */
describe("event relays", () => {
  let redis: LocalRedis;
  let store: SessionStore;
  const bounds = { maxEntries: 100, maxBytes: 100_000 };
  const event = (data: string) => ({ data, upstreamSessionId: "up-1", upstreamEventId: undefined });

  beforeAll(async () => {
    redis = await startLocalRedis();
    store = SessionStore.connect(redis.url, { prefix: redis.prefix, sessionIdleTtlSeconds: 60 });
  });
  afterAll(async () => {
    await store?.close();
    await redis?.stop();
  });

  it("lets only the lease's owner append, and another replica take a lease its owner gave up", async () => {
    const { relays } = store;
    expect(await relays.acquire("u1", "s1", "replica-a", 5000)).toBe(true);
    expect(await relays.acquire("u1", "s1", "replica-b", 5000)).toBe(false);
    expect(await relays.append("u1", "s1", "replica-b", event("stale"), bounds)).toBeNull();
    expect(await relays.append("u1", "s1", "replica-a", event("fresh"), bounds)).toMatch(/^\d+-\d+$/);
    expect(await relays.renew("u1", "s1", "replica-b", 5000)).toBe(false);
    await relays.release("u1", "s1", "replica-b"); // not the owner: no effect
    expect(await relays.holder("u1", "s1")).toBe("replica-a");
    await relays.release("u1", "s1", "replica-a");
    expect(await relays.acquire("u1", "s1", "replica-b", 5000)).toBe(true);
    expect(await relays.length("u1", "s1")).toBe(1);
  });

  it("trims the oldest entries past the entry bound and past the byte bound, keeping the newest", async () => {
    const { relays } = store;
    await relays.acquire("u2", "s1", "a", 5000);
    for (let i = 0; i < 8; i++)
      await relays.append("u2", "s1", "a", event(`${i}`.repeat(10)), { ...bounds, maxEntries: 5 });
    expect(await relays.length("u2", "s1")).toBe(5);
    for (let i = 0; i < 4; i++)
      await relays.append("u2", "s1", "a", event("x".repeat(40)), { maxEntries: 100, maxBytes: 100 });
    expect(await relays.length("u2", "s1")).toBe(2); // 2 × 40 bytes fit in 100, a third does not
    // One event over the byte bound alone still stays: the newest is never trimmed.
    await relays.append("u2", "s1", "a", event("y".repeat(150)), { maxEntries: 100, maxBytes: 100 });
    expect(await relays.length("u2", "s1")).toBe(1);
  });

  it("moves the delivered mark only forward, and reads many sessions in one blocking read", async () => {
    const { relays } = store;
    await relays.acquire("u3", "s1", "a", 5000);
    await relays.acquire("u3", "s2", "a", 5000);
    const first = (await relays.append("u3", "s1", "a", event("one"), bounds)) as string;
    const second = (await relays.append("u3", "s1", "a", event("two"), bounds)) as string;
    await relays.markDelivered("u3", "s1", second);
    await relays.markDelivered("u3", "s1", first);
    expect((await relays.state("u3", "s1")).delivered).toBe(second);

    const reader = relays.reader(2000);
    try {
      const waiting = reader.read(
        [
          { userId: "u3", sessionId: "s1", after: first },
          { userId: "u3", sessionId: "s2", after: "0-0" },
        ],
        10,
      );
      const [s1, s2] = await waiting;
      expect(s1?.map((entry) => entry.data)).toEqual(["two"]);
      expect(s2).toEqual([]);
      // A read with nothing new blocks until an append, or until interrupted.
      const blocked = reader.read([{ userId: "u3", sessionId: "s2", after: "$" }], 10);
      const started = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 50));
      await reader.interrupt();
      expect(await blocked).toEqual([[]]);
      expect(Date.now() - started).toBeLessThan(1500);
    } finally {
      reader.close();
    }
  });
});

import { type LocalRedis, startLocalRedis } from "@mcp-broker/test-support";
import { Redis } from "ioredis";
import { SessionStore } from "./session-store.js";

const user = (n: number) => n.toString(16).padStart(64, "a");
const spare = (n: number) => ({
  containerId: `spare-${n}-`.padEnd(64, "0"),
  endpoint: `http://spare-${n}:3000/mcp`,
  createdAt: 1_000 + n,
});

describe("warm pool and MAX_BACKENDS reclaim on real Redis", () => {
  let redis: LocalRedis;
  let a: SessionStore;
  let b: SessionStore;
  let prefix: string;

  beforeAll(async () => {
    redis = await startLocalRedis();
  });
  beforeEach(async () => {
    // Two stores on one prefix: two gateway replicas.
    prefix = `${redis.prefix}${Math.random().toString(36).slice(2)}:`;
    a = SessionStore.connect(redis.url, { prefix, sessionIdleTtlSeconds: 3600 });
    b = SessionStore.connect(redis.url, { prefix, sessionIdleTtlSeconds: 3600 });
  });
  afterEach(async () => {
    await a.close();
    await b.close();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  async function fill(store: SessionStore, count: number, size: number) {
    for (let n = 0; n < count; n++) {
      const ticket = await store.warmPool.reserveStart(size, 100, 60_000);
      if (!ticket) throw new Error("pool refused a start below its size");
      expect(await store.warmPool.add(ticket, spare(n), size)).toBe(true);
    }
  }

  it("gives each of 20 concurrent claims a different spare, bound to its claimant", async () => {
    await fill(a, 20, 20);
    const claims = await Promise.all(
      Array.from({ length: 20 }, (_, n) => (n % 2 ? a : b).warmPool.claim(user(n), 60_000)),
    );
    const ids = claims.map((claim) => claim?.containerId);
    expect(new Set(ids).size).toBe(20);
    for (const [n, claim] of claims.entries()) {
      expect(await a.warmPool.owner(claim?.containerId as string)).toBe(user(n));
    }
    expect(await a.warmPool.claim(user(99), 60_000)).toBeNull();
  });

  it("hands each claimant its own spare's warm session, once; dropped and pruned spares leave none behind", async () => {
    for (let n = 0; n < 20; n++) {
      const ticket = (await a.warmPool.reserveStart(20, 100, 60_000)) as string;
      // Even spares were warmed up; odd ones' warm-up failed (no session).
      const warmSession = n % 2 ? undefined : { id: `upstream-${n}`, protocolVersion: "2025-06-18" };
      expect(await a.warmPool.add(ticket, { ...spare(n), ...(warmSession ? { warmSession } : {}) }, 20)).toBe(true);
    }
    const claims = await Promise.all(
      Array.from({ length: 18 }, (_, n) => (n % 2 ? a : b).warmPool.claim(user(n), 60_000)),
    );
    for (const claim of claims) {
      const n = Number(claim?.containerId.split("-")[1]);
      expect(claim?.warmSession).toEqual(n % 2 ? undefined : { id: `upstream-${n}`, protocolVersion: "2025-06-18" });
    }
    // Spares 18 (warm) and 19 are left: drop 18 by id, then claim 19: neither brings 18's session.
    expect(await a.warmPool.drop(spare(18).containerId)).toBe(true);
    expect((await b.warmPool.claim(user(50), 60_000))?.warmSession).toBeUndefined();
    expect(await a.warmPool.claim(user(51), 60_000)).toBeNull();
    const raw = new Redis(redis.url);
    try {
      expect(await raw.hlen(`${prefix}pool:sessions`)).toBe(0);
      // A session left by a spare whose container vanished (an older replica's claim) is pruned.
      await raw.hset(
        `${prefix}pool:sessions`,
        "gone",
        "upstream-x 2025-06-18",
        spare(0).containerId,
        "upstream-0 2025-06-18",
      );
      await a.warmPool.pruneOwners([spare(0).containerId]);
      expect(await raw.hkeys(`${prefix}pool:sessions`)).toEqual([spare(0).containerId]);
    } finally {
      raw.disconnect();
    }
  });

  it("never reserves more spare starts than the pool size across two replicas", async () => {
    const tickets = await Promise.all(
      Array.from({ length: 40 }, (_, n) => (n % 2 ? a : b).warmPool.reserveStart(5, 100, 60_000)),
    );
    expect(tickets.filter(Boolean)).toHaveLength(5);
  });

  it("refuses to pool a spare whose start outlived its reservation once the pool is full", async () => {
    const late = await a.warmPool.reserveStart(1, 100, 1); // lapses at once
    await new Promise((resolve) => setTimeout(resolve, 5));
    await fill(b, 1, 1);
    expect(await a.warmPool.add(late as string, spare(7), 1)).toBe(false);
    expect(await a.warmPool.list()).toHaveLength(1);
  });

  it("counts spares, ready or starting, against MAX_BACKENDS", async () => {
    await fill(a, 2, 3);
    expect(await a.warmPool.reserveStart(3, 4, 60_000)).not.toBeNull(); // 2 ready + 1 starting
    expect(await a.reserveBackendStart(user(1), 4, 60_000)).toBe(true); // the 4th slot
    expect(await a.reserveBackendStart(user(2), 4, 60_000)).toBe(false);
    // A claim passes the spare's slot to the user: still 4, so nobody else may start.
    await a.warmPool.claim(user(3), 60_000);
    expect(await a.reserveBackendStart(user(4), 4, 60_000)).toBe(false);
  });

  it("reclaims the least recently used idle route, never a busy one, and hands its slot over", async () => {
    const now = Date.now();
    for (const n of [1, 2, 3]) {
      await a.setRoute({ userId: user(n), containerId: `c${n}`, endpoint: `http://c${n}/mcp` });
    }
    await a.touch(user(1), undefined, now - 300_000); // least recently used, but busy
    await a.touch(user(2), undefined, now - 200_000);
    await a.touch(user(3), undefined, now - 10_000); // not idle long enough
    await b.markBusy([user(1)], now + 30_000);
    expect(await a.reserveBackendStart(user(9), 3, 60_000)).toBe(false);

    const claim = await a.reclaimIdleBackend(user(9), now - 60_000, 60_000, 60_000);
    expect(claim).toMatchObject({ userId: user(2), containerId: "c2" });
    expect((await a.getRoute(user(2)))?.state).toBe("stopping");
    await a.finishRouteRemoval(claim as NonNullable<typeof claim>);
    expect(await a.getRoute(user(2))).toBeNull();
    // The slot went to user 9 in the same step: a third user finds the cap full.
    expect(await b.reserveBackendStart(user(10), 3, 60_000)).toBe(false);
    expect(await b.reserveBackendStart(user(9), 3, 60_000)).toBe(true);
    // Nothing left to reclaim: user 1 is busy, user 3 too recent.
    expect(await a.reclaimIdleBackend(user(11), now - 60_000, 60_000, 60_000)).toBeNull();
  });
});

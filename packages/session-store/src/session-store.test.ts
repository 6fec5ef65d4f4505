import { setTimeout as sleep } from "node:timers/promises";
import { eventually } from "@mcp-broker/test-support";
import { startRedis, type TestRedis } from "@mcp-broker/test-support/docker";
import { Redis } from "ioredis";
import { keyspace } from "./keys.js";
import { UserLocks } from "./locks.js";
import { defineScripts } from "./scripts.js";
import { SessionStore, type SessionStoreOptions } from "./session-store.js";

const INIT = { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } };

const newSession = (
  store: SessionStore,
  userId: string,
  upstreamSessionId: string,
  extra: { pooled?: boolean; protocolVersion?: string } = {},
) =>
  store.createSession({ userId, upstreamSessionId, initializeParams: INIT, protocolVersion: "2025-06-18", ...extra });

describe("SessionStore on real Redis", () => {
  let redis: TestRedis;
  const stores: SessionStore[] = [];
  const open = (options: Partial<SessionStoreOptions> = {}) => {
    const store = SessionStore.connect(redis.url, { prefix: redis.prefix, sessionIdleTtlSeconds: 3600, ...options });
    stores.push(store);
    return store;
  };
  // The store keeps its locks to itself; tests hold and inspect them (as another replica would)
  // through a connection of their own to the same Redis and prefix.
  const clients: { redis: Redis; locks: UserLocks }[] = [];
  const openLocks = () => {
    const client = new Redis(redis.url);
    const locks = new UserLocks(client, keyspace(redis.prefix), defineScripts(client));
    clients.push({ redis: client, locks });
    return locks;
  };

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await Promise.all(stores.map((store) => store.close()));
    await Promise.all(clients.map(({ locks }) => locks.close()));
    for (const { redis } of clients) redis.disconnect();
    await redis.stop();
  });

  describe("sessions", () => {
    it("creates a session, reads it back for its owner only, and pools it", async () => {
      const store = open();
      const session = await newSession(store, "alice", "up-1", { pooled: true });
      expect(session.id).toMatch(/^[A-Za-z0-9_-]{32}$/);
      expect(await store.getSession("alice", session.id)).toMatchObject({
        upstreamSessionId: "up-1",
        initializeParams: INIT,
        protocolVersion: "2025-06-18",
      });
      expect(await store.getSession("bob", session.id)).toBeNull();
      expect(await store.getSession("alice", "../../etc")).toBeNull();
      expect((await store.getPooledSession("alice"))?.id).toBe(session.id);
      expect(await store.getPooledSession("bob")).toBeNull();
    });

    it("remaps only from the upstream id the caller saw, so racing recoveries agree", async () => {
      const store = open();
      const session = await newSession(store, "carol", "old");
      const [first, second] = await Promise.all([
        store.remapSession("carol", session.id, "old", "new-a"),
        store.remapSession("carol", session.id, "old", "new-b"),
      ]);
      expect(first).toBe(second);
      expect((await store.getSession("carol", session.id))?.upstreamSessionId).toBe(first);
      expect(await store.remapSession("carol", "missing", "old", "x")).toBeNull();
    });

    it("deletes a session with its pool pointer and index entry", async () => {
      const store = open();
      const session = await newSession(store, "dave", "up", { pooled: true });
      const before = await store.counts();
      expect(await store.deleteSession("dave", session.id)).toEqual({ upstreamSessionId: "up" });
      expect(await store.getSession("dave", session.id)).toBeNull();
      expect(await store.getPooledSession("dave")).toBeNull();
      expect((await store.counts()).sessions).toBe(before.sessions - 1);
      expect(await store.deleteSession("dave", session.id)).toBeNull();
    });

    it("lets Redis expire a session key after its idle TTL", async () => {
      const store = open({ sessionIdleTtlSeconds: 1, sessionTtlGraceSeconds: 0 });
      const session = await newSession(store, "erin", "up");
      expect(await store.getSession("erin", session.id)).not.toBeNull();
      await sleep(1300);
      expect(await store.getSession("erin", session.id)).toBeNull();
    });
  });

  describe("touch and claim", () => {
    it("never claims a session touched after the cutoff, under concurrent touches and claims", async () => {
      const writer = open();
      const past = Date.now() - 60_000;
      const sessions = await Promise.all(
        Array.from({ length: 300 }, (_, i) => newSession(writer, `race${i % 30}`, `up${i}`)),
      );
      await Promise.all(sessions.map((session) => writer.touch(session.userId, session.id, past)));
      const cutoff = Date.now() - 30_000;

      // Three gateways touch every other session while two reapers claim in small batches.
      const touchers = [open(), open(), open()];
      const reapers = [open(), open()];
      const touched = new Set<string>();
      const claimed = new Set<string>();
      const touching = sessions
        .filter((_, i) => i % 2 === 0)
        .map(async (session, i) => {
          const result = await (touchers[i % 3] as SessionStore).touch(session.userId, session.id);
          if (result.session) touched.add(session.id);
        });
      const claiming = reapers.map(async (reaper) => {
        for (;;) {
          const batch = await reaper.claimExpiredSessions(cutoff, 7);
          if (batch.length === 0) return;
          for (const item of batch) {
            expect(claimed.has(item.sessionId)).toBe(false); // each claimed exactly once
            claimed.add(item.sessionId);
          }
        }
      });
      await Promise.all([...touching, ...claiming]);

      for (const id of touched) expect(claimed.has(id)).toBe(false);
      // Everything not kept alive by a touch was claimed, and claimed sessions are gone.
      expect(touched.size + claimed.size).toBe(sessions.length);
      const survivors = await Promise.all(sessions.map((s) => writer.getSession(s.userId, s.id)));
      expect(survivors.filter(Boolean).length).toBe(touched.size);
      expect(touched.size).toBeGreaterThan(0);
    });

    it("reads a session with its route and touches both in one call", async () => {
      const store = open();
      const session = await newSession(store, "uma", "up-uma");
      await store.setRoute({ userId: "uma", containerId: "c-uma", endpoint: "http://127.0.0.1:6/mcp" });
      await store.touch("uma", session.id, 1000);
      const used = await store.useSession("uma", session.id);
      expect(used.session?.upstreamSessionId).toBe("up-uma");
      expect(used.route?.containerId).toBe("c-uma");
      expect(await store.claimExpiredSessions(2000, 100)).toEqual([]); // touched: no longer idle
      expect(await store.claimIdleRoutes(2000, 100, 1000)).toEqual([]);
      expect(await store.useSession("vic", session.id)).toEqual({ session: null, route: null });
    });

    it("reads the pooled session with the route and touches both in one call", async () => {
      const store = open();
      expect(await store.usePooledSession("wes")).toEqual({ session: null, route: null });
      const session = await newSession(store, "wes", "up-wes", { pooled: true });
      await store.setRoute({ userId: "wes", containerId: "c-wes", endpoint: "http://127.0.0.1:7/mcp" });
      await store.touch("wes", session.id, 1000);
      const used = await store.usePooledSession("wes");
      expect(used.session).toMatchObject({ id: session.id, upstreamSessionId: "up-wes", initializeParams: INIT });
      expect(used.route?.containerId).toBe("c-wes");
      expect(await store.claimExpiredSessions(2000, 100)).toEqual([]);
      expect(await store.claimIdleRoutes(2000, 100, 1000)).toEqual([]);
      await store.deleteSession("wes", session.id);
      expect((await store.usePooledSession("wes")).session).toBeNull();
    });

    it("returns the upstream id of claimed sessions and clears the pool pointer", async () => {
      const store = open();
      const session = await newSession(store, "frank", "up-frank", { pooled: true, protocolVersion: "2025-03-26" });
      await store.touch("frank", session.id, 1000);
      const claimed = await store.claimExpiredSessions(2000, 100);
      expect(claimed).toContainEqual({
        userId: "frank",
        sessionId: session.id,
        upstreamSessionId: "up-frank",
        protocolVersion: "2025-03-26",
      });
      expect(await store.getPooledSession("frank")).toBeNull();
      expect(await store.touch("frank", session.id)).toEqual({ session: false, route: false });
    });
  });

  describe("routes", () => {
    it("claims an idle route with the user's lock, skips a locked user, and finishes the removal", async () => {
      const store = open();
      const locks = openLocks();
      await store.setRoute({ userId: "gina", containerId: "c-gina", endpoint: "http://127.0.0.1:1/mcp" });
      await store.setRoute({ userId: "hank", containerId: "c-hank", endpoint: "http://127.0.0.1:2/mcp" });
      await store.touch("gina", undefined, 1000);
      await store.touch("hank", undefined, 1000);
      const hankLock = await locks.tryAcquire("hank", 10_000);
      expect(hankLock).not.toBeNull();

      const claimed = await store.claimIdleRoutes(2000, 100, 10_000);
      expect(claimed.map((c) => c.userId)).toEqual(["gina"]);
      expect((await store.getRoute("gina"))?.state).toBe("stopping");
      expect(await store.touch("gina")).toEqual({ session: false, route: false });
      expect(await locks.tryAcquire("gina", 1000)).toBeNull();

      await store.finishRouteRemoval(claimed[0] as (typeof claimed)[0]);
      expect(await store.getRoute("gina")).toBeNull();
      expect(await locks.tryAcquire("gina", 1000)).not.toBeNull();

      await locks.release("hank", hankLock as string);
      expect((await store.claimIdleRoutes(2000, 100, 10_000)).map((c) => c.userId)).toEqual(["hank"]);
    });

    it("gives a route back when its container refused to stop", async () => {
      const store = open();
      await store.setRoute({ userId: "ivy", containerId: "c-ivy", endpoint: "http://127.0.0.1:3/mcp" });
      await store.touch("ivy", undefined, 1000);
      const [claim] = await store.claimIdleRoutes(2000, 100, 10_000);
      await store.abandonRouteRemoval(claim as NonNullable<typeof claim>);
      expect((await store.getRoute("ivy"))?.state).toBe("ready");
      expect((await store.touch("ivy")).route).toBe(true);
    });

    it("pages through every routed user", async () => {
      const store = open({ prefix: `${redis.prefix}scan:` });
      await Promise.all(
        Array.from({ length: 25 }, (_, i) =>
          store.setRoute({ userId: `scan${i}`, containerId: `c${i}`, endpoint: "http://127.0.0.1:5/mcp" }),
        ),
      );
      const seen: string[] = [];
      for await (const page of store.routeUserIds(10)) seen.push(...page);
      expect(seen.sort()).toEqual(Array.from({ length: 25 }, (_, i) => `scan${i}`).sort());
    });

    it("drops a stale route only when it still names the container", async () => {
      const store = open();
      await store.setRoute({ userId: "jack", containerId: "c-new", endpoint: "http://127.0.0.1:4/mcp" });
      expect(await store.deleteRoute("jack", "c-old")).toBe(false);
      expect(await store.deleteRoute("jack", "c-new")).toBe(true);
      expect(await store.getRoute("jack")).toBeNull();
    });
  });

  describe("locks", () => {
    it("frees a crashed owner's lock when it expires", async () => {
      const locks = openLocks();
      // Timed from before the owner took it: a slow reply to the owner counts in the wait.
      const started = Date.now();
      expect(await locks.tryAcquire("kim", 300)).not.toBeNull(); // the owner "crashes"
      const token = await locks.acquire("kim", { ttlMs: 1000, timeoutMs: 5000 });
      expect(token).toBeTruthy();
      expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    });

    it("refuses a release by anyone but the owner", async () => {
      const locks = openLocks();
      const token = await locks.tryAcquire("lee", 10_000);
      expect(await locks.release("lee", "not-the-token")).toBe(false);
      expect(await locks.tryAcquire("lee", 1000)).toBeNull();
      expect(await locks.release("lee", token as string)).toBe(true);
    });

    it("wakes waiters on other connections as soon as the owner releases", async () => {
      const owner = openLocks();
      const token = (await owner.tryAcquire("mia", 30_000)) as string;
      const waiters = [open(), open(), open()];
      const order: string[] = [];
      const started = Date.now();
      const waiting = waiters.map((store, i) =>
        store.withUserLock("mia", { ttlMs: 5000, timeoutMs: 10_000 }, async () => {
          order.push(`in ${i}`);
          await sleep(20);
          order.push(`out ${i}`);
        }),
      );
      await sleep(150);
      expect(order).toEqual([]);
      await owner.release("mia", token);
      await Promise.all(waiting);
      // Well before the 30 s TTL, and strictly one holder at a time.
      expect(Date.now() - started).toBeLessThan(3000);
      for (let i = 0; i < order.length; i += 2) expect(order[i]?.replace("in", "out")).toBe(order[i + 1]);
    });

    it("still wakes a waiter at the release after its subscription's connection was killed, and nothing goes unhandled", async () => {
      const unhandled: unknown[] = [];
      const note = (reason: unknown) => unhandled.push(reason);
      process.on("unhandledRejection", note);
      try {
        const owner = openLocks();
        const waiter = openLocks();
        const admin = new Redis(redis.url);
        clients.push({ redis: admin, locks: owner });
        // The waiter's subscription is up once it has waited once (it subscribes before waiting).
        await owner.tryAcquire("pia", 200);
        await waiter.acquire("pia", { ttlMs: 100, timeoutMs: 5000 });
        const token = (await owner.tryAcquire("quinn", 30_000)) as string;
        // Every lock subscriber of this file so far, the waiter's among them.
        const subscribers = () =>
          admin
            .call("PUBSUB", "NUMSUB", keyspace(redis.prefix).lockReleased)
            .then((reply) => (reply as [string, number])[1]);
        const subscribed = await subscribers();
        // Killed again and again, as while Redis restarts: it reconnects and subscribes anew each time.
        for (let kill = 0; kill < 5; kill++) {
          await admin.call("CLIENT", "KILL", "TYPE", "pubsub");
          await sleep(150);
        }
        // A release published before it subscribed again would be missed until the TTL (locks.ts):
        // not what is tested here, and on a busy machine a reconnect may take longer than the pauses.
        await eventually(subscribers, { timeoutMs: 20_000, until: (count) => count === subscribed });
        const started = Date.now();
        const waiting = waiter.acquire("quinn", { ttlMs: 1000, timeoutMs: 20_000 });
        await sleep(300);
        await owner.release("quinn", token);
        await waiting;
        // Woken by the release, well before the 30 s TTL that a lost subscription would wait out.
        expect(Date.now() - started).toBeLessThan(3000);
        expect(unhandled).toEqual([]);
      } finally {
        process.off("unhandledRejection", note);
      }
    });

    it("gives up with LOCK_TIMEOUT when the lock stays held", async () => {
      const locks = openLocks();
      await locks.tryAcquire("ned", 10_000);
      await expect(locks.acquire("ned", { ttlMs: 1000, timeoutMs: 200 })).rejects.toMatchObject({
        code: "LOCK_TIMEOUT",
      });
    });

    it("runs work under the user's lock only while nobody else holds it", async () => {
      const store = open();
      const locks = openLocks();
      const held = (await locks.tryAcquire("otto", 10_000)) as string;
      expect(await store.withUserLockIfFree("otto", 10_000, async () => "ran")).toBeUndefined();
      await locks.release("otto", held);
      expect(await store.withUserLockIfFree("otto", 10_000, async () => "ran")).toBe("ran");
      expect(await locks.tryAcquire("otto", 1000)).not.toBeNull(); // released after the work
    });
  });

  describe("auth verdicts and rate limits", () => {
    it("caches verdicts with separate positive and negative TTLs", async () => {
      const store = open({ authPositiveTtlSeconds: 60, authNegativeTtlSeconds: 1 });
      expect(await store.getAuthVerdict("olga")).toBeNull();
      await store.setAuthVerdict("olga", true);
      await store.setAuthVerdict("pete", false);
      expect(await store.getAuthVerdict("olga")).toBe(true);
      expect(await store.getAuthVerdict("pete")).toBe(false);
      await sleep(1200);
      expect(await store.getAuthVerdict("pete")).toBeNull();
      expect(await store.getAuthVerdict("olga")).toBe(true);
    });

    it("allows the configured requests per window and then says how long to wait", async () => {
      const store = open({ rateLimitPoints: 3, rateLimitWindowSeconds: 60 });
      const verdicts = [];
      for (let i = 0; i < 4; i++) verdicts.push(await store.consumeRateLimit("quinn"));
      expect(verdicts.slice(0, 3).every((v) => v.allowed)).toBe(true);
      expect(verdicts[3]).toMatchObject({ allowed: false });
      const last = verdicts[3] as { retryAfterMs: number };
      expect(last.retryAfterMs).toBeGreaterThan(50_000);
      expect((await store.consumeRateLimit("rita")).allowed).toBe(true);
    });
  });
});

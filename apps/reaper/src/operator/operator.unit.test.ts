import type { ContainerDriver, ManagedContainer } from "@mcp-broker/container-manager";
import { createRedisClient, SessionStore } from "@mcp-broker/session-store";
import { type LocalRedis, startLocalRedis } from "@mcp-broker/test-support";
import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { pino } from "pino";
import { createDashboard } from "../dashboard.js";
import { createMetrics } from "../metrics.js";
import { findUser, listPool, listServers, stopServer } from "./overview.js";
import { OPERATOR_PATH } from "./routes.js";
import { poolText, statusText } from "./text.js";

/** Containers as a map: what the operator view reads from the engine, and what it removes. */
function fakeDriver(containers: ManagedContainer[]): ContainerDriver & { removed: string[] } {
  const removed: string[] = [];
  const live = () => containers.filter((c) => !removed.includes(c.id));
  return {
    kind: "docker",
    removed,
    ensure: () => Promise.reject(new Error("the operator view never starts a server")),
    stop: async () => {},
    remove: async (id) => {
      removed.push(id);
    },
    listManaged: async () => live(),
    inspect: async (id) => live().find((c) => c.id === id) ?? null,
    ping: async () => {},
    close: async () => {},
  };
}

const users = ["aaaa1111", "bbbb2222", "cccc3333"].map((head) => head.padEnd(64, "0"));
const containerOf = (userId: string) => `c-${userId.slice(0, 8)}`.padEnd(64, "f");

describe("operator view", () => {
  let redis: LocalRedis;
  let store: SessionStore;
  let connection: Redis;
  let queue: Queue;
  let driver: ReturnType<typeof fakeDriver>;

  beforeAll(async () => {
    redis = await startLocalRedis();
    store = SessionStore.connect(redis.url, { prefix: redis.prefix, sessionIdleTtlSeconds: 3600 });
    connection = createRedisClient(redis.url, { maxRetriesPerRequest: null });
    queue = new Queue("reaper", { connection, prefix: `${redis.prefix}bull` });
  });
  afterAll(async () => {
    await queue?.close();
    connection?.disconnect();
    await store?.close();
    await redis?.stop();
  });
  beforeEach(async () => {
    driver = fakeDriver(
      users.map((userId) => ({ id: containerOf(userId), userId, name: userId, running: true, createdAt: 1_000 })),
    );
    for (const [i, userId] of users.entries()) {
      await store.setRoute({
        userId,
        containerId: containerOf(userId),
        endpoint: "http://x/mcp",
        coldStartMs: 100 * (i + 1),
      });
    }
  });

  it("lists every routed user with their container, session count and last cold start", async () => {
    const first = users[0] as string;
    for (let i = 0; i < 2; i++) {
      await store.createSession({
        userId: first,
        upstreamSessionId: `u${i}`,
        initializeParams: null,
        protocolVersion: "2025-06-18",
      });
    }
    const rows = await listServers({ store, driver });
    expect(rows.map((r) => r.userId).sort()).toEqual(users);
    const row = rows.find((r) => r.userId === first);
    expect(row).toMatchObject({
      containerId: containerOf(first),
      running: true,
      sessions: 2,
      coldStartMs: 100,
      createdAt: 1_000,
    });
    expect((await store.sessionsOfUser(first)).map((s) => s.upstreamSessionId).sort()).toEqual(["u0", "u1"]);
    const pool = { spares: [], starting: 0 };
    expect(statusText({ at: Date.now(), servers: rows, pool, sweeps: [], lastHour: {} })).toContain(first.slice(0, 12));
  });

  it("lists the warm pool's spares, oldest first, with the engine's state", async () => {
    const spareId = "d-spare".padEnd(64, "e");
    const ticket = await store.warmPool.reserveStart(2, 100, 60_000);
    expect(ticket).not.toBeNull();
    await store.warmPool.add(
      ticket as string,
      { containerId: spareId, endpoint: "http://x:1/mcp", createdAt: 5_000 },
      2,
    );
    const pool = await listPool({ store, driver }, 65_000);
    expect(pool).toEqual({
      spares: [{ containerId: spareId, running: null, createdAt: 5_000, ageMs: 60_000 }],
      starting: 0,
    });
    expect(poolText(pool)).toContain("warm pool: 1 ready, 0 starting");
    expect(poolText(pool)).toContain(spareId.slice(0, 12));
    expect(await store.warmPool.drop(spareId)).toBe(true);
  });

  it("sums the last hour's events per cause and leaves out older minutes", async () => {
    const now = Date.UTC(2026, 0, 1, 12, 0, 30);
    await store.countEvent("revival:redis-lost", now);
    await store.countEvent("revival:redis-lost", now - 30 * 60_000);
    await store.countEvent("recovery:container", now - 59 * 60_000);
    await store.countEvent("recovery:container", now - 61 * 60_000);
    expect(await store.eventsSince(60, now)).toEqual({ "revival:redis-lost": 2, "recovery:container": 1 });
  });

  it("finds a user by a unique prefix only", async () => {
    await expect(findUser(store, "aaaa1")).resolves.toBe(users[0]);
    await store.setRoute({ userId: "aaaa9".padEnd(64, "0"), containerId: "other", endpoint: "http://y/mcp" });
    await expect(findUser(store, "aaaa")).rejects.toMatchObject({ code: "AMBIGUOUS_PREFIX" });
    await expect(findUser(store, "dddd")).rejects.toMatchObject({ code: "NO_SUCH_USER" });
    await expect(findUser(store, "x")).rejects.toMatchObject({ code: "BAD_PREFIX" });
    await stopServer({ store, driver }, "aaaa9");
  });

  describe("over HTTP", () => {
    const auth = { Authorization: `Basic ${Buffer.from("admin:s3cret").toString("base64")}` };
    const app = () =>
      createDashboard({
        queue,
        metrics: createMetrics(),
        store,
        driver,
        logger: pino({ level: "silent" }),
        user: "admin",
        password: "s3cret",
      });
    const stop = (userId: string, headers: Record<string, string>, credentials: Record<string, string> = auth) =>
      app().request(`http://ops.test${OPERATOR_PATH}/stop`, {
        method: "POST",
        headers: { ...credentials, "Content-Type": "application/x-www-form-urlencoded", ...headers },
        body: new URLSearchParams({ user: userId }).toString(),
      });

    it("asks for the dashboard's password", async () => {
      expect((await app().request(`http://ops.test${OPERATOR_PATH}`)).status).toBe(401);
      expect((await stop(users[0] as string, { Origin: "http://ops.test" }, {})).status).toBe(401);
      expect(driver.removed).toEqual([]);
    });

    it("shows one row per user with a server, each with a stop button", async () => {
      const page = await app().request(`http://ops.test${OPERATOR_PATH}`, { headers: auth });
      expect(page.status).toBe(200);
      const body = await page.text();
      expect(body.match(/<tr data-user=/g)).toHaveLength(3);
      expect(body.match(/<button type="submit">Stop server<\/button>/g)).toHaveLength(3);
    });

    it("refuses a stop posted from another site, and leaves the server running", async () => {
      const answer = await stop(users[1] as string, { Origin: "http://evil.test", "Sec-Fetch-Site": "cross-site" });
      expect(answer.status).toBe(403);
      expect(driver.removed).toEqual([]);
      expect(await store.getRoute(users[1] as string)).not.toBeNull();
    });

    it("stops one user's server from the page's own origin: container removed, route gone", async () => {
      const userId = users[1] as string;
      const answer = await stop(userId, { Origin: "http://ops.test" });
      expect(answer.status).toBe(303);
      expect(answer.headers.get("location")).toBe(`${OPERATOR_PATH}?stopped=${userId.slice(0, 12)}`);
      expect(driver.removed).toEqual([containerOf(userId)]);
      expect(await store.getRoute(userId)).toBeNull();
      const page = await (
        await app().request(`http://ops.test${answer.headers.get("location")}`, { headers: auth })
      ).text();
      expect(page.match(/<tr data-user=/g)).toHaveLength(2);
      expect(page).toContain("Stopped the server of user");
    });
  });
});

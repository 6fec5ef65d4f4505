import { eventually, type LocalRedis, startLocalRedis } from "@mcp-broker/test-support";
import { SessionCache } from "./sessions/session-cache.js";
import { InProcessDriver } from "./testing/in-process-driver.js";
import { type InProcessGateway, startInProcessGateway } from "./testing/in-process-gateway.js";
import { key } from "./testing/keys.js";
import { monitorRedis } from "./testing/redis-monitor.js";
import { INITIALIZE, list, nonceOf, post } from "./testing/rpc.js";
import { startTinyMcpServer, type TinyMcpServer } from "./testing/tiny-mcp-server.js";

/**
 * The hot path (docs/architecture.md#hot-path): a per-replica cache of session → upstream
 * session and route, and touches batched per interval, on real Redis and real HTTP servers.
 */
describe("hot path: session cache and batched touches", () => {
  let redis: LocalRedis;
  const running: InProcessGateway[] = [];
  const monitors: { close(): void }[] = [];

  beforeAll(async () => {
    redis = await startLocalRedis();
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((gateway) => gateway.close()));
    for (const monitor of monitors.splice(0)) monitor.close();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  async function setup(env: Record<string, string>, replicas = 1) {
    let started = 0;
    const driver = new InProcessDriver<TinyMcpServer>(() => startTinyMcpServer(`server-${++started}`));
    const gateways: InProcessGateway[] = [];
    for (let i = 0; i < replicas; i++) gateways.push(await startInProcessGateway(redis, driver, env));
    running.push(...gateways);
    const gateway = gateways[0] as InProcessGateway;
    const open = async (name: string, url = gateway.url) => {
      const apiKey = key(name);
      const init = await post(url, INITIALIZE, { "X-Outline-API-Key": apiKey });
      expect(init.status).toBe(200);
      const headers = { "X-Outline-API-Key": apiKey, "Mcp-Session-Id": init.headers.get("mcp-session-id") as string };
      return { apiKey, headers, user: gateway.userOf(apiKey), nonce: nonceOf(headers["Mcp-Session-Id"]) };
    };
    return { driver, gateways, gateway, open };
  }

  /**
   * A session's first request makes the replica take its upstream stream (the relay), whose
   * start reads the session and relay state from Redis in the background, once. That is not a
   * request's round trip: counting starts after the stream is open upstream.
   */
  async function streamOpened(driver: InProcessDriver<TinyMcpServer>, userId: string) {
    const server = () => driver.serversOf(userId)[0];
    await eventually(async () => expect(server()?.requests.some((request) => request.method === "GET")).toBe(true));
  }

  /** Every Redis command that names `needle` (a user id) while `work` runs, seen through MONITOR. */
  async function commandsNaming(needle: string, work: () => Promise<void>): Promise<string[]> {
    const seen: string[] = [];
    const monitor = await monitorRedis(redis.url, ({ source, args }) => {
      // What a script runs inside Redis is not a round trip of the gateway's.
      if (source !== "lua" && args.some((arg) => arg.includes(needle))) seen.push(String(args[0]).toLowerCase());
    });
    monitors.push(monitor);
    await work();
    // MONITOR reports asynchronously: a command sent just now shows up within a moment.
    await new Promise((resolve) => setTimeout(resolve, 100));
    return seen;
  }

  it("sends nothing to Redis for a warm request on a cached session, and one pipeline when the entry is stale", async () => {
    const { driver, gateway, open } = await setup({ SESSION_CACHE_MS: "60000", TOUCH_INTERVAL_MS: "60000" });
    const session = await open("warm");
    expect((await post(gateway.url, list(1), session.headers)).status).toBe(200); // cached from here on
    await streamOpened(driver, session.user);
    const warm = await commandsNaming(session.user, async () => {
      for (let i = 2; i < 12; i++) expect((await post(gateway.url, list(i), session.headers)).body.id).toBe(i);
    });
    expect(warm).toEqual([]);

    const {
      driver: uncachedDriver,
      gateway: uncached,
      open: openUncached,
    } = await setup({
      SESSION_CACHE_MS: "0",
      TOUCH_INTERVAL_MS: "0",
    });
    const other = await openUncached("uncached");
    // The first call after initialize also checks the session's relayed stream has a holder
    // (relay/session-relay.ts, at most once per half lease): not part of what is measured here.
    expect((await post(uncached.url, list(0), other.headers)).status).toBe(200);
    await streamOpened(uncachedDriver, other.user);
    const cold = await commandsNaming(other.user, async () => {
      expect((await post(uncached.url, list(1), other.headers)).status).toBe(200);
    });
    // One round trip: the pipeline of HGETALL session, HGETALL route, and the touch script.
    expect(cold.map((command) => command.replace(/^evalsha$/, "eval"))).toEqual(["hgetall", "hgetall", "eval"]);
  });

  it("answers correctly from a stale entry after another replica re-created the server and revived the session", async () => {
    const { driver, gateways, open } = await setup({ SESSION_CACHE_MS: "60000" }, 2);
    const [a, b] = gateways as [InProcessGateway, InProcessGateway];
    const session = await open("stale", a.url);
    expect((await post(a.url, list(1), session.headers)).body.result.server).toBe("server-1"); // a caches it
    const [first] = [...driver.started.keys()];
    await driver.kill(first as string);

    // Replica b meets the dead server: re-creates it and revives the session there.
    expect((await post(b.url, list(2), session.headers)).body.result.server).toBe("server-2");
    const revived = await b.store.getSession(session.user, session.nonce);

    // Replica a still remembers server-1 and the old upstream session: refused, then Redis's route,
    // whose server does not know that session (404), then the mapping b recorded. No third session.
    const answer = await post(a.url, list(3), session.headers);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ id: 3, result: { server: "server-2", method: "tools/list" } });
    const server2 = driver.serversOf(session.user)[1] as TinyMcpServer;
    expect(server2.received.at(-1)?.session).toBe(revived?.upstreamSessionId);
    expect(server2.received.filter((r) => r.message.method === "initialize")).toHaveLength(1);
    expect(driver.serversOf(session.user)).toHaveLength(2);
    expect((await b.store.getSession(session.user, session.nonce))?.upstreamSessionId).toBe(revived?.upstreamSessionId);

    // And a's next request goes straight to server-2 on the corrected entry.
    const before = server2.received.length;
    expect((await post(a.url, list(4), session.headers)).body.result.server).toBe("server-2");
    expect(server2.received.slice(before).map((r) => r.message.method)).toEqual(["tools/list"]);
  });

  it("answers correctly from a stale entry after the route was rewritten in Redis behind its back", async () => {
    const { driver, gateway, open } = await setup({ SESSION_CACHE_MS: "60000" });
    const session = await open("rewritten");
    expect((await post(gateway.url, list(1), session.headers)).body.result.server).toBe("server-1");
    // Another replica's work, done directly on the store: a new server and the route to it.
    const replacement = await startTinyMcpServer("elsewhere");
    const [first] = [...driver.started.keys()];
    await driver.kill(first as string);
    await gateway.store.setRoute({ userId: session.user, containerId: "moved", endpoint: replacement.url });

    const answer = await post(gateway.url, list(2), session.headers);
    expect(answer.body).toMatchObject({ id: 2, result: { server: "elsewhere" } });
    expect(replacement.received.map((r) => r.message.method)).toEqual([
      "tools/list", // the old upstream session: 404, so it is revived here
      "initialize",
      "notifications/initialized",
      "tools/list",
    ]);
    await replacement.close();
  });

  it("never answers one user's request from another user's cached entry", async () => {
    const { gateway, open } = await setup({ SESSION_CACHE_MS: "60000" });
    const alice = await open("alice");
    const bob = await open("bob");
    expect((await post(gateway.url, list(1), alice.headers)).status).toBe(200);
    expect((await post(gateway.url, list(1), bob.headers)).status).toBe(200);
    // Bob's key with Alice's (cached) session id: the same 404 as any unknown id.
    const crossed = await post(gateway.url, list(2), { ...alice.headers, "X-Outline-API-Key": bob.apiKey });
    expect(crossed.status).toBe(404);
    const [aliceAnswer, bobAnswer] = await Promise.all([
      post(gateway.url, list(3), alice.headers),
      post(gateway.url, list(3), bob.headers),
    ]);
    expect(aliceAnswer.body.result.server).not.toBe(bobAnswer.body.result.server);

    // The cache itself: an entry is found only under the user it was stored for.
    const cache = new SessionCache(60_000);
    const stored = await gateway.store.getSession(alice.user, alice.nonce);
    const route = await gateway.store.getRoute(alice.user);
    if (!stored || !route) throw new Error("alice's session and route are in Redis");
    cache.set(alice.user, alice.nonce, { session: stored, route });
    expect(cache.get(bob.user, alice.nonce)).toBeNull();
    cache.set(bob.user, alice.nonce, { session: stored, route }); // a mismatched entry is refused
    expect(cache.get(bob.user, alice.nonce)).toBeNull();
    expect(cache.get(alice.user, alice.nonce)?.session.upstreamSessionId).toBe(stored.upstreamSessionId);
  });

  it("logs one access line per warm request (request id, user tag, method, status, ms) and no key", async () => {
    const { gateway, open } = await setup({ SESSION_CACHE_MS: "60000" });
    const session = await open("logged");
    expect((await post(gateway.url, list(1), session.headers)).status).toBe(200);
    const before = gateway.logs.length;
    const headers = { ...session.headers, "X-Request-Id": "warm-request-1" };
    expect((await post(gateway.url, list(2), headers)).status).toBe(200);
    const lines = gateway.logs.slice(before);
    expect(lines).toEqual([
      expect.objectContaining({
        level: 30,
        req: "warm-request-1",
        user: session.user.slice(0, 12),
        method: "POST",
        status: 200,
        ms: expect.any(Number),
        msg: "request",
      }),
    ]);
    // A refused request logs through the request's logger (made when first used): the same bindings.
    const refused = await post(gateway.url, list(3), {
      ...headers,
      "Mcp-Session-Id": `${session.headers["Mcp-Session-Id"]}x`,
    });
    expect(refused.status).toBe(404);
    expect(gateway.logs.slice(before + 1)).toEqual([
      expect.objectContaining({ req: "warm-request-1", user: session.user.slice(0, 12), msg: "session id refused" }),
      expect.objectContaining({ req: "warm-request-1", user: session.user.slice(0, 12), status: 404, msg: "request" }),
    ]);
    expect(JSON.stringify(gateway.logs)).not.toContain(session.apiKey);
  });

  it("writes batched touches within the interval, with the time of use, so the reaper sees the activity", async () => {
    const { gateway, open } = await setup({ SESSION_CACHE_MS: "60000", TOUCH_INTERVAL_MS: "300" });
    const session = await open("touched");
    expect((await post(gateway.url, list(1), session.headers)).status).toBe(200);
    // An hour idle, as the reaper would see it.
    const hourAgo = Date.now() - 3_600_000;
    await gateway.store.touch(session.user, session.nonce, hourAgo);
    const usedAt = Date.now();
    expect((await post(gateway.url, list(2), session.headers)).status).toBe(200); // from the cache
    const answeredAt = Date.now();

    const touched = await eventually(() => gateway.store.getSession(session.user, session.nonce), {
      timeoutMs: 2_000,
      intervalMs: 50,
      until: (found) => (found?.lastUsedAt ?? 0) >= usedAt,
    });
    // The time of the request, however long it took on a busy machine.
    expect(touched?.lastUsedAt).toBeLessThanOrEqual(answeredAt);
    expect((await gateway.store.getRoute(session.user))?.lastUsedAt).toBeGreaterThanOrEqual(usedAt);
    // The reaper's query: nothing of this session is idle since before the request.
    const claimed = await gateway.store.claimExpiredSessions(usedAt - 1, 1000);
    expect(claimed.map((c) => c.sessionId)).not.toContain(session.nonce);
  });

  it("writes the touches still batched when the gateway closes", async () => {
    const { gateway, open } = await setup({ SESSION_CACHE_MS: "60000", TOUCH_INTERVAL_MS: "60000" });
    const session = await open("closing");
    expect((await post(gateway.url, list(1), session.headers)).status).toBe(200);
    await gateway.store.touch(session.user, session.nonce, Date.now() - 3_600_000);
    const usedAt = Date.now();
    expect((await post(gateway.url, list(2), session.headers)).status).toBe(200);
    expect((await gateway.store.getSession(session.user, session.nonce))?.lastUsedAt).toBeLessThan(usedAt);

    const store = (await import("@mcp-broker/session-store")).SessionStore.connect(redis.url, {
      prefix: redis.prefix,
      sessionIdleTtlSeconds: 3600,
    });
    await running.splice(running.indexOf(gateway), 1)[0]?.close();
    expect((await store.getSession(session.user, session.nonce))?.lastUsedAt).toBeGreaterThanOrEqual(usedAt);
    await store.close();
  });
});

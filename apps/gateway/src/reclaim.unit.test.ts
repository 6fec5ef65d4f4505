import { eventually, type LocalRedis, startLocalRedis } from "@mcp-broker/test-support";
import { InProcessDriver } from "./testing/in-process-driver.js";
import { type InProcessGateway, startInProcessGateway } from "./testing/in-process-gateway.js";
import { key } from "./testing/keys.js";
import { list, post } from "./testing/rpc.js";
import { startTinyMcpServer, type TinyMcpServer } from "./testing/tiny-mcp-server.js";

/** Issue 14's MAX_BACKENDS rule "idle ones reclaimed first", on real Redis and real HTTP servers. */
describe("MAX_BACKENDS reclaim", () => {
  let redis: LocalRedis;
  let driver: InProcessDriver<TinyMcpServer>;
  let gateway: InProcessGateway;
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });

  beforeAll(async () => {
    redis = await startLocalRedis();
  });
  beforeEach(async () => {
    // Every server holds a `hold` request until the test releases it: a call in flight.
    driver = new InProcessDriver<TinyMcpServer>(async () => {
      const server = await startTinyMcpServer();
      server.takeover = async ({ message }, response) => {
        if (message.method !== "hold") return false;
        await held;
        response.writeHead(200, { "content-type": "application/json" });
        response.end(JSON.stringify({ jsonrpc: "2.0", id: message.id, result: {} }));
        return true;
      };
      return server;
    });
    gateway = await startInProcessGateway(redis, driver, {
      REDIS_PREFIX: `${redis.prefix}${Math.random().toString(36).slice(2, 8)}:`,
      MAX_BACKENDS: "2",
      RECLAIM_MIN_IDLE_SECONDS: "60",
    });
  });
  afterEach(async () => {
    release();
    await gateway.close();
    await driver.close();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  const as = (apiKey: string) => ({ "X-Outline-API-Key": apiKey });
  /**
   * Makes the user's backend look unused for `ms`: the route's last use goes back, and the busy
   * mark its last call left (it lasts a lease, 30 s, after the call) lapses, as both would have
   * by then.
   */
  const idleFor = async (apiKey: string, ms: number) => {
    await lastUsed(apiKey, ms);
    await gateway.store.markBusy([gateway.userOf(apiKey)], Date.now() - 1);
  };
  const lastUsed = (apiKey: string, msAgo: number) =>
    gateway.store.touch(gateway.userOf(apiKey), undefined, Date.now() - msAgo);
  const running = (apiKey: string) => driver.serversOf(gateway.userOf(apiKey)).length;

  it("gives a new key the least recently used idle backend's slot, and the reclaimed user gets one back later", async () => {
    const [a, b, c] = [key("lru-a"), key("lru-b"), key("lru-c")];
    expect((await post(gateway.url, list(1), as(a))).status).toBe(200);
    expect((await post(gateway.url, list(1), as(b))).status).toBe(200);
    await idleFor(a, 300_000);
    await idleFor(b, 120_000);

    expect((await post(gateway.url, list(1), as(c))).status).toBe(200);
    expect(running(a)).toBe(0); // the least recently used one was stopped
    expect(running(b)).toBe(1);
    expect(await gateway.store.getRoute(gateway.userOf(a))).toBeNull();

    // A comes back: B is now the idle one; A's session-less calls are served again.
    expect((await post(gateway.url, list(2), as(a))).status).toBe(200);
    expect(running(b)).toBe(0);
    expect(running(c)).toBe(1);
    expect((await gateway.metrics.backendsReclaimed.get()).values[0]?.value).toBe(2);
  });

  it("answers 503 + Retry-After when every backend has a call in flight, however long unused", async () => {
    const [a, b, c] = [key("busy-a"), key("busy-b"), key("busy-c")];
    expect((await post(gateway.url, list(1), as(a))).status).toBe(200);
    expect((await post(gateway.url, list(1), as(b))).status).toBe(200);
    const calls = [a, b].map((k) => post(gateway.url, { jsonrpc: "2.0", id: 9, method: "hold" }, as(k)));
    // Both calls reached their servers before the routes are made to look old.
    await eventuallyHeld(2);
    // Unused for minutes by their routes; only the busy marks of the calls in flight protect them.
    await lastUsed(a, 300_000);
    await lastUsed(b, 300_000);

    const refused = await post(gateway.url, list(1), as(c));
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("30");
    expect(refused.body.error.code).toBe(-32003);
    expect(running(a) + running(b)).toBe(2);

    release();
    expect((await Promise.all(calls)).map((r) => r.status)).toEqual([200, 200]);
  });

  async function eventuallyHeld(count: number) {
    const holding = () =>
      [...driver.started.values()].flatMap((s) => s.server.received).filter((r) => r.message.method === "hold").length;
    // Generous: on a busy machine the calls' cold starts may take seconds.
    await eventually(holding, { timeoutMs: 20_000, intervalMs: 10, until: (held) => held >= count });
  }
});

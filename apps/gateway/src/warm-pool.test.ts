import { createHash } from "node:crypto";
import { isSpareUserId } from "@mcp-broker/container-manager";
import { connectClient, eventually, images, resultText } from "@mcp-broker/test-support";
import { docker, removeLabelled, requireDocker, startRedis, type TestRedis } from "@mcp-broker/test-support/docker";
import { Redis } from "ioredis";
import { userIdFor } from "./middleware/auth.js";
import type { RunningGateway } from "./server.js";
import { key, startTestGateway } from "./testing/gateway.js";

/** The outline-stub's `whoami` fingerprint of a key. */
const fingerprint = (apiKey: string) => createHash("sha256").update(apiKey).digest("hex").slice(0, 12);

/** Issue 15 item 2: the warm pool, with real Docker, real Redis and the real MCP SDK client. */
describe("warm pool of keyless spares", () => {
  let redis: TestRedis;
  const gateways: RunningGateway[] = [];
  const deployment = `pool${Date.now().toString(36)}`;

  beforeAll(async () => {
    await requireDocker(images.stub);
    redis = await startRedis();
  });
  afterAll(async () => {
    await Promise.all(gateways.map((gateway) => gateway.close()));
    await removeLabelled(`mcp-broker.deployment=${deployment}`);
    await redis?.stop();
  });

  const start = async (env: Record<string, string>, name = deployment) => {
    const gateway = await startTestGateway({
      REDIS_URL: redis.url,
      REDIS_PREFIX: `${redis.prefix}${name}:`,
      DEPLOYMENT_NAME: name,
      MAX_BACKENDS: "60",
      ...env,
    });
    gateways.push(gateway);
    return gateway;
  };
  const spareContainers = async (name: string) =>
    (await docker.listContainers({ filters: { label: [`mcp-broker.deployment=${name}`] } })).filter((c) =>
      isSpareUserId(c.Labels["mcp-broker.user"] ?? ""),
    );

  it("gives 20 new keys at once 20 distinct spares, each serving its own key; refills to 20 and never above across two gateways", async () => {
    const a = await start({ WARM_POOL_SIZE: "20" });
    await eventually(async () => expect(await a.store.warmPool.list()).toHaveLength(20), { timeoutMs: 120_000 });
    const pooled = new Set((await a.store.warmPool.list()).map((spare) => spare.containerId));

    const keys = Array.from({ length: 20 }, (_, i) => key(`pool${i}`));
    const answers = await Promise.all(
      keys.map(async (apiKey) => {
        const client = await connectClient(a.url, { "X-Outline-API-Key": apiKey });
        try {
          return JSON.parse(resultText(await client.callTool({ name: "whoami", arguments: {} })));
        } finally {
          await client.close();
        }
      }),
    );
    // Each key ran as itself on a spare started without any key: A's spare never served B.
    answers.forEach((who, i) => {
      expect(who).toMatchObject({ key: fingerprint(keys[i] as string), startKey: null });
    });
    const routes = await Promise.all(keys.map((k) => a.store.getRoute(userIdFor(a.config.KEY_HASH_SECRET, k))));
    const claimed = routes.map((route) => route?.containerId as string);
    expect(new Set(claimed).size).toBe(20);
    expect(claimed.every((id) => pooled.has(id))).toBe(true);
    for (const [i, id] of claimed.entries()) {
      expect(await a.store.warmPool.owner(id)).toBe(userIdFor(a.config.KEY_HASH_SECRET, keys[i] as string));
    }

    // A second gateway refills alongside the first: ready plus starting never passes 20.
    const b = await start({ WARM_POOL_SIZE: "20" });
    let most = 0;
    await eventually(
      async () => {
        const [ready, starting] = await Promise.all([a.store.warmPool.list(), a.store.warmPool.starting()]);
        most = Math.max(most, ready.length + starting);
        expect(ready).toHaveLength(20);
      },
      { timeoutMs: 120_000 },
    );
    await Promise.all([a.spares.refill(), b.spares.refill()]);
    expect(most).toBeLessThanOrEqual(20);
    // 20 claimed (still running as their users') + 20 ready spares, and not one more.
    expect(await spareContainers(deployment)).toHaveLength(40);
    const refilled = (await a.store.warmPool.list()).map((spare) => spare.containerId);
    expect(refilled.some((id) => pooled.has(id))).toBe(false);
  }, 300_000);

  it("never puts a reaped container back into the pool", async () => {
    const gateway = gateways[0] as RunningGateway;
    const apiKey = key("reaped");
    const client = await connectClient(gateway.url, { "X-Outline-API-Key": apiKey });
    await client.callTool({ name: "whoami", arguments: {} });
    await client.close();
    const userId = userIdFor(gateway.config.KEY_HASH_SECRET, apiKey);
    const reaped = (await gateway.store.getRoute(userId))?.containerId as string;
    // What the reaper's sweep does with an idle route: claim, remove, finish.
    const [claim] = (await gateway.store.claimIdleRoutes(Date.now() + 1, 500, 60_000)).filter(
      (c) => c.userId === userId,
    );
    expect(claim?.containerId).toBe(reaped);
    await gateway.driver.remove(reaped);
    await gateway.store.finishRouteRemoval(claim as NonNullable<typeof claim>);

    await gateway.spares.refill();
    await eventually(async () => expect(await gateway.store.warmPool.list()).toHaveLength(20), { timeoutMs: 60_000 });
    expect((await gateway.store.warmPool.list()).map((spare) => spare.containerId)).not.toContain(reaped);
    expect(await gateway.driver.inspect(reaped)).toBeNull();
  }, 120_000);

  it("serves a session-less first call on the spare's warm session: the server sees no second initialize", async () => {
    const gateway = gateways[0] as RunningGateway;
    await eventually(async () => expect(await gateway.store.warmPool.list()).toHaveLength(20), { timeoutMs: 60_000 });
    const apiKey = key("warm-session");
    const userId = userIdFor(gateway.config.KEY_HASH_SECRET, apiKey);
    const whoami = async () => {
      const answer = await fetch(gateway.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "x-outline-api-key": apiKey,
        },
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: 1,
          method: "tools/call",
          params: { name: "whoami", arguments: {} },
        }),
      });
      expect(answer.status).toBe(200);
      return answer.text();
    };
    // The oldest spare goes first; its warm session, as the refill left it in Redis.
    const [oldest] = await gateway.store.warmPool.list();
    const raw = new Redis(redis.url);
    const warm = await raw.hget(`${redis.prefix}${deployment}:pool:sessions`, oldest?.containerId as string);
    raw.disconnect();
    expect(warm).toMatch(/^\S+ \S+$/);

    expect(await whoami()).toContain(fingerprint(apiKey));
    const route = await gateway.store.getRoute(userId);
    expect(route?.containerId).toBe(oldest?.containerId);
    const pooled = await gateway.store.getPooledSession(userId);
    // The stub counts its live sessions: the warm-up's, adopted as the user's pooled session, and no other.
    const health = await (await fetch(String(route?.endpoint).replace(/\/mcp$/, "/health"))).json();
    expect(health).toMatchObject({ sessions: 1 });
    expect(pooled?.upstreamSessionId).toBe(warm?.split(" ")[0]);
    expect(await whoami()).toContain(fingerprint(apiKey));
    expect(await gateway.store.getPooledSession(userId)).toMatchObject({
      upstreamSessionId: pooled?.upstreamSessionId,
    });
  }, 120_000);

  it("keeps no pool when the backend needs its key at start (BACKEND_KEY_AT_START=true)", async () => {
    const name = `${deployment}k`;
    const gateway = await start({ WARM_POOL_SIZE: "2", BACKEND_KEY_AT_START: "true" }, name);
    await gateway.spares.refill();
    const apiKey = key("at-start");
    const client = await connectClient(gateway.url, { "X-Outline-API-Key": apiKey });
    const who = JSON.parse(resultText(await client.callTool({ name: "whoami", arguments: {} })));
    await client.close();
    expect(who).toMatchObject({ key: fingerprint(apiKey), startKey: fingerprint(apiKey) });
    expect(await gateway.store.warmPool.list()).toEqual([]);
    expect(await spareContainers(name)).toEqual([]);
    await removeLabelled(`mcp-broker.deployment=${name}`);
  }, 60_000);
});

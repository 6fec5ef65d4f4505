import { randomUUID } from "node:crypto";
import { spareUserId } from "@mcp-broker/container-manager";
import { DockerDriver } from "@mcp-broker/container-manager/docker";
import { SessionStore } from "@mcp-broker/session-store";
import { images } from "@mcp-broker/test-support";
import { docker, removeLabelled, requireDocker, startRedis, type TestRedis } from "@mcp-broker/test-support/docker";
import { pino } from "pino";
import { type SweepConfig, sweep } from "./sweep.js";

const INIT = { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } };

describe("sweep on real Redis and real containers", () => {
  let redis: TestRedis;
  let store: SessionStore;
  const deployment = `r${randomUUID().slice(0, 8)}`;
  const driver = new DockerDriver({ image: images.stub, deployment, pullMissing: false, readinessTimeoutMs: 20_000 });
  const config: SweepConfig = {
    SESSION_IDLE_TTL_SECONDS: 60,
    CONTAINER_IDLE_TTL_SECONDS: 60,
    REAP_BATCH_SIZE: 50,
    REAP_MAX_BATCHES: 4,
    ORPHAN_GRACE_SECONDS: 0,
  };
  const run = (now = Date.now()) => sweep({ config, store, driver, log: pino({ level: "silent" }) }, now);
  const minutesAgo = (n: number) => Date.now() - n * 60_000;
  /** As a sweep `minutes` ago would have: the container was seen without a route then. */
  const seenUnrouted = (userId: string, containerId: string, minutes: number) =>
    store.markUnrouted(userId, containerId, minutesAgo(minutes));

  beforeAll(async () => {
    await requireDocker(images.stub);
    redis = await startRedis();
    store = SessionStore.connect(redis.url, { prefix: redis.prefix, sessionIdleTtlSeconds: 60 });
  });
  afterAll(async () => {
    await store?.close();
    await removeLabelled(`mcp-broker.deployment=${deployment}`);
    await redis?.stop();
  });

  /** A user with a real container and route, and one upstream session opened on it. */
  async function userWithSession(userId: string) {
    const backend = await driver.ensure({ userId, apiKey: `ol_api_${userId}` });
    await store.setRoute({ userId, ...backend });
    const init = await fetch(backend.endpoint, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: INIT }),
    });
    await init.text();
    const upstream = init.headers.get("mcp-session-id") as string;
    const session = await store.createSession({
      userId,
      upstreamSessionId: upstream,
      initializeParams: INIT,
      protocolVersion: "2025-06-18",
    });
    return { backend, session, upstream };
  }

  const upstreamStatus = async (endpoint: string, upstream: string) =>
    (
      await fetch(endpoint, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "mcp-session-id": upstream,
        },
        body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" }),
      }).then(async (r) => {
        await r.text();
        return r;
      })
    ).status;

  it("ends idle sessions upstream and in Redis, and keeps what was used since the cutoff", async () => {
    const idle = await userWithSession(`idle${randomUUID().slice(0, 6)}`);
    const busy = await userWithSession(`busy${randomUUID().slice(0, 6)}`);
    await store.touch(idle.session.userId, idle.session.id, minutesAgo(2));
    await store.touch(idle.session.userId, undefined, minutesAgo(0)); // its container stays in use
    await store.touch(busy.session.userId, busy.session.id, minutesAgo(0));

    const result = await run();
    expect(result.sessionsEnded).toBe(1);
    expect(result.upstreamDeletesFailed).toBe(0);
    expect(await store.getSession(idle.session.userId, idle.session.id)).toBeNull();
    expect(await upstreamStatus(idle.backend.endpoint, idle.upstream)).toBe(404);
    expect(await store.getSession(busy.session.userId, busy.session.id)).not.toBeNull();
    expect(await upstreamStatus(busy.backend.endpoint, busy.upstream)).toBe(200);
  });

  it("removes idle containers with their routes and keeps containers in use", async () => {
    const idle = await userWithSession(`cidle${randomUUID().slice(0, 6)}`);
    const busy = await userWithSession(`cbusy${randomUUID().slice(0, 6)}`);
    await store.touch(idle.session.userId, undefined, minutesAgo(2));

    const result = await run();
    expect(result.containersStopped).toBe(1);
    expect(await driver.inspect(idle.backend.containerId)).toBeNull();
    expect(await store.getRoute(idle.session.userId)).toBeNull();
    expect((await driver.inspect(busy.backend.containerId))?.running).toBe(true);
    expect((await store.getRoute(busy.session.userId))?.state).toBe("ready");
  });

  it("leaves an idle container alone while a gateway holds the user's lock (starting or recovering)", async () => {
    const user = await userWithSession(`locked${randomUUID().slice(0, 6)}`);
    await store.touch(user.session.userId, undefined, minutesAgo(2));
    await store.withUserLock(user.session.userId, { ttlMs: 30_000, timeoutMs: 1000 }, async () => {
      expect((await run()).containersStopped).toBe(0);
      expect((await driver.inspect(user.backend.containerId))?.running).toBe(true);
    });
    expect((await run()).containersStopped).toBe(1);
  });

  it("removes a labelled container Redis does not know, and a route whose container is gone", async () => {
    const orphanUser = `orphan${randomUUID().slice(0, 6)}`;
    const orphan = await driver.ensure({ userId: orphanUser, apiKey: "ol_api_orphan" }); // never routed: a crash
    const staleUser = `stale${randomUUID().slice(0, 6)}`;
    const stale = await driver.ensure({ userId: staleUser, apiKey: "ol_api_stale" });
    await store.setRoute({ userId: staleUser, ...stale });
    await docker.getContainer(stale.containerId).remove({ force: true }); // removed behind Redis's back
    await seenUnrouted(orphanUser, orphan.containerId, 2); // one sighting is no orphan: see the next test

    const result = await run();
    expect(result.orphansRemoved).toBeGreaterThanOrEqual(1);
    expect(await driver.inspect(orphan.containerId)).toBeNull();
    expect(result.staleRoutesRemoved).toBe(1);
    expect(await store.getRoute(staleUser)).toBeNull();
  });

  it("keeps the warm pool's ready spares, drops dead ones from it, and judges a claimed spare by its user's route", async () => {
    const pooled = async () => {
      const label = spareUserId();
      const backend = await driver.ensure({ userId: label, apiKey: "" });
      const ticket = await store.warmPool.reserveStart(10, 100, 60_000);
      await store.warmPool.add(ticket as string, { ...backend, createdAt: Date.now() }, 10);
      // Seen unrouted for minutes: by the orphan rule alone, each would go.
      await seenUnrouted(label, backend.containerId, 5);
      await seenUnrouted(label, backend.containerId, 4);
      return backend;
    };
    const claimed = await pooled(); // the oldest: the next claim takes it
    const owner = `owner${randomUUID().slice(0, 6)}`;
    expect((await store.warmPool.claim(owner, 60_000))?.containerId).toBe(claimed.containerId);
    await store.setRoute({ userId: owner, ...claimed });
    const ready = await pooled();
    const dead = await pooled();
    await docker.getContainer(dead.containerId).remove({ force: true });

    const result = await run();
    expect(result.sparesDropped).toBe(1);
    expect((await store.warmPool.list()).map((spare) => spare.containerId)).toEqual([ready.containerId]);
    expect((await driver.inspect(ready.containerId))?.running).toBe(true);
    expect((await driver.inspect(claimed.containerId))?.running).toBe(true);
    expect(await store.warmPool.owner(claimed.containerId)).toBe(owner);
  });

  it("spares a young unrouted container (it may be starting) until the grace period passes", async () => {
    const youngUser = `young${randomUUID().slice(0, 6)}`;
    const young = await driver.ensure({ userId: youngUser, apiKey: "ol_api_young" });
    const graceful = { ...config, ORPHAN_GRACE_SECONDS: 300 };
    await sweep({ config: graceful, store, driver, log: pino({ level: "silent" }) });
    expect((await driver.inspect(young.containerId))?.running).toBe(true);
    await seenUnrouted(youngUser, young.containerId, 2);
    await run();
    expect(await driver.inspect(young.containerId)).toBeNull();
  });

  it("removes an unrouted running container only once sweeps saw it so for the container idle limit", async () => {
    const userId = `lost${randomUUID().slice(0, 6)}`;
    const lost = await driver.ensure({ userId, apiKey: "ol_api_lost" }); // its route lost with Redis's data
    for (let i = 0; i < 3; i++) expect((await run()).orphansRemoved).toBe(0); // seen, but not for 60 s yet
    expect((await driver.inspect(lost.containerId))?.running).toBe(true);

    const longLostUser = `longlost${randomUUID().slice(0, 6)}`;
    const longLost = await driver.ensure({ userId: longLostUser, apiKey: "ol_api_longlost" });
    await seenUnrouted(longLostUser, longLost.containerId, 2);
    expect((await run()).orphansRemoved).toBe(1);
    expect(await driver.inspect(longLost.containerId)).toBeNull();
    expect((await driver.inspect(lost.containerId))?.running).toBe(true);
    await docker.getContainer(lost.containerId).remove({ force: true });
  });

  it("re-adoption clears the mark: a container routed again and lost again is judged afresh", async () => {
    const userId = `again${randomUUID().slice(0, 6)}`;
    const backend = await driver.ensure({ userId, apiKey: "ol_api_again" });
    await seenUnrouted(userId, backend.containerId, 5);
    await seenUnrouted(userId, backend.containerId, 4);
    await store.setRoute({ userId, ...backend }); // a request re-adopted it
    await store.deleteRoute(userId, backend.containerId); // and Redis lost the route again
    expect((await run()).orphansRemoved).toBe(0);
    expect((await run()).orphansRemoved).toBe(0);
    expect((await driver.inspect(backend.containerId))?.running).toBe(true);
    await docker.getContainer(backend.containerId).remove({ force: true });
  });

  it("removes an unrouted stopped container after two sweeps: the engine says it serves nothing", async () => {
    const userId = `stopped${randomUUID().slice(0, 6)}`;
    const backend = await driver.ensure({ userId, apiKey: "ol_api_stopped" });
    await driver.stop(backend.containerId);
    expect((await run()).orphansRemoved).toBe(0);
    expect(await driver.inspect(backend.containerId)).not.toBeNull();
    expect((await run()).orphansRemoved).toBe(1);
    expect(await driver.inspect(backend.containerId)).toBeNull();
  });

  it("bounds one sweep's work in batches and says when it left some for the next", async () => {
    const old = minutesAgo(5);
    await Promise.all(
      Array.from({ length: 230 }, async (_, i) => {
        const session = await store.createSession({
          userId: `bulk${i % 10}`,
          upstreamSessionId: `up${i}`,
          initializeParams: INIT,
          protocolVersion: "2025-06-18",
        });
        await store.touch(session.userId, session.id, old);
      }),
    );
    const first = await run();
    expect(first.sessionsEnded).toBe(200); // 4 batches of 50
    expect(first.truncated).toBe(true);
    const second = await run();
    expect(second.sessionsEnded).toBe(30);
    expect(second.truncated).toBe(false);
  });
});

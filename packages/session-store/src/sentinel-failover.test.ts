import { setTimeout as sleep } from "node:timers/promises";
import { eventually, startSentinelRedis, type TestSentinelRedis } from "@mcp-broker/test-support";
import { Redis } from "ioredis";
import { SessionStore } from "./session-store.js";

const INIT = { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } };

describe("SessionStore through Redis Sentinel", () => {
  let redis: TestSentinelRedis;
  let store: SessionStore;
  const newSession = (userId: string) =>
    store.createSession({
      userId,
      upstreamSessionId: `up-${userId}`,
      initializeParams: INIT,
      protocolVersion: "2025-06-18",
    });

  beforeAll(async () => {
    redis = await startSentinelRedis();
    store = SessionStore.connect(
      {
        // With sentinels the URL's host is never used: a port nothing listens on proves it.
        url: "redis://127.0.0.1:1",
        sentinels: redis.sentinels,
        masterName: redis.masterName,
      },
      { prefix: "sentinel-test:", sessionIdleTtlSeconds: 3600, commandTimeoutMs: 1000 },
    );
  }, 60_000);
  afterAll(async () => {
    await store?.close();
    await redis?.stop();
  });

  it("works through the sentinels, and again within seconds after the master dies and a replica is promoted", async () => {
    const before = await newSession("alice");
    expect(await store.getSession("alice", before.id)).toMatchObject({ upstreamSessionId: "up-alice" });

    // Replication is asynchronous: make sure the replica has the session before the master dies.
    const master = new Redis({ port: redis.masterPort, host: "127.0.0.1" });
    expect(await master.call("WAIT", "1", "2000")).toBe(1);
    master.disconnect();

    const killedAt = Date.now();
    redis.killMaster();
    // What a gateway sees meanwhile: each request fails fast (503) or succeeds, never hangs.
    let failures = 0;
    let after: Awaited<ReturnType<typeof newSession>> | undefined;
    while (!after && Date.now() - killedAt < 30_000) {
      const attempt = Date.now();
      after = await newSession("bob").catch(() => undefined);
      if (!after) {
        failures++;
        expect(Date.now() - attempt).toBeLessThan(3500); // commandTimeoutMs, plus a reconnect
        await sleep(100);
      }
    }
    const windowMs = Date.now() - killedAt;
    console.info(`sentinel failover: writes failed for ${windowMs} ms (${failures} failed attempts)`);

    expect(after).toBeDefined();
    // The sentinel asked may learn the new master a moment after the one the store asked
    // (sentinels spread it by hello messages): seen in CI, 2.1 s after the kill.
    await eventually(async () => expect(await redis.currentMasterPort()).toBe(redis.replicaPort));
    // The promoted replica has what the old master had.
    expect(await store.getSession("alice", before.id)).toMatchObject({ upstreamSessionId: "up-alice" });
    expect(windowMs).toBeLessThan(15_000);
  }, 60_000);
});

import { randomUUID } from "node:crypto";
import { DockerDriver } from "@mcp-broker/container-manager/docker";
import { loadConfig, type RunningGateway, startGateway } from "@mcp-broker/gateway";
import { loadConfig as loadReaperConfig, type Reaper, startReaper } from "@mcp-broker/reaper";
import { SessionStore } from "@mcp-broker/session-store";
import { connectClient, eventually, images, resultText } from "@mcp-broker/test-support";
import { removeLabelled, requireDocker, startRedis, type TestRedis } from "@mcp-broker/test-support/docker";
import { pino } from "pino";

/** The whole stack with short limits: containers idle for 2 s are reaped, sweeps every second. */
describe("gateway and reaper together", () => {
  let redis: TestRedis;
  let gateway: RunningGateway;
  let reaper: Reaper;
  let reaperStore: SessionStore;
  const deployment = `e${randomUUID().slice(0, 8)}`;
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });

  beforeAll(async () => {
    await requireDocker(images.stub);
    redis = await startRedis();
    const shared = {
      REDIS_URL: redis.url,
      REDIS_PREFIX: redis.prefix,
      DEPLOYMENT_NAME: deployment,
      SESSION_IDLE_TTL_SECONDS: "3600",
      CONTAINER_IDLE_TTL_SECONDS: "2",
    };
    gateway = await startGateway(
      loadConfig({
        ...shared,
        PORT: "0",
        HOST: "127.0.0.1",
        KEY_HASH_SECRET: "e2e-secret-0123456789",
        BACKEND_IMAGE: images.stub,
        BACKEND_PULL: "false",
        RATE_LIMIT_PER_MINUTE: "0",
        AUTH_VERIFY: "off",
        NEW_KEY_STARTS_PER_IP_PER_MINUTE: "0",
      }),
      logger,
    );
    const reaperConfig = loadReaperConfig({
      ...shared,
      REAP_INTERVAL_SECONDS: "1",
      ORPHAN_GRACE_SECONDS: "30",
      DASHBOARD_PORT: "0",
    });
    reaperStore = SessionStore.connect(redis.url, { prefix: redis.prefix, sessionIdleTtlSeconds: 3600 });
    reaper = await startReaper({
      config: reaperConfig,
      store: reaperStore,
      driver: new DockerDriver({ deployment }),
      logger,
    });
  });
  afterAll(async () => {
    await reaper?.close();
    await reaperStore?.close();
    await gateway?.close();
    await removeLabelled(`mcp-broker.deployment=${deployment}`);
    await redis?.stop();
  });

  const containerOf = async (apiKey: string) => {
    const { userIdFor } = await import("@mcp-broker/gateway");
    return (await gateway.store.getRoute(userIdFor(gateway.config.KEY_HASH_SECRET, apiKey)))?.containerId;
  };

  it("never reaps a container under a long tool call, reaps it once idle, and brings it back on the next call", async () => {
    const apiKey = `ol_api_e2e_${randomUUID().slice(0, 8)}`;
    const client = await connectClient(gateway.url, { "X-Outline-API-Key": apiKey });
    try {
      const first = await containerOf(apiKey);
      // Five seconds of work, more than twice the idle limit, while sweeps run every second.
      const result = await client.callTool({ name: "slow_task", arguments: { seconds: 5 } });
      expect(resultText(result)).toContain("after 5s");
      expect(await containerOf(apiKey)).toBe(first);

      // Idle now: the reaper removes the container and its route.
      await eventually(() => containerOf(apiKey), { timeoutMs: 15_000, until: (id) => id === undefined });
      // The sweep removes the route before its job is marked completed: wait for the job too.
      const stoppedBySweep = await eventually(
        async () =>
          (await reaper.queue.getCompleted(0, 50)).some(
            (job) => (job.returnvalue as { containersStopped: number }).containersStopped > 0,
          ),
        { timeoutMs: 5_000, until: (stopped) => stopped },
      ).catch(() => false);
      expect(stoppedBySweep).toBe(true);

      // The same client, the same broker session: a new container, transparently.
      const again = JSON.parse(resultText(await client.callTool({ name: "whoami", arguments: {} })));
      expect(again.requestKey).toBe(again.key);
      const second = await containerOf(apiKey);
      expect(second).toBeDefined();
      expect(second).not.toBe(first);
    } finally {
      await client.close();
    }
  });

  it("keeps the container of a user who keeps calling", async () => {
    const apiKey = `ol_api_e2e_${randomUUID().slice(0, 8)}`;
    const client = await connectClient(gateway.url, { "X-Outline-API-Key": apiKey });
    try {
      const first = await containerOf(apiKey);
      const until = Date.now() + 5000;
      while (Date.now() < until) {
        await client.callTool({ name: "echo", arguments: { text: "still here", delay_ms: 400 } });
        expect(await containerOf(apiKey)).toBe(first);
      }
    } finally {
      await client.close();
    }
  });
});

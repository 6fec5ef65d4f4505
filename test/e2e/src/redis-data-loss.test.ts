import { randomUUID } from "node:crypto";
import { DockerDriver } from "@mcp-broker/container-manager/docker";
import { loadConfig, type RunningGateway, startGateway, userIdFor } from "@mcp-broker/gateway";
import { loadConfig as loadReaperConfig, type Reaper, startReaper } from "@mcp-broker/reaper";
import { SessionStore } from "@mcp-broker/session-store";
import { connectClient, eventually, freePort, images, resultText } from "@mcp-broker/test-support";
import { docker, removeLabelled, requireDocker, startRedis, type TestRedis } from "@mcp-broker/test-support/docker";
import { pino } from "pino";

/**
 * The whole stack when Redis loses every route mid-call (docs/architecture.md#reaper): sweeps
 * every second, no young-container grace, a 10 s container idle limit. Its own Redis container,
 * so the FLUSHALL reaches no other test file.
 */
describe("a Redis that loses its data while a tool call runs", () => {
  let redis: TestRedis;
  let gateway: RunningGateway;
  let reaper: Reaper;
  let reaperStore: SessionStore;
  const deployment = `d${randomUUID().slice(0, 8)}`;
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });

  beforeAll(async () => {
    await requireDocker(images.stub, images.redis);
    redis = await startRedis({ ownContainer: true, hostPort: await freePort() });
    const shared = {
      REDIS_URL: redis.url,
      REDIS_PREFIX: redis.prefix,
      DEPLOYMENT_NAME: deployment,
      SESSION_IDLE_TTL_SECONDS: "3600",
      CONTAINER_IDLE_TTL_SECONDS: "10",
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
    reaperStore = SessionStore.connect(redis.url, { prefix: redis.prefix, sessionIdleTtlSeconds: 3600 });
    reaper = await startReaper({
      config: loadReaperConfig({
        ...shared,
        REAP_INTERVAL_SECONDS: "1",
        ORPHAN_GRACE_SECONDS: "0",
        DASHBOARD_PORT: "0",
      }),
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

  const userOf = (apiKey: string) => userIdFor(gateway.config.KEY_HASH_SECRET, apiKey);
  const containersOf = (apiKey: string) =>
    docker.listContainers({ all: true, filters: { label: [`mcp-broker.user=${userOf(apiKey)}`] } });
  const startedAt = async (containerId: string) => (await docker.getContainer(containerId).inspect()).State.StartedAt;
  const sweepsSince = async (since: number) =>
    (await reaper.queue.getCompleted(0, 100)).filter((job) => (job.processedOn ?? 0) >= since);

  it("keeps the container under the call through the sweeps, and the next request re-adopts it", async () => {
    const apiKey = `ol_api_e2e_${randomUUID().slice(0, 8)}`;
    const client = await connectClient(gateway.url, { "X-Outline-API-Key": apiKey });
    try {
      const route = await gateway.store.getRoute(userOf(apiKey));
      const containerId = route?.containerId as string;
      const started = await startedAt(containerId);

      let finished = false;
      let working!: () => void;
      const inFlight = new Promise<void>((resolve) => {
        working = resolve;
      });
      const call = client
        .callTool({ name: "slow_task", arguments: { seconds: 6 } }, undefined, { onprogress: () => working() })
        .finally(() => {
          finished = true;
        });
      await inFlight; // the first progress notification: the server is working on it

      const flushed = await redis.container?.exec(["redis-cli", "FLUSHALL"]);
      expect(flushed?.output.trim()).toBe("OK");
      const flushedAt = Date.now();
      expect(await gateway.store.getRoute(userOf(apiKey))).toBeNull();
      const meanwhile = await eventually(() => sweepsSince(flushedAt), {
        timeoutMs: 10_000,
        until: (j) => j.length >= 2,
      });
      expect(finished).toBe(false);
      expect(meanwhile.every((job) => job.returnvalue?.orphansRemoved === 0)).toBe(true);

      expect(resultText(await call)).toContain("after 6s");
      expect((await docker.getContainer(containerId).inspect()).State.Running).toBe(true);

      // The user's next request (a new client: the old broker session went with Redis's data).
      const next = await connectClient(gateway.url, { "X-Outline-API-Key": apiKey });
      try {
        const whoami = JSON.parse(resultText(await next.callTool({ name: "whoami", arguments: {} })));
        expect(whoami.requestKey).toBe(whoami.key);
      } finally {
        await next.close();
      }
      expect((await gateway.store.getRoute(userOf(apiKey)))?.containerId).toBe(containerId);
      expect(await startedAt(containerId)).toBe(started); // the same process: not restarted
      expect((await containersOf(apiKey)).map((info) => info.Id)).toEqual([containerId]);
    } finally {
      await client.close().catch(() => {});
    }
  });
});

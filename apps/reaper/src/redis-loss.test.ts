import { randomUUID } from "node:crypto";
import { DockerDriver } from "@mcp-broker/container-manager/docker";
import { SessionStore } from "@mcp-broker/session-store";
import { eventually, freePort, images } from "@mcp-broker/test-support";
import { docker, removeLabelled, requireDocker, startRedis, type TestRedis } from "@mcp-broker/test-support/docker";
import { Redis } from "ioredis";
import { pino } from "pino";
import { loadConfig } from "./config.js";
import { type Reaper, startReaper } from "./reaper.js";
import type { SweepResult } from "./sweep.js";

interface BoardJob {
  id: string;
  processedOn?: number;
  finishedOn?: number;
  returnValue?: SweepResult;
}

/**
 * A Redis that loses everything (docs/architecture.md#reaper): FLUSHALL, and a restart without
 * persistence. Its own Redis container, so no other test file's data is flushed.
 */
describe("reaper after Redis lost its data", () => {
  const INTERVAL_MS = 1000;
  const IDLE_MS = 2000;
  let redis: TestRedis;
  let admin: Redis;
  let store: SessionStore;
  let reaper: Reaper;
  const deployment = `l${randomUUID().slice(0, 8)}`;
  const driver = new DockerDriver({ image: images.stub, deployment, pullMissing: false, readinessTimeoutMs: 20_000 });

  beforeAll(async () => {
    await requireDocker(images.stub, images.redis);
    redis = await startRedis({ ownContainer: true, hostPort: await freePort() });
    admin = new Redis(redis.url);
    const config = loadConfig({
      REDIS_URL: redis.url,
      REDIS_PREFIX: redis.prefix,
      REAP_INTERVAL_SECONDS: String(INTERVAL_MS / 1000),
      CONTAINER_IDLE_TTL_SECONDS: String(IDLE_MS / 1000),
      ORPHAN_GRACE_SECONDS: "0",
      DEPLOYMENT_NAME: deployment,
      DASHBOARD_PORT: "0",
      DASHBOARD_HOST: "127.0.0.1",
      DASHBOARD_PASSWORD: "s3cret-dashboard",
    });
    store = SessionStore.connect(redis.url, { prefix: redis.prefix, sessionIdleTtlSeconds: 3600 });
    reaper = await startReaper({ config, store, driver, logger: pino({ level: "silent" }) });
  });
  afterAll(async () => {
    await reaper?.close();
    await store?.close();
    admin?.disconnect();
    await removeLabelled(`mcp-broker.deployment=${deployment}`);
    await redis?.stop();
  });

  /** Completed sweeps as the dashboard's API lists them, newest first. */
  async function boardJobs(): Promise<BoardJob[]> {
    const auth = { authorization: `Basic ${Buffer.from("admin:s3cret-dashboard").toString("base64")}` };
    const url = `${reaper.dashboardUrl}/api/queues?activeQueue=reaper&status=completed&page=1&jobsPerPage=50`;
    const body = (await (await fetch(url, { headers: auth })).json()) as {
      queues: Array<{ name: string; jobs: BoardJob[] }>;
    };
    return body.queues.find((queue) => queue.name === "reaper")?.jobs ?? [];
  }
  const sweptSince = async (since: number) =>
    (await boardJobs()).filter((job) => (job.processedOn ?? 0) >= since && job.returnValue);

  it("runs a sweep within two intervals of a FLUSHALL, and still reaps an idle container afterwards", async () => {
    await eventually(() => sweptSince(0), { timeoutMs: 10_000, until: (jobs) => jobs.length > 0 });
    const userId = `flushed${randomUUID().slice(0, 6)}`;
    const backend = await driver.ensure({ userId, apiKey: "ol_api_flushed" });
    await store.setRoute({ userId, ...backend });

    await admin.flushall();
    const flushedAt = Date.now();
    expect(await reaper.queue.getJobSchedulersCount()).toBe(0); // what Redis lost

    const [first] = (await eventually(() => sweptSince(flushedAt), { timeoutMs: 10_000, until: (j) => j.length > 0 }))
      .slice()
      .sort((a, b) => (a.processedOn ?? 0) - (b.processedOn ?? 0));
    expect(first?.id).toBeTruthy();
    expect((first?.processedOn ?? Number.POSITIVE_INFINITY) - flushedAt).toBeLessThanOrEqual(2 * INTERVAL_MS);
    expect(await reaper.queue.getJobSchedulersCount()).toBe(1);

    // Its route is gone with the rest: now an unrouted container, removed once idle for the limit.
    await eventually(() => driver.inspect(backend.containerId), { timeoutMs: 20_000, until: (c) => c === null });
    const removal = (await sweptSince(flushedAt)).find((job) => (job.returnValue?.orphansRemoved ?? 0) > 0);
    expect(removal?.returnValue?.orphansRemoved).toBe(1);
    expect(removal?.finishedOn ?? 0).toBeGreaterThanOrEqual(flushedAt + IDLE_MS);
  });

  it("keeps sweeping after Redis restarts empty (the schedule is declared again on reconnect)", async () => {
    const container = docker.getContainer(redis.container?.getId() as string);
    await container.stop({ t: 0 });
    await container.start(); // no persistence: it comes back empty
    const restartedAt = Date.now();
    await eventually(() => admin.ping(), { timeoutMs: 20_000, intervalMs: 250 });

    const swept = await eventually(() => sweptSince(restartedAt), {
      timeoutMs: 20_000,
      intervalMs: 250,
      until: (jobs) => jobs.length >= 2,
    });
    expect(swept.every((job) => job.returnValue?.failures.length === 0)).toBe(true);
    expect(await reaper.queue.getJobSchedulersCount()).toBe(1);
  });
});

import { randomUUID } from "node:crypto";
import { DockerDriver } from "@mcp-broker/container-manager/docker";
import { SessionStore } from "@mcp-broker/session-store";
import { eventually, images } from "@mcp-broker/test-support";
import { requireDocker, startRedis, type TestRedis } from "@mcp-broker/test-support/docker";
import { pino } from "pino";
import { loadConfig } from "./config.js";
import { type Reaper, startReaper } from "./reaper.js";

describe("reaper processes: BullMQ scheduling and the dashboard", () => {
  let redis: TestRedis;
  const reapers: Reaper[] = [];
  const stores: SessionStore[] = [];
  let config: ReturnType<typeof loadConfig>;

  beforeAll(async () => {
    await requireDocker(images.stub);
    redis = await startRedis();
    config = loadConfig({
      REDIS_URL: redis.url,
      REDIS_PREFIX: `${redis.prefix}${randomUUID().slice(0, 4)}:`,
      REAP_INTERVAL_SECONDS: "1",
      DEPLOYMENT_NAME: `r${randomUUID().slice(0, 8)}`,
      DASHBOARD_PORT: "0",
      DASHBOARD_HOST: "127.0.0.1",
      DASHBOARD_PASSWORD: "s3cret-dashboard",
    });
    for (let i = 0; i < 2; i++) {
      const store = SessionStore.connect(config.REDIS_URL, {
        prefix: config.REDIS_PREFIX,
        sessionIdleTtlSeconds: 3600,
      });
      stores.push(store);
      const driver = new DockerDriver({ deployment: config.DEPLOYMENT_NAME });
      reapers.push(await startReaper({ config, store, driver, logger: pino({ level: "silent" }) }));
    }
  });
  afterAll(async () => {
    await Promise.all(reapers.map((reaper) => reaper.close()));
    await Promise.all(stores.map((store) => store.close()));
    await redis?.stop();
  });

  it("runs each scheduled sweep exactly once across two reaper processes", async () => {
    const processedBy = new Map<string, number[]>();
    for (const [index, reaper] of reapers.entries()) {
      reaper.worker.on("completed", (job) => {
        processedBy.set(job.id as string, [...(processedBy.get(job.id as string) ?? []), index]);
      });
    }
    await eventually(() => processedBy.size, { timeoutMs: 15_000, until: (n) => n >= 4 });
    for (const [, workers] of processedBy) expect(workers).toHaveLength(1);
    const completed = await reapers[0]?.queue.getCompleted(0, 100);
    const ids = (completed ?? []).map((job) => job.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(completed?.every((job) => job.name === "sweep" && job.attemptsMade <= 1)).toBe(true);
    expect(completed?.[0]?.returnvalue).toMatchObject({ sessionsEnded: 0, containersStopped: 0, failures: [] });
    const schedulers = await reapers[1]?.queue.getJobSchedulers();
    expect(schedulers).toHaveLength(1);
  });

  it("guards the dashboard with basic auth and shows the sweep jobs and their results", async () => {
    const url = reapers[0]?.dashboardUrl as string;
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(`${url}/api/queues`)).status).toBe(401);
    const auth = { authorization: `Basic ${Buffer.from(`admin:s3cret-dashboard`).toString("base64")}` };
    expect((await fetch(url, { headers: { authorization: "Basic d3Jvbmc6d3Jvbmc=" } })).status).toBe(401);

    const page = await fetch(url, { headers: auth });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("<title>");
    const api = await fetch(`${url}/api/queues?activeQueue=reaper&status=completed&page=1&jobsPerPage=10`, {
      headers: auth,
    });
    expect(api.status).toBe(200);
    const body = (await api.json()) as {
      queues: Array<{ name: string; jobs: Array<{ name: string; returnValue: unknown }> }>;
    };
    const queue = body.queues.find((q) => q.name === "reaper");
    expect(queue?.jobs.length).toBeGreaterThan(0);
    expect(queue?.jobs[0]).toMatchObject({ name: "sweep", returnValue: expect.objectContaining({ sessionsEnded: 0 }) });

    // Each reaper counts the sweeps its own worker ran, and either may have run all of them so far.
    const metrics = await Promise.all(
      reapers.map(async (reaper) => (await fetch(reaper.dashboardUrl.replace("/admin/queues", "/metrics"))).text()),
    );
    expect(metrics.join("\n")).toMatch(/mcpb_sweeps_total\{outcome="ok"\} [1-9]/);
  });
});

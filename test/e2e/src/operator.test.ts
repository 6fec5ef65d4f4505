import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { DockerDriver } from "@mcp-broker/container-manager/docker";
import { loadConfig, type RunningGateway, startGateway, userIdFor } from "@mcp-broker/gateway";
import { loadConfig as loadReaperConfig, type Reaper, startReaper } from "@mcp-broker/reaper";
import { SessionStore } from "@mcp-broker/session-store";
import { connectClient, eventually, images, resultText } from "@mcp-broker/test-support";
import { removeLabelled, requireDocker, startRedis, type TestRedis } from "@mcp-broker/test-support/docker";
import { pino } from "pino";
import { type BrowserContext, chromium } from "playwright-core";

const ROOT = path.resolve(__dirname, "../../..");
/** Screenshots land here; the test prints their paths. */
const OUTPUT = path.join(ROOT, "test/e2e/output");
const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
type Client = Awaited<ReturnType<typeof connectClient>>;
const PASSWORD = `pw-${randomUUID().slice(0, 8)}`;

/**
 * The operator view in a real browser, over the real stack: three users call through the
 * gateway, the page lists three servers, its stop button removes one, and that user's next
 * call starts a new server without the client noticing; `mcp-broker status` lists the same.
 */
describe("operator view and mcp-broker CLI", () => {
  let redis: TestRedis;
  let gateway: RunningGateway;
  let reaper: Reaper;
  let reaperStore: SessionStore;
  let browser: BrowserContext;
  let profile: string;
  const clients: Client[] = [];
  const deployment = `o${randomUUID().slice(0, 8)}`;
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
  const keys = [1, 2, 3].map((n) => `ol_api_op${n}_${randomUUID().slice(0, 8)}`);

  beforeAll(async () => {
    await requireDocker(images.stub);
    redis = await startRedis();
    const shared = { REDIS_URL: redis.url, REDIS_PREFIX: redis.prefix, DEPLOYMENT_NAME: deployment };
    gateway = await startGateway(
      loadConfig({
        ...shared,
        PORT: "0",
        HOST: "127.0.0.1",
        KEY_HASH_SECRET: "operator-e2e-secret-0123",
        BACKEND_IMAGE: images.stub,
        BACKEND_PULL: "false",
        RATE_LIMIT_PER_MINUTE: "0",
        AUTH_VERIFY: "off",
      }),
      logger,
    );
    reaperStore = SessionStore.connect(redis.url, { prefix: redis.prefix, sessionIdleTtlSeconds: 3600 });
    reaper = await startReaper({
      config: loadReaperConfig({
        ...shared,
        REAP_INTERVAL_SECONDS: "1",
        DASHBOARD_PORT: "0",
        DASHBOARD_HOST: "127.0.0.1",
        DASHBOARD_PASSWORD: PASSWORD,
      }),
      store: reaperStore,
      driver: new DockerDriver({ deployment }),
      logger,
    });
    profile = await mkdtemp(path.join(tmpdir(), "mcpb-chromium-"));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: "/usr/bin/chromium",
      args: CHROMIUM_FLAGS,
      headless: true,
      httpCredentials: { username: "admin", password: PASSWORD },
      viewport: { width: 1400, height: 900 },
    });
    await mkdir(OUTPUT, { recursive: true });
  });
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await browser?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
    await reaper?.close();
    await reaperStore?.close();
    await gateway?.close();
    await removeLabelled(`mcp-broker.deployment=${deployment}`);
    await redis?.stop();
  });

  const userOf = (key: string) => userIdFor(gateway.config.KEY_HASH_SECRET, key);
  const containerOf = async (key: string) => (await gateway.store.getRoute(userOf(key)))?.containerId;
  const whoami = async (client: Client) =>
    JSON.parse(resultText(await client.callTool({ name: "whoami", arguments: {} })));
  // The built bin itself: npm links a workspace's bin only when its target exists at install
  // time, and a fresh clone builds after `npm ci`.
  const cli = (...args: string[]) =>
    promisify(execFile)(process.execPath, [path.join(ROOT, "apps/reaper/dist/cli.js"), ...args], {
      cwd: ROOT,
      env: { ...process.env, REDIS_URL: redis.url, REDIS_PREFIX: redis.prefix, DEPLOYMENT_NAME: deployment },
    });

  it("lists three users, stops one from the page, and that user's next call starts a new server", async () => {
    for (const key of keys) {
      const client = await connectClient(gateway.url, { "X-Outline-API-Key": key });
      clients.push(client);
      expect((await whoami(client)).key).toBeDefined();
    }
    // A sweep has run, so the page's sweep table has a row too.
    await eventually(() => reaper.queue.getCompleted(0, 0), { timeoutMs: 10_000, until: (jobs) => jobs.length > 0 });

    const page = await browser.newPage();
    await page.goto(reaper.operatorUrl);
    const rows = page.locator("#servers tbody tr");
    await expect(rows.count()).resolves.toBe(3);
    for (const key of keys) await expect(page.locator(`tr[data-user="${userOf(key)}"]`).count()).resolves.toBe(1);
    const before = path.join(OUTPUT, "operator-view.png");
    await page.screenshot({ path: before, fullPage: true });
    console.log(`operator view screenshot: ${before}`);

    const stopped = keys[1] as string;
    const oldContainer = await containerOf(stopped);
    await page.locator(`tr[data-user="${userOf(stopped)}"] button`).click();
    await page.waitForURL(/stopped=/);
    await expect(rows.count()).resolves.toBe(2);
    await expect(page.getByRole("status").textContent()).resolves.toContain(userOf(stopped).slice(0, 12));
    const after = path.join(OUTPUT, "operator-view-after-stop.png");
    await page.screenshot({ path: after, fullPage: true });
    console.log(`after the stop button: ${after}`);
    expect(await containerOf(stopped)).toBeUndefined();
    expect(await new DockerDriver({ deployment }).inspect(oldContainer as string)).toBeNull();

    // Same client, same broker session: the call works, on a new server.
    const again = await whoami(clients[1] as Client);
    expect(again.requestKey).toBe(again.key);
    const newContainer = await containerOf(stopped);
    expect(newContainer).toBeDefined();
    expect(newContainer).not.toBe(oldContainer);
    // The revival onto the new server shows in the last hour's counts.
    await page.reload();
    await expect(rows.count()).resolves.toBe(3);
    expect(Object.keys(await reaperStore.eventsSince(60)).some((event) => event.startsWith("revival:"))).toBe(true);
    await page.close();
  });

  it("mcp-broker status prints the same users, and sessions lists one user's", async () => {
    const { stdout } = await cli("status");
    console.log(`mcp-broker status:\n${stdout}`);
    for (const key of keys) expect(stdout).toContain(userOf(key).slice(0, 12));
    expect(stdout).toContain("Users with a server (3)");
    const sessions = await cli("sessions", userOf(keys[0] as string).slice(0, 8));
    expect(sessions.stdout.trim().split("\n")).toHaveLength(2); // header + the one session
  });
});

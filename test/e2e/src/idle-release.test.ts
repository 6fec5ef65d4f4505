import { randomUUID } from "node:crypto";
import { DockerDriver } from "@mcp-broker/container-manager/docker";
import { loadConfig, type RunningGateway, startGateway, userIdFor } from "@mcp-broker/gateway";
import { loadConfig as loadReaperConfig, sweep } from "@mcp-broker/reaper";
import { SessionStore } from "@mcp-broker/session-store";
import { connectClient, images, resultText } from "@mcp-broker/test-support";
import { removeLabelled, requireDocker, startRedis, type TestRedis } from "@mcp-broker/test-support/docker";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { pino } from "pino";

/**
 * Idle expiry releases a session, it does not end it (docs/architecture.md#sessions): the reaper
 * ends the upstream session and drops the mapping, and the client's next call, with the same
 * id, runs on a new upstream session of the same server.
 */
describe("a session released for idleness", () => {
  let redis: TestRedis;
  let gateway: RunningGateway;
  let reaperStore: SessionStore;
  let client: Client | undefined;
  const deployment = `e${randomUUID().slice(0, 8)}`;
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
  const shared = { DEPLOYMENT_NAME: deployment, SESSION_IDLE_TTL_SECONDS: "1", CONTAINER_IDLE_TTL_SECONDS: "3600" };

  beforeAll(async () => {
    await requireDocker(images.stub);
    redis = await startRedis();
    const env = { ...shared, REDIS_URL: redis.url, REDIS_PREFIX: redis.prefix };
    gateway = await startGateway(
      loadConfig({
        ...env,
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
    reaperStore = SessionStore.connect(redis.url, { prefix: redis.prefix, sessionIdleTtlSeconds: 1 });
  });
  afterAll(async () => {
    await client?.close();
    await reaperStore?.close();
    await gateway?.close();
    await removeLabelled(`mcp-broker.deployment=${deployment}`);
    await redis?.stop();
  });

  it("is ended upstream by the sweep, and revived on the same id by the client's next call", async () => {
    const apiKey = `ol_api_idle_${randomUUID().slice(0, 8)}`;
    client = await connectClient(gateway.url, { "X-Outline-API-Key": apiKey });
    const whoami = async () => JSON.parse(resultText(await (client as Client).callTool({ name: "whoami" })));
    const before = await whoami();
    const sessionId = (client.transport as { sessionId?: string }).sessionId;
    const route = await gateway.store.getRoute(userIdFor(gateway.config.KEY_HASH_SECRET, apiKey));
    const healthUrl = (route?.endpoint ?? "").replace(/\/mcp$/, "/health");
    const health = async () => (await fetch(healthUrl)).json();
    const sessionsBefore = (await health()).sessions;

    const config = loadReaperConfig({ ...shared, REDIS_URL: redis.url, ORPHAN_GRACE_SECONDS: "3600" });
    const driver = new DockerDriver({ deployment });
    // Two idle limits from now, without waiting for them: the session is past its idle limit.
    const result = await sweep({ config, store: reaperStore, driver, log: logger }, Date.now() + 2000);
    expect(result.sessionsEnded).toBe(1);
    expect(result.upstreamDeletesFailed).toBe(0);
    expect((await health()).sessions).toBe(sessionsBefore - 1);

    const after = await whoami();
    expect((client.transport as { sessionId?: string }).sessionId).toBe(sessionId);
    expect(after.instance).toBe(before.instance);
    expect(after.session).not.toBe(before.session);
    expect((await health()).sessions).toBe(sessionsBefore);
    expect(await gateway.metrics.registry.getSingleMetricAsString("mcpb_session_revivals_total")).toMatch(
      /cause="idle-released"} 1/,
    );
  });
});

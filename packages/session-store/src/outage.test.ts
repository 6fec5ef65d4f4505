import { eventually, freePort } from "@mcp-broker/test-support";
import { docker, startRedis, type TestRedis } from "@mcp-broker/test-support/docker";
import { StoreUnavailableError } from "./errors.js";
import { SessionStore } from "./session-store.js";

describe("SessionStore when Redis goes away", () => {
  let redis: TestRedis;
  let store: SessionStore;

  beforeAll(async () => {
    redis = await startRedis({ ownContainer: true, hostPort: await freePort() });
    store = SessionStore.connect(redis.url, { prefix: redis.prefix, sessionIdleTtlSeconds: 60 });
    await store.ping();
  });
  afterAll(async () => {
    await store.close();
    await redis.stop();
  });

  it("fails fast with STORE_UNAVAILABLE while Redis is down, then reconnects by itself", async () => {
    const container = docker.getContainer(redis.container?.getId() as string);
    await container.stop({ t: 0 });

    const started = Date.now();
    const failure = await store.getRoute("someone").catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(StoreUnavailableError);
    expect((failure as StoreUnavailableError).code).toBe("STORE_UNAVAILABLE");
    expect(Date.now() - started).toBeLessThan(5000);

    await container.start();
    await eventually(() => store.ping(), { timeoutMs: 20_000, intervalMs: 250 });
    await store.setRoute({ userId: "someone", containerId: "c", endpoint: "http://127.0.0.1:9/mcp" });
    expect((await store.getRoute("someone"))?.containerId).toBe("c");
  });
});

import { startRedis, type TestRedis } from "@mcp-broker/test-support/docker";
import { SessionStore } from "./session-store.js";

/** The reaper's evidence about containers without a route (docs/architecture.md#reaper). */
describe("unrouted marks on real Redis", () => {
  let redis: TestRedis;
  let store: SessionStore;
  const route = (userId: string, containerId: string) =>
    store.setRoute({ userId, containerId, endpoint: "http://127.0.0.1:9/mcp" });

  beforeAll(async () => {
    redis = await startRedis();
    store = SessionStore.connect(redis.url, { prefix: redis.prefix, sessionIdleTtlSeconds: 60 });
  });
  afterAll(async () => {
    await store?.close();
    await redis?.stop();
  });

  it("keeps the first sighting's time and counts the sweeps that saw the container unrouted", async () => {
    expect(await store.markUnrouted("ann", "c-ann", 1_700_000_000_123)).toEqual({
      firstSeenAt: 1_700_000_000_123,
      sweeps: 1,
    });
    expect(await store.markUnrouted("ann", "c-ann", 1_700_000_060_000)).toEqual({
      firstSeenAt: 1_700_000_000_123,
      sweeps: 2,
    });
  });

  it("is no sighting when the route names the container, and forgets the earlier ones", async () => {
    await store.markUnrouted("bob", "c-bob", 1000);
    await route("bob", "c-bob");
    expect(await store.markUnrouted("bob", "c-bob", 2000)).toBeNull();
    await store.deleteRoute("bob", "c-bob"); // lost again: the count starts afresh
    expect(await store.markUnrouted("bob", "c-bob", 3000)).toEqual({ firstSeenAt: 3000, sweeps: 1 });
  });

  it("clears the mark when the container is routed again (re-adopted)", async () => {
    await store.markUnrouted("cid", "c-cid", 1000);
    await store.markUnrouted("cid", "c-cid", 2000);
    await route("cid", "c-cid");
    await store.deleteRoute("cid", "c-cid");
    expect(await store.markUnrouted("cid", "c-cid", 5000)).toEqual({ firstSeenAt: 5000, sweeps: 1 });
  });

  it("counts a container the route does not name, even when the user has a route", async () => {
    await route("dee", "c-dee-new");
    expect(await store.markUnrouted("dee", "c-dee-old", 1000)).toEqual({ firstSeenAt: 1000, sweeps: 1 });
  });

  it("drops the marks of containers the engine no longer lists", async () => {
    await store.markUnrouted("eve", "c-eve-1", 1000);
    await store.markUnrouted("eve", "c-eve-2", 1000);
    await store.pruneUnrouted(["c-eve-2"]);
    expect(await store.markUnrouted("eve", "c-eve-1", 2000)).toEqual({ firstSeenAt: 2000, sweeps: 1 });
    expect(await store.markUnrouted("eve", "c-eve-2", 2000)).toEqual({ firstSeenAt: 1000, sweeps: 2 });
  });
});

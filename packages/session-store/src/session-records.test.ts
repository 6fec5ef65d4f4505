import { randomUUID } from "node:crypto";
import { startRedis, type TestRedis } from "@mcp-broker/test-support/docker";
import { MAX_SUBSCRIPTIONS } from "./session-records.js";
import { SessionStore } from "./session-store.js";
import { MAX_SAFE_TOOLS } from "./tool-hints.js";

const INIT = { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } };
const DAY = 24 * 3600 * 1000;

/** Sessions that outlive Redis and the reaper (docs/architecture.md#sessions), on real Redis. */
describe("session records, revivals and tombstones", () => {
  let redis: TestRedis;
  let store: SessionStore;

  beforeAll(async () => {
    redis = await startRedis();
    store = SessionStore.connect(redis.url, { prefix: redis.prefix, sessionIdleTtlSeconds: 3600 });
  });
  afterAll(async () => {
    await store?.close();
    await redis?.stop();
  });

  const user = () => `u${randomUUID().replaceAll("-", "")}`;
  const nonce = () => randomUUID().replaceAll("-", "").slice(0, 22);
  const clientSession = (userId: string, id: string, upstreamSessionId = "up-1") =>
    store.createSession({
      id,
      userId,
      upstreamSessionId,
      initializeParams: null,
      protocolVersion: "2025-06-18",
      expiresAt: Date.now() + DAY,
    });

  it("stores a client's session under its token nonce, without the initialize params its token carries", async () => {
    const [alice, id] = [user(), nonce()];
    const session = await clientSession(alice, id);
    expect(session.id).toBe(id);
    expect(await store.getSession(alice, id)).toMatchObject({ upstreamSessionId: "up-1", initializeParams: null });
    expect(await store.lookupSession(alice, id)).toMatchObject({
      session: { id },
      record: { initializeParams: null, logLevel: null, subscriptions: [], released: false },
      ended: false,
    });
  });

  it("keeps a record of a released client session, with its state, and never touches it back to life", async () => {
    const [bob, id] = [user(), nonce()];
    await clientSession(bob, id);
    await store.recordSessionState(bob, id, { kind: "level", level: "debug" });
    await store.recordSessionState(bob, id, { kind: "subscribe", uri: "file:///a" });
    await store.recordSessionState(bob, id, { kind: "subscribe", uri: "file:///b" });
    await store.recordSessionState(bob, id, { kind: "unsubscribe", uri: "file:///a" });
    await store.touch(bob, id, 1000);

    const claimed = await store.claimExpiredSessions(2000, 1000);
    expect(claimed).toContainEqual(expect.objectContaining({ userId: bob, sessionId: id, upstreamSessionId: "up-1" }));
    expect(await store.getSession(bob, id)).toBeNull();
    expect(await store.lookupSession(bob, id)).toEqual({
      session: null,
      record: { initializeParams: null, logLevel: "debug", subscriptions: ["file:///b"], released: true },
      ended: false,
    });
    expect(await store.touch(bob, id)).toMatchObject({ session: false });
    expect(await store.recordSessionState(bob, id, { kind: "level", level: "info" })).toBe(false);
    expect((await store.useSession(bob, id)).session).toBeNull();
  });

  it("drops a released pooled session entirely: it has no token to revive it", async () => {
    const carol = user();
    const pooled = await store.createSession({
      userId: carol,
      upstreamSessionId: "up-pool",
      initializeParams: INIT,
      protocolVersion: "2025-06-18",
      pooled: true,
    });
    await store.touch(carol, pooled.id, 1000);
    await store.claimExpiredSessions(2000, 1000);
    expect(await store.lookupSession(carol, pooled.id)).toEqual({ session: null, record: null, ended: false });
  });

  it("revives a missing or released mapping once, however many revivals race for it", async () => {
    const [dave, id] = [user(), nonce()];
    const outcomes = await Promise.all(
      ["up-a", "up-b", "up-c", "up-d"].map((upstream) =>
        store.reviveSession(dave, id, {
          expectedUpstream: null,
          upstreamSessionId: upstream,
          protocolVersion: "2025-06-18",
          expiresAt: Date.now() + DAY,
        }),
      ),
    );
    const revived = outcomes.filter((o) => o.outcome === "revived");
    expect(revived).toHaveLength(1);
    const winner = (revived[0] as { upstreamSessionId: string }).upstreamSessionId;
    expect(outcomes.filter((o) => o.outcome === "taken")).toEqual(
      Array(3).fill({ outcome: "taken", upstreamSessionId: winner }),
    );
    expect((await store.useSession(dave, id)).session?.upstreamSessionId).toBe(winner);

    // A known session whose server forgot it: remapped only from the upstream id the caller saw.
    const again = await store.reviveSession(dave, id, {
      expectedUpstream: winner,
      upstreamSessionId: "up-next",
      protocolVersion: "2025-06-18",
    });
    expect(again).toEqual({ outcome: "revived", upstreamSessionId: "up-next" });
    const stale = await store.reviveSession(dave, id, {
      expectedUpstream: winner,
      upstreamSessionId: "up-late",
      protocolVersion: "2025-06-18",
    });
    expect(stale).toEqual({ outcome: "taken", upstreamSessionId: "up-next" });
  });

  it("ends a session with a tombstone that refuses every later revival", async () => {
    const [erin, id] = [user(), nonce()];
    await clientSession(erin, id);
    expect(await store.deleteSession(erin, id, 60_000)).toEqual({ upstreamSessionId: "up-1" });
    expect(await store.lookupSession(erin, id)).toEqual({ session: null, record: null, ended: true });
    const revival = { expectedUpstream: null, upstreamSessionId: "up-2", protocolVersion: "2025-06-18" };
    expect(await store.reviveSession(erin, id, revival)).toEqual({ outcome: "ended" });
    expect(await store.getSession(erin, id)).toBeNull();
    // Without a tombstone TTL (the pooled session, the reaper) nothing stays behind.
    const other = nonce();
    await clientSession(erin, other);
    await store.deleteSession(erin, other);
    expect((await store.lookupSession(erin, other)).ended).toBe(false);
  });

  it("bounds the subscriptions kept per session", async () => {
    const [fay, id] = [user(), nonce()];
    await clientSession(fay, id);
    for (let i = 0; i < MAX_SUBSCRIPTIONS; i++) {
      expect(await store.recordSessionState(fay, id, { kind: "subscribe", uri: `file:///${i}` })).toBe(true);
    }
    expect(await store.recordSessionState(fay, id, { kind: "subscribe", uri: "file:///one-more" })).toBe(false);
    expect(await store.recordSessionState(fay, id, { kind: "subscribe", uri: "file:///0" })).toBe(true);
    expect(await store.recordSessionState(fay, id, { kind: "subscribe", uri: `file:///${"x".repeat(4096)}` })).toBe(
      false,
    );
    expect((await store.lookupSession(fay, id)).record?.subscriptions).toHaveLength(MAX_SUBSCRIPTIONS);
  });

  it("remembers per user which tools the last tools/list called safe to repeat, bounded", async () => {
    const gus = user();
    await store.recordToolHints(gus, [
      { name: "search", safeToRepeat: true },
      { name: "create", safeToRepeat: false },
    ]);
    expect(await store.safeTools(gus, ["search", "create", "unknown"])).toEqual(new Set(["search"]));
    await store.recordToolHints(gus, [{ name: "search", safeToRepeat: false }]);
    expect(await store.safeTools(gus, ["search"])).toEqual(new Set());
    const many = Array.from({ length: MAX_SAFE_TOOLS + 10 }, (_, i) => ({ name: `t${i}`, safeToRepeat: true }));
    await store.recordToolHints(gus, many);
    const names = many.map((tool) => tool.name);
    expect((await store.safeTools(gus, names)).size).toBe(MAX_SAFE_TOOLS);
  });
});

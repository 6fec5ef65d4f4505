import { type LocalRedis, loseRedisData, startLocalRedis } from "@mcp-broker/test-support";
import { mintSessionToken } from "./sessions/token.js";
import { InProcessDriver } from "./testing/in-process-driver.js";
import { type InProcessGateway, startInProcessGateway } from "./testing/in-process-gateway.js";
import { key } from "./testing/keys.js";
import { INITIALIZE, list, nonceOf, post } from "./testing/rpc.js";
import { startTinyMcpServer, type TinyMcpServer } from "./testing/tiny-mcp-server.js";

const NOT_FOUND = {
  jsonrpc: "2.0",
  error: { code: -32001, message: "Session not found: initialize a new session" },
  id: null,
};
const rpc = (id: number, method: string, params: Record<string, unknown> = {}) => ({
  jsonrpc: "2.0",
  id,
  method,
  params,
});

/** Sessions that cannot be lost (docs/architecture.md#sessions), on real Redis and real HTTP servers, in process. */
describe("client sessions: signed ids, revival, tombstones", () => {
  let redis: LocalRedis;
  const running: InProcessGateway[] = [];

  beforeAll(async () => {
    redis = await startLocalRedis();
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((gateway) => gateway.close()));
  });
  afterAll(async () => {
    await redis?.stop();
  });

  /** `replicas` gateways on one Redis and one driver (one server per user, whichever replica asks). */
  async function setup(env: Record<string, string> = {}, replicas = 1) {
    const driver = new InProcessDriver<TinyMcpServer>(() => startTinyMcpServer());
    const gateways: InProcessGateway[] = [];
    for (let i = 0; i < replicas; i++) gateways.push(await startInProcessGateway(redis, driver, env));
    running.push(...gateways);
    const gateway = gateways[0] as InProcessGateway;
    const apiKey = key("sessions");
    const headers = { "X-Outline-API-Key": apiKey };
    const user = gateway.userOf(apiKey);
    const servers = () => driver.serversOf(user);
    const initialize = async (url = gateway.url) => {
      const init = await post(url, INITIALIZE, headers);
      expect(init.status).toBe(200);
      return { ...headers, "Mcp-Session-Id": init.headers.get("mcp-session-id") as string };
    };
    const methods = (server: TinyMcpServer | undefined) => server?.received.map((r) => r.message.method);
    return { driver, gateways, gateway, apiKey, headers, user, servers, initialize, methods };
  }

  it("issues a signed id, and revives the session on the same server when Redis lost everything", async () => {
    const { gateway, user, servers, initialize, methods } = await setup();
    const session = await initialize();
    expect(session["Mcp-Session-Id"]).toMatch(/^mcpb1\.[0-9a-f]{16}\.[\w-]{22}\.\d+\.e[\w-]+\.[\w-]{43}$/);
    await loseRedisData(redis.url, redis.prefix);

    const answer = await post(gateway.url, list(2), session);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ id: 2, result: { method: "tools/list" } });
    expect(answer.headers.get("mcp-session-id")).toBeNull(); // the client keeps the id it has
    expect(servers()).toHaveLength(1);
    expect(methods(servers()[0])).toEqual(["initialize", "initialize", "notifications/initialized", "tools/list"]);
    expect(servers()[0]?.received[1]?.message.params).toEqual(INITIALIZE.params); // from the token itself
    expect(await gateway.store.getSession(user, nonceOf(session["Mcp-Session-Id"]))).not.toBeNull();
    expect(await gateway.revivals("redis-lost")).toBe(1);
  });

  it("revives one mapping however many requests race for it on two replicas", async () => {
    const { gateways, user, servers, initialize, methods } = await setup({}, 2);
    const session = await initialize();
    await loseRedisData(redis.url, redis.prefix);

    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => post((gateways[i % 2] as InProcessGateway).url, list(i), session)),
    );
    expect(answers.map((answer) => answer.status)).toEqual(Array(20).fill(200));
    expect(methods(servers()[0])?.filter((method) => method === "initialize")).toHaveLength(2);
    const mapped = await gateways[0]?.store.getSession(user, nonceOf(session["Mcp-Session-Id"]));
    const used = new Set(
      servers()[0]
        ?.received.filter((r) => r.message.method === "tools/list")
        .map((r) => r.session),
    );
    expect([...used]).toEqual([mapped?.upstreamSessionId]);
  });

  it("revives a session the reaper released, replaying its logging level and subscriptions", async () => {
    // A sweep releases a session idle for an hour, long after any replica's cache forgot it;
    // released at once here, so without the cache (a cached entry's 404 also revives it).
    const { gateway, user, servers, initialize, methods } = await setup({ SESSION_CACHE_MS: "0" });
    const session = await initialize();
    expect((await post(gateway.url, rpc(1, "logging/setLevel", { level: "debug" }), session)).status).toBe(200);
    expect((await post(gateway.url, rpc(2, "resources/subscribe", { uri: "file:///a" }), session)).status).toBe(200);
    const stored = await gateway.store.getSession(user, nonceOf(session["Mcp-Session-Id"]));
    // What a sweep does: claim the idle session, and end it upstream.
    const claimed = await gateway.store.claimExpiredSessions(Date.now() + 60_000, 1000);
    expect(claimed.map((c) => c.sessionId)).toContain(nonceOf(session["Mcp-Session-Id"]));
    servers()[0]?.sessions.delete(stored?.upstreamSessionId as string);

    const answer = await post(gateway.url, list(3), session);
    expect(answer.status).toBe(200);
    expect(methods(servers()[0])?.slice(0, 3)).toEqual(["initialize", "logging/setLevel", "resources/subscribe"]);
    const after = servers()[0]?.received.slice(3) ?? [];
    expect(after.map((r) => r.message.method)).toEqual([
      "initialize",
      "notifications/initialized",
      expect.any(String),
      expect.any(String),
      "tools/list",
    ]);
    // Replayed in parallel, so in either order.
    expect(after.slice(2, 4).map((r) => [r.message.method, r.message.params])).toEqual(
      expect.arrayContaining([
        ["logging/setLevel", { level: "debug" }],
        ["resources/subscribe", { uri: "file:///a" }],
      ]),
    );
    expect(new Set(after.slice(1).map((r) => r.session)).size).toBe(1); // all on the new upstream session
    expect(after[1]?.session).not.toBe(stored?.upstreamSessionId);
    expect(await gateway.revivals("idle-released")).toBe(1);
  });

  it("refuses tampered, foreign, retired, expired, malformed and over-long ids alike; accepts the previous secret's", async () => {
    const [current, previous] = ["current-session-secret-0123", "previous-session-secret-012"];
    const { gateway, user, headers, servers, initialize } = await setup({
      SESSION_SECRET: `${current},${previous}`,
      SESSION_MAX_AGE_SECONDS: "3600",
    });
    const session = await initialize();
    const id = session["Mcp-Session-Id"];
    const other = await post(gateway.url, INITIALIZE, { "X-Outline-API-Key": key("other") });
    const essentials = INITIALIZE.params;
    const mint = (secrets: string[], now = Date.now()) => mintSessionToken(user, essentials, { secrets, now }).token;
    const tampered = `${id.slice(0, 30)}${id[30] === "A" ? "B" : "A"}${id.slice(31)}`;
    const refused = [
      tampered,
      other.headers.get("mcp-session-id") as string,
      mint(["retired-session-secret-0123"]),
      mint([current], Date.now() - 3700_000),
      "not-a-session-id",
      `${id}${"A".repeat(10 * 1024)}`,
    ];
    const started = servers().length;
    for (const candidate of refused) {
      const answer = await post(gateway.url, list(1), { ...headers, "Mcp-Session-Id": candidate });
      expect([answer.status, answer.body]).toEqual([404, NOT_FOUND]);
    }
    expect(servers()).toHaveLength(started);

    const signedBefore = await post(gateway.url, list(2), { ...headers, "Mcp-Session-Id": mint([previous]) });
    expect(signedBefore.status).toBe(200);
    expect(signedBefore.body.id).toBe(2);
  });

  it("ends a session on DELETE for every replica: the id is 404 from then on, never revived", async () => {
    const { gateways, servers, initialize } = await setup({}, 2);
    const [a, b] = gateways as [InProcessGateway, InProcessGateway];
    const session = await initialize(a.url);
    const deleted = await fetch(a.url, { method: "DELETE", headers: session });
    expect(deleted.status).toBe(200);
    expect(servers()[0]?.sessions.size).toBe(0);

    expect([(await post(b.url, list(1), session)).status, (await post(a.url, list(2), session)).status]).toEqual([
      404, 404,
    ]);
    const listen = await fetch(b.url, { headers: { ...session, accept: "text/event-stream" } });
    expect(listen.status).toBe(404);
    expect((await fetch(b.url, { method: "DELETE", headers: session })).status).toBe(404);
    expect(await a.revivals("redis-lost")).toBe(0);
  });

  it("never pools a client's own session: session-less clients get the broker's", async () => {
    const { gateway, user, headers, servers, initialize } = await setup();
    const session = await initialize();
    const own = await gateway.store.getSession(user, nonceOf(session["Mcp-Session-Id"]));
    const pooledAnswer = await post(gateway.url, list(1), headers);
    expect(pooledAnswer.status).toBe(200);

    const pooled = await gateway.store.getPooledSession(user);
    expect(pooled?.id).not.toBe(own?.id);
    const received = servers()[0]?.received ?? [];
    expect(
      received.filter((r) => r.message.method === "initialize").map((r) => r.message.params.clientInfo.name),
    ).toEqual(["curl", "mcp-session-broker (pooled)"]);
    const listed = received.find((r) => r.message.method === "tools/list");
    expect(listed?.session).toBe(pooled?.upstreamSessionId);
    expect(listed?.session).not.toBe(own?.upstreamSessionId);
  });

  it("revives a released session for a GET on a running server, and never starts one for it", async () => {
    const { gateway, driver, user, servers, initialize } = await setup();
    const session = await initialize();
    const release = () => gateway.store.claimExpiredSessions(Date.now() + 60_000, 1000);
    await release();
    const stream = await fetch(gateway.url, { headers: { ...session, accept: "text/event-stream" } });
    expect(stream.status).toBe(200);
    await stream.body?.cancel();
    expect(await gateway.revivals("idle-released")).toBe(1);

    await release();
    await driver.kill((await gateway.store.getRoute(user))?.containerId as string);
    const refused = await fetch(gateway.url, { headers: { ...session, accept: "text/event-stream" } });
    expect(refused.status).toBe(405);
    expect(servers()).toHaveLength(1);
  });
});

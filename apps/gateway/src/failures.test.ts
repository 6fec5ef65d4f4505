import { type RunningStub, startStub } from "@mcp-broker/outline-stub";
import { eventually, freePort, images } from "@mcp-broker/test-support";
import { docker, removeLabelled, requireDocker, startRedis, type TestRedis } from "@mcp-broker/test-support/docker";
import type { RunningGateway } from "./server.js";
import { key, startTestGateway } from "./testing/gateway.js";
import { INITIALIZE, list, post } from "./testing/rpc.js";

const expectRpcError = (body: unknown, code: number) =>
  expect(body).toMatchObject({ jsonrpc: "2.0", error: { code, message: expect.any(String) }, id: null });

describe("bad input and faults get a precise status and a JSON-RPC error", () => {
  let redis: TestRedis;
  let auth: RunningStub;
  let gateway: RunningGateway;
  const goodKey = key("verified");
  const gateways: RunningGateway[] = [];
  const start = async (env: Record<string, string>) => {
    const started = await startTestGateway({ REDIS_URL: redis.url, REDIS_PREFIX: redis.prefix, ...env });
    gateways.push(started);
    return started;
  };

  beforeAll(async () => {
    await requireDocker(images.stub);
    redis = await startRedis();
    auth = await startStub({ apiKey: "unused", allowedKeys: [goodKey] });
    gateway = await start({
      AUTH_VERIFY: "on",
      AUTH_VERIFY_URL: auth.url.replace("/mcp", "/api/auth.info"),
      MAX_BODY_BYTES: "2048",
      RATE_LIMIT_PER_MINUTE: "1000",
    });
  });
  afterAll(async () => {
    for (const g of gateways) {
      await g.close();
      await removeLabelled(`mcp-broker.deployment=${g.config.DEPLOYMENT_NAME}`);
    }
    await auth?.close();
    await redis?.stop();
  });

  const withKey = { "X-Outline-API-Key": goodKey };

  it("401 with WWW-Authenticate and the header to send, for a missing key", async () => {
    const answer = await post(gateway.url, list());
    expect(answer.status).toBe(401);
    expect(answer.headers.get("www-authenticate")).toMatch(/^Bearer /);
    expectRpcError(answer.body, -32004);
    expect(answer.body.error.message).toContain("X-Outline-API-Key");
  });

  it("401 for a malformed key, and for a key the upstream service rejects", async () => {
    const malformed = await post(gateway.url, list(), { "X-Outline-API-Key": "has spaces in it" });
    expect(malformed.status).toBe(401);
    expect(malformed.body.error.message).toMatch(/^Malformed API key/);
    const rejected = await post(gateway.url, list(), { "X-Outline-API-Key": key("unknown") });
    expect(rejected.status).toBe(401);
    expect(rejected.headers.get("www-authenticate")).toContain('error="invalid_token"');
    expect(rejected.body.error.message).toMatch(/rejected/);
  });

  it("accepts a key the upstream service verifies", async () => {
    expect((await post(gateway.url, list(), withKey)).status).toBe(200);
  });

  it("400 parse error for a body that is not JSON, 400 for one that is not JSON-RPC", async () => {
    const notJson = await post(gateway.url, "{not json", withKey);
    expect(notJson.status).toBe(400);
    expectRpcError(notJson.body, -32700);
    const notRpc = await post(gateway.url, { hello: "world" }, withKey);
    expect(notRpc.status).toBe(400);
    expectRpcError(notRpc.body, -32600);
  });

  it("413 for a body over MAX_BODY_BYTES, 415 for a body that is not JSON-typed", async () => {
    const big = await post(
      gateway.url,
      { jsonrpc: "2.0", id: 1, method: "ping", params: { x: "y".repeat(4096) } },
      withKey,
    );
    expect(big.status).toBe(413);
    expectRpcError(big.body, -32600);
    const typed = await post(gateway.url, JSON.stringify(list()), { ...withKey, "content-type": "text/plain" });
    expect(typed.status).toBe(415);
  });

  it("404 for an unknown path and for OAuth discovery, 405 with Allow for a wrong method", async () => {
    const unknown = await fetch(gateway.url.replace("/mcp", "/nope"));
    expect(unknown.status).toBe(404);
    expectRpcError(await unknown.json(), -32600);
    const discovery = await fetch(gateway.url.replace("/mcp", "/.well-known/oauth-authorization-server"));
    expect(discovery.status).toBe(404);
    expect(await discovery.json()).toMatchObject({ error: { message: expect.stringContaining("OAuth") } });
    const put = await fetch(gateway.url, { method: "PUT", headers: withKey });
    expect(put.status).toBe(405);
    expect(put.headers.get("allow")).toBe("GET, POST, DELETE");
    expectRpcError(await put.json(), -32600);
  });

  it("404 Session not found for an unknown session id; GET offers a stream or 405", async () => {
    const unknown = await post(gateway.url, list(), { ...withKey, "Mcp-Session-Id": "no-such-session" });
    expect(unknown.status).toBe(404);
    expectRpcError(unknown.body, -32001);
    const getWithout = await fetch(gateway.url, { headers: { ...withKey, accept: "text/event-stream" } });
    expect(getWithout.status).toBe(405);
    await getWithout.body?.cancel();

    const init = await post(gateway.url, INITIALIZE, withKey);
    const stream = await fetch(gateway.url, {
      headers: {
        ...withKey,
        accept: "text/event-stream",
        "mcp-session-id": init.headers.get("mcp-session-id") as string,
      },
    });
    expect(stream.status).toBe(200);
    expect(stream.headers.get("content-type")).toContain("text/event-stream");
    expect(stream.headers.get("x-accel-buffering")).toBe("no");
    await stream.body?.cancel();
  });

  it("403 for an Origin outside ALLOWED_ORIGINS, when it is set", async () => {
    const guarded = await start({ ALLOWED_ORIGINS: "https://app.example" });
    const headers = { "X-Outline-API-Key": key("origin") };
    const foreign = await post(guarded.url, list(), { ...headers, Origin: "https://evil.example" });
    expect(foreign.status).toBe(403);
    expectRpcError(foreign.body, -32600);
    expect((await post(guarded.url, list(), { ...headers, Origin: "https://app.example" })).status).toBe(200);
    expect((await post(guarded.url, list(), headers)).status).toBe(200); // non-browser clients send none
  });

  it("answers a 2026-07-28 server/discover for the session-based server itself, and runs its requests on the pooled session", async () => {
    const open = await start({});
    const apiKey = key("modern");
    const modern = (method: string) => ({
      "X-Outline-API-Key": apiKey,
      "MCP-Protocol-Version": "2026-07-28",
      "Mcp-Method": method,
    });
    const discover = await post(
      open.url,
      { jsonrpc: "2.0", id: "d", method: "server/discover" },
      modern("server/discover"),
    );
    expect(discover.status).toBe(200);
    expect(discover.body).toMatchObject({
      id: "d",
      result: { supportedVersions: ["2026-07-28"], capabilities: { tools: {} } },
    });
    const tools = await post(open.url, list(1), modern("tools/list"));
    expect(tools.status).toBe(200);
    expect(tools.body.id).toBe(1);
    expect(tools.body.result.tools.length).toBeGreaterThan(0);
    const { userIdFor } = await import("./middleware/auth.js");
    expect(await open.store.getPooledSession(userIdFor(open.config.KEY_HASH_SECRET, apiKey))).not.toBeNull();
  });

  it("passes a request of a revision it does not bridge (Mcp-Method, a later version) through untouched, without pooling", async () => {
    const open = await start({});
    const apiKey = key("stateless");
    const headers = { "X-Outline-API-Key": apiKey, "MCP-Protocol-Version": "2027-01-01", "Mcp-Method": "tools/list" };
    const answer = await post(open.url, list(1), headers);
    // The session-based server answers 400, which is what makes such a client fall back to initialize.
    expect(answer.status).toBe(400);
    expect(answer.body.error.message).toMatch(/session/i);
    const { userIdFor } = await import("./middleware/auth.js");
    expect(await open.store.getPooledSession(userIdFor(open.config.KEY_HASH_SECRET, apiKey))).toBeNull();
  });

  it("429 with Retry-After past the per-key rate limit", async () => {
    const limited = await start({ RATE_LIMIT_PER_MINUTE: "2" });
    const headers = { "X-Outline-API-Key": key("limited") };
    await post(limited.url, { jsonrpc: "2.0", method: "notifications/initialized" }, headers);
    await post(limited.url, { jsonrpc: "2.0", method: "notifications/initialized" }, headers);
    const third = await post(limited.url, list(), headers);
    expect(third.status).toBe(429);
    expect(Number(third.headers.get("retry-after"))).toBeGreaterThan(0);
    expectRpcError(third.body, -32005);
  });

  it("503 naming the image when the backend image is missing", async () => {
    const broken = await start({ BACKEND_IMAGE: "mcp-broker/no-such-image:never" });
    const answer = await post(broken.url, list(), { "X-Outline-API-Key": key("noimage") });
    expect(answer.status).toBe(503);
    expectRpcError(answer.body, -32003);
    expect(answer.body.error.message).toContain("mcp-broker/no-such-image:never");
    expect(answer.headers.get("retry-after")).toBeTruthy();
  });

  it("reports readiness and Prometheus metrics", async () => {
    const ready = await fetch(gateway.url.replace("/mcp", "/ready"));
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ok: true, redis: "ok", backend: "ok", driver: "docker" });
    const metrics = await (await fetch(gateway.url.replace("/mcp", "/metrics"))).text();
    expect(metrics).toMatch(/mcpb_http_requests_total\{method="POST",status="401"\} [1-9]/);
    expect(metrics).toMatch(/mcpb_cold_starts_total [1-9]/);
    expect(metrics).toContain("mcpb_upstream_duration_seconds_bucket");
    expect(metrics).toMatch(/mcpb_active_sessions [1-9]/);
  });
});

describe("when Redis stops", () => {
  let redis: TestRedis;
  let gateway: RunningGateway;

  beforeAll(async () => {
    await requireDocker(images.stub, images.redis);
    redis = await startRedis({ ownContainer: true, hostPort: await freePort() });
    gateway = await startTestGateway({ REDIS_URL: redis.url, REDIS_PREFIX: redis.prefix });
  });
  afterAll(async () => {
    await gateway?.close();
    await removeLabelled(`mcp-broker.deployment=${gateway?.config.DEPLOYMENT_NAME}`);
    await redis?.stop();
  });

  it("answers 503 with Retry-After, stays up, and serves again once Redis is back", async () => {
    const headers = { "X-Outline-API-Key": key("redis") };
    expect((await post(gateway.url, list(), headers)).status).toBe(200);
    const container = docker.getContainer(redis.container?.getId() as string);
    await container.stop({ t: 0 });

    const down = await post(gateway.url, list(), headers);
    expect(down.status).toBe(503);
    expect(down.headers.get("retry-after")).toBeTruthy();
    expectRpcError(down.body, -32003);
    expect((await fetch(gateway.url.replace("/mcp", "/ready"))).status).toBe(503);
    expect((await fetch(gateway.url.replace("/mcp", "/health"))).status).toBe(200);

    await container.start();
    const back = await eventually(() => post(gateway.url, list(2), headers), {
      timeoutMs: 30_000,
      intervalMs: 500,
      until: (answer) => answer.status === 200,
    });
    expect(back.body.id).toBe(2);
  });
});

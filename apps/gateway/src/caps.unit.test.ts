import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { eventually, type LocalRedis, startLocalRedis } from "@mcp-broker/test-support";
import { type FakeAuthServer, startFakeAuth } from "./testing/auth-server.js";
import { InProcessDriver } from "./testing/in-process-driver.js";
import { type InProcessGateway, startInProcessGateway } from "./testing/in-process-gateway.js";
import { key } from "./testing/keys.js";
import { INITIALIZE, list, post } from "./testing/rpc.js";
import { startTinyMcpServer, type TinyMcpServer } from "./testing/tiny-mcp-server.js";

const run = promisify(execFile);

/** Issue 14's caps, on real Redis and real HTTP servers, in process (no container engine). */
describe("isolation and abuse caps", () => {
  let redis: LocalRedis;
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    redis = await startLocalRedis();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  async function setup(env: Record<string, string> = {}) {
    const driver = new InProcessDriver<TinyMcpServer>(() => startTinyMcpServer());
    const gateway: InProcessGateway = await startInProcessGateway(redis, driver, {
      REDIS_PREFIX: `${redis.prefix}${Math.random().toString(36).slice(2, 8)}:`,
      ...env,
    });
    cleanups.push(() => gateway.close());
    return { driver, gateway };
  }
  async function fakeAuth(accept: (key: string) => boolean, delayMs = 0): Promise<FakeAuthServer> {
    const auth = await startFakeAuth(accept, delayMs);
    cleanups.push(() => auth.close());
    return auth;
  }
  const as = (apiKey: string) => ({ "X-Outline-API-Key": apiKey });

  it("with verification on, 50 random keys start no server", async () => {
    const auth = await fakeAuth(() => false);
    const { driver, gateway } = await setup({ AUTH_VERIFY: "on", AUTH_VERIFY_URL: auth.url });
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => post(gateway.url, list(i), as(key("r")))));
    // The first VERIFY_PER_IP_PER_MINUTE (30) are asked upstream and rejected; the rest are refused before.
    expect(answers.map((a) => a.status).sort()).toEqual([...Array(30).fill(401), ...Array(20).fill(429)]);
    expect(auth.calls).toBe(30);
    expect(driver.started.size).toBe(0);
  });

  it("merges concurrent verifications of one new key into one upstream call", async () => {
    const auth = await fakeAuth(() => true, 200);
    const { gateway } = await setup({ AUTH_VERIFY: "on", AUTH_VERIFY_URL: auth.url });
    const apiKey = key("single-flight");
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => post(gateway.url, list(i), as(apiKey))));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(auth.calls).toBe(1);
  });

  it("with verification off and MAX_BACKENDS=5, 50 random keys start exactly 5; the rest get 503 + Retry-After", async () => {
    const { driver, gateway } = await setup({ MAX_BACKENDS: "5" });
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => post(gateway.url, list(i), as(key("m")))));
    const full = answers.filter((a) => a.status === 503);
    expect(answers.filter((a) => a.status === 200)).toHaveLength(5);
    expect(full).toHaveLength(45);
    expect(full[0]?.headers.get("retry-after")).toBe("30");
    expect(full[0]?.body).toEqual({
      jsonrpc: "2.0",
      error: { code: -32003, message: "Every MCP server slot is in use; retry shortly" },
      id: null,
    });
    expect(driver.started.size).toBe(5);
  });

  it("limits new-key starts per client IP per minute", async () => {
    const { driver, gateway } = await setup({ NEW_KEY_STARTS_PER_IP_PER_MINUTE: "3" });
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await post(gateway.url, list(i), as(key("ip"))));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 429, 429]);
    expect(answers[3]?.body.error.code).toBe(-32005);
    expect(driver.started.size).toBe(3);
  });

  it("refuses 1 MiB of initialize params with 413, and Redis grows by less than 10 KiB", async () => {
    const { driver, gateway } = await setup();
    const before = (await gateway.store.memory()).used;
    const huge = { ...INITIALIZE, params: { ...INITIALIZE.params, capabilities: { x: "a".repeat(1024 * 1024) } } };
    const answer = await post(gateway.url, huge, as(key("huge")));
    expect(answer.status).toBe(413);
    expect(answer.body.error).toEqual({ code: -32600, message: "initialize params larger than 8192 bytes" });
    expect((await gateway.store.memory()).used - before).toBeLessThan(10 * 1024);
    expect(driver.started.size).toBe(0);
  });

  it("refuses a 1,000-message batch with 400, and charges each message of a batch against the rate limit", async () => {
    const { gateway } = await setup({ RATE_LIMIT_PER_MINUTE: "40" });
    const apiKey = key("batch");
    const big = await post(
      gateway.url,
      Array.from({ length: 1000 }, (_, i) => list(i)),
      as(apiKey),
    );
    expect(big.status).toBe(400);
    expect(big.body.error).toEqual({ code: -32600, message: "Batch larger than 32 messages" });
    const batch = Array.from({ length: 30 }, (_, i) => list(i));
    expect((await post(gateway.url, batch, as(apiKey))).status).toBeLessThan(300); // 1 + 1 + 29 of 40
    expect((await post(gateway.url, batch, as(apiKey))).status).toBe(429);
  });

  it("answers the 21st GET stream of one user 429", async () => {
    const { gateway } = await setup();
    const apiKey = key("streams");
    const init = await post(gateway.url, INITIALIZE, as(apiKey));
    const headers = { ...as(apiKey), "Mcp-Session-Id": init.headers.get("mcp-session-id") as string };
    const stop = new AbortController();
    cleanups.push(async () => stop.abort());
    const get = () => fetch(gateway.url, { headers: { ...headers, Accept: "text/event-stream" }, signal: stop.signal });
    const open = await Promise.all(Array.from({ length: 20 }, get));
    expect(open.map((r) => r.status)).toEqual(Array(20).fill(200));
    const refused = await get();
    expect(refused.status).toBe(429);
    expect((await refused.json()).error).toEqual({
      code: -32005,
      message: "Too many open streams for this API key (limit 20)",
    });
    await open[0]?.body?.cancel();
    // The gateway sees the close a moment later (longer on a busy machine): refused until then.
    await eventually(async () => (await get()).status, { timeoutMs: 10_000, until: (status) => status === 200 });
  });

  it("refuses a browser Origin not in ALLOWED_ORIGINS with 403; no Origin passes", async () => {
    const { gateway } = await setup();
    const apiKey = key("origin");
    const evil = await post(gateway.url, list(1), { ...as(apiKey), Origin: "https://evil.example" });
    expect(evil.status).toBe(403);
    expect(evil.body.error).toEqual({ code: -32600, message: "Origin https://evil.example is not allowed" });
    expect((await post(gateway.url, list(1), as(apiKey))).status).toBe(200);
  });

  it("restores ids for a gzip-capable client on the pooled path (the server is asked for identity)", async () => {
    const { driver, gateway } = await setup();
    const apiKey = key("gzip");
    expect((await post(gateway.url, list(1), as(apiKey))).status).toBe(200);
    const server = driver.serversOf(gateway.userOf(apiKey))[0] as TinyMcpServer;
    // A server that compresses whenever the request allows it.
    server.takeover = ({ message, headers }, response) => {
      const body = JSON.stringify({ jsonrpc: "2.0", id: message.id, result: { ok: true } });
      const gzip = String(headers["accept-encoding"] ?? "").includes("gzip");
      response.writeHead(200, { "content-type": "application/json", ...(gzip ? { "content-encoding": "gzip" } : {}) });
      response.end(gzip ? gzipSync(body) : body);
      return true;
    };
    const answer = await post(gateway.url, list("client-id-7"), { ...as(apiKey), "Accept-Encoding": "gzip, br" });
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ jsonrpc: "2.0", id: "client-id-7", result: { ok: true } });
  });

  it("serves curl -H 'Expect: 100-continue'", async () => {
    const { gateway } = await setup();
    const { stdout } = await run("curl", [
      "-sS",
      ...["-H", "Expect: 100-continue", "-H", `X-Outline-API-Key: ${key("expect")}`],
      ...["-H", "Content-Type: application/json", "-H", "Accept: application/json, text/event-stream"],
      ...["--data", JSON.stringify(list(5)), "-w", "\n%{http_code}", gateway.url],
    ]);
    const [body, status] = stdout.split("\n");
    expect(status).toBe("200");
    expect(JSON.parse(body as string)).toMatchObject({ jsonrpc: "2.0", id: 5 });
  });

  it("releases a user's oldest session beyond MAX_SESSIONS_PER_USER", async () => {
    const { gateway } = await setup({ MAX_SESSIONS_PER_USER: "2" });
    const apiKey = key("sessions");
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await post(gateway.url, INITIALIZE, as(apiKey))).headers.get("mcp-session-id") as string);
    }
    const nonce = (id: string) => id.split(".")[2] as string;
    const stored = await Promise.all(ids.map((id) => gateway.store.getSession(gateway.userOf(apiKey), nonce(id))));
    expect(stored.map((session) => session !== null)).toEqual([false, true, true]);
  });

  it("answers 502 when a server's answer to be rewritten exceeds MAX_UPSTREAM_BODY_BYTES", async () => {
    const { driver, gateway } = await setup({ MAX_UPSTREAM_BODY_BYTES: "4096" });
    const apiKey = key("big-answer");
    expect((await post(gateway.url, list(1), as(apiKey))).status).toBe(200);
    const server = driver.serversOf(gateway.userOf(apiKey))[0] as TinyMcpServer;
    server.takeover = ({ message }, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ jsonrpc: "2.0", id: message.id, result: { text: "x".repeat(10_000) } }));
      return true;
    };
    const answer = await post(gateway.url, list(2), as(apiKey));
    expect(answer.status).toBe(502);
    expect(answer.body.error).toEqual({ code: -32000, message: "Your MCP server's answer is larger than 4096 bytes" });
  });

  it("/ready names the dependency that is down, not its error; /metrics shows Redis memory", async () => {
    const { gateway } = await setup();
    const metrics = await (await fetch(gateway.url.replace("/mcp", "/metrics"))).text();
    expect(metrics).toMatch(/^mcpb_redis_used_memory_bytes \d+$/m);
    expect(metrics).toMatch(/^mcpb_redis_maxmemory_bytes \d+$/m);
    const down = await setup({ REDIS_URL: "redis://127.0.0.1:1", REDIS_COMMAND_TIMEOUT_MS: "300" });
    const ready = await fetch(down.gateway.url.replace("/mcp", "/ready"));
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ ok: false, redis: "down", backend: "ok", driver: "process" });
  });
});

import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { eventually, freePort, INITIALIZE, images, MCP_POST_HEADERS, parseRpcBody } from "@mcp-broker/test-support";
import { removeLabelled, requireDocker, startRedis, type TestRedis } from "@mcp-broker/test-support/docker";

const main = fileURLToPath(new URL("../../../apps/gateway/dist/main.js", import.meta.url));

describe("gateway process", () => {
  let redis: TestRedis;
  const deployment = `s${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    await requireDocker(images.stub);
    redis = await startRedis();
  });
  afterAll(async () => {
    await removeLabelled(`mcp-broker.deployment=${deployment}`);
    await redis?.stop();
  });

  it("exits 2 naming every bad variable", async () => {
    const child = spawn(process.execPath, [main], { env: { PATH: process.env.PATH, PORT: "x" }, stdio: "pipe" });
    let output = "";
    child.stdout.on("data", (chunk) => {
      output += chunk;
    });
    const [code] = await once(child, "exit");
    expect(code).toBe(2);
    expect(output).toContain("KEY_HASH_SECRET");
    expect(output).toContain("PORT");
  });

  /** The built gateway as a process on a free port, with what it needs; resolves once it answers. */
  const startGatewayProcess = async (env: Record<string, string>) => {
    const port = await freePort();
    const child = spawn(process.execPath, [main], {
      env: {
        PATH: process.env.PATH,
        PORT: String(port),
        HOST: "127.0.0.1",
        REDIS_URL: redis.url,
        REDIS_PREFIX: redis.prefix,
        KEY_HASH_SECRET: "shutdown-secret-0123456789",
        AUTH_VERIFY: "off",
        BACKEND_IMAGE: images.stub,
        BACKEND_PULL: "false",
        DEPLOYMENT_NAME: deployment,
        LOG_LEVEL: "warn",
        ...env,
      },
      stdio: "ignore",
    });
    const url = `http://127.0.0.1:${port}/mcp`;
    await eventually(() => fetch(url.replace("/mcp", "/health")).then((r) => r.ok || Promise.reject(r.status)));
    return { child, url };
  };

  it("on SIGTERM stops accepting, finishes the in-flight tool call, and exits 0", async () => {
    // No drain: the stop itself is what this test is about.
    const { child, url } = await startGatewayProcess({ DRAIN_SECONDS: "0" });
    const headers = { ...MCP_POST_HEADERS, "X-Outline-API-Key": "ol_api_shutdown_key" };
    const init = await fetch(url, { method: "POST", headers, body: JSON.stringify(INITIALIZE) });
    await init.text();
    const session = init.headers.get("mcp-session-id") as string;

    const call = fetch(url, {
      method: "POST",
      headers: { ...headers, "mcp-session-id": session },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 9,
        method: "tools/call",
        params: { name: "slow_task", arguments: { seconds: 2 } },
      }),
    });
    const response = await call;
    child.kill("SIGTERM");
    const exited = once(child, "exit");

    const answer = parseRpcBody(response.headers.get("content-type"), await response.text()) as {
      result: { content: Array<{ text: string }> };
    };
    expect(answer.result.content[0]?.text).toContain("after 2s");
    const [code] = await exited;
    expect(code).toBe(0);
    await expect(fetch(url.replace("/mcp", "/health"))).rejects.toThrow();
  });

  it("on SIGTERM drains: /ready answers 503 at once, calls still succeed with Connection: close, then exits 0", async () => {
    // Long enough for the call below to fit in even when the machine stalls for a second or two.
    const { child, url } = await startGatewayProcess({ DRAIN_SECONDS: "4" });
    const ready = url.replace("/mcp", "/ready");
    await eventually(() => fetch(ready).then((r) => r.ok || Promise.reject(r.status)), { timeoutMs: 20_000 });
    const headers = { ...MCP_POST_HEADERS, "X-Outline-API-Key": "ol_api_drain_key" };
    const echo = (text: string) =>
      fetch(url, {
        method: "POST",
        headers,
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: 1,
          method: "tools/call",
          params: { name: "echo", arguments: { text } },
        }),
      });
    // The first call starts the user's server; the drain is about calls that find it running.
    expect((await echo("warm")).status).toBe(200);

    const signalled = Date.now();
    child.kill("SIGTERM");
    const exited = once(child, "exit");
    const readyDuringDrain = await eventually(() => fetch(ready), { until: (r) => r.status === 503, timeoutMs: 1_000 });
    expect(await readyDuringDrain.json()).toMatchObject({ ok: false, draining: true });
    const during = await echo("during the drain");
    expect(during.status).toBe(200);
    expect(during.headers.get("connection")).toBe("close");
    const answer = parseRpcBody(during.headers.get("content-type"), await during.text()) as {
      result: { content: Array<{ text: string }> };
    };
    expect(answer.result.content[0]?.text).toBe("during the drain");

    const [code] = await exited;
    expect(code).toBe(0);
    expect(Date.now() - signalled).toBeGreaterThanOrEqual(4_000);
    await expect(fetch(url.replace("/mcp", "/health"))).rejects.toThrow();
  });
});

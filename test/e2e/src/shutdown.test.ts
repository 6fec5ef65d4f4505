import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import {
  eventually,
  freePort,
  INITIALIZE,
  images,
  MCP_POST_HEADERS,
  parseRpcBody,
  removeLabelled,
  requireDocker,
  startRedis,
  type TestRedis,
} from "@mcp-broker/test-support";

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

  it("on SIGTERM stops accepting, finishes the in-flight tool call, and exits 0", async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [main], {
      env: {
        PATH: process.env.PATH,
        PORT: String(port),
        HOST: "127.0.0.1",
        REDIS_URL: redis.url,
        REDIS_PREFIX: redis.prefix,
        KEY_HASH_SECRET: "shutdown-secret-0123456789",
        BACKEND_IMAGE: images.stub,
        BACKEND_PULL: "false",
        DEPLOYMENT_NAME: deployment,
        LOG_LEVEL: "warn",
      },
      stdio: "ignore",
    });
    const url = `http://127.0.0.1:${port}/mcp`;
    await eventually(() => fetch(url.replace("/mcp", "/health")).then((r) => r.ok || Promise.reject(r.status)));
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
});

import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { startStub } from "@mcp-broker/outline-stub";
import { connectClient, type LocalRedis, resultText, startLocalRedis } from "@mcp-broker/test-support";
import { InProcessDriver } from "./testing/in-process-driver.js";
import { type InProcessGateway, startInProcessGateway } from "./testing/in-process-gateway.js";
import { key } from "./testing/keys.js";
import { call, INITIALIZE, list, nonceOf, post } from "./testing/rpc.js";
import { startTinyMcpServer, type TinyMcpServer } from "./testing/tiny-mcp-server.js";

/** A raw HTTP POST, so the test can send headers fetch forbids (Connection, Keep-Alive, TE, ...). */
function rawPost(url: string, headers: Record<string, string>, body: string) {
  return new Promise<{ status: number; headers: IncomingHttpHeaders; text: string }>((resolve, reject) => {
    const req = httpRequest(url, { method: "POST", headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => {
        text += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("forwarding through an in-process gateway (real Redis, real HTTP servers)", () => {
  let redis: LocalRedis;
  let tiny: InProcessGateway;
  let tinyDriver: InProcessDriver<TinyMcpServer>;

  beforeAll(async () => {
    redis = await startLocalRedis();
    tinyDriver = new InProcessDriver(() => startTinyMcpServer());
    tiny = await startInProcessGateway(redis, tinyDriver);
  });
  afterAll(async () => {
    await tiny?.close();
    await redis?.stop();
  });

  const serverOf = (apiKey: string) => tinyDriver.serversOf(tiny.userOf(apiKey))[0] as TinyMcpServer;

  it("forwards only allowed headers, with the user's key and the upstream session id", async () => {
    const apiKey = key("headers");
    const init = await post(tiny.url, INITIALIZE, { Authorization: `Bearer ${apiKey}` });
    const session = init.headers.get("mcp-session-id") as string;
    const upstreamSession = (await tiny.store.getSession(tiny.userOf(apiKey), nonceOf(session)))?.upstreamSessionId;
    const answer = await rawPost(
      tiny.url,
      {
        Authorization: `Bearer ${apiKey}`,
        "Mcp-Session-Id": session,
        "Content-Type": "application/json",
        Accept: "application/json, text/event-stream",
        Connection: "keep-alive",
        "Keep-Alive": "timeout=9",
        "Proxy-Authorization": "Basic eA==",
        TE: "trailers",
        Cookie: "sid=1",
        "X-Forwarded-For": "10.9.8.7",
        "MCP-Protocol-Version": "2025-06-18",
        "Last-Event-ID": "e-3",
        "X-Custom": "not on the allow-list",
        "Accept-Encoding": "gzip, br",
        Expect: "100-continue",
      },
      JSON.stringify(list(1)),
    );
    expect(answer.status).toBe(200);
    const sent = serverOf(apiKey).received.at(-1)?.headers ?? {};
    expect(sent).toMatchObject({
      "x-outline-api-key": apiKey,
      "mcp-session-id": upstreamSession,
      "mcp-protocol-version": "2025-06-18",
      "last-event-id": "e-3",
      accept: "application/json, text/event-stream",
      "accept-encoding": "identity",
    });
    for (const dropped of [
      "authorization",
      "proxy-authorization",
      "keep-alive",
      "te",
      "cookie",
      "x-forwarded-for",
      "origin",
      "x-custom",
      "expect",
    ]) {
      expect(sent).not.toHaveProperty(dropped);
    }
    expect(sent.host).toBe(new URL(serverOf(apiKey).url).host);
    // Back to the client: the server's hop-by-hop headers dropped, its own headers kept.
    expect(answer.headers["x-upstream"]).toBe("tiny");
    expect(answer.headers).not.toHaveProperty("proxy-connection");
    expect(answer.headers["keep-alive"]).not.toBe("timeout=77");
    expect(answer.headers).not.toHaveProperty("mcp-session-id");
  });

  it("answers initialize with the broker's session id, never the server's", async () => {
    const apiKey = key("init");
    const init = await post(tiny.url, INITIALIZE, { "X-Outline-API-Key": apiKey });
    const session = init.headers.get("mcp-session-id") as string;
    expect(session).toBeTruthy();
    expect(session).not.toMatch(/^tiny-session-/);
    expect(init.body.result.serverInfo.name).toBe("tiny");
  });

  it("restores the client's ids in a pooled JSON answer, and keeps concurrent clients apart", async () => {
    const apiKey = key("pool");
    const headers = { "X-Outline-API-Key": apiKey };
    expect((await post(tiny.url, list(0), headers)).status).toBe(200);
    const server = serverOf(apiKey);
    const waiting: Array<() => void> = [];
    server.takeover = ({ message }, response) => {
      if (message.method !== "tools/call") return false;
      const answer = () =>
        response
          .writeHead(200, { "content-type": "application/json" })
          .end(JSON.stringify({ jsonrpc: "2.0", id: message.id, result: { text: message.params.arguments.text } }));
      waiting.push(answer);
      if (waiting.length === 2) for (const next of waiting.reverse()) next(); // answer the second first
      return true;
    };
    const [x, y] = await Promise.all(["x", "y"].map((text) => post(tiny.url, call(7, "echo", { text }), headers)));
    expect([x?.body, y?.body]).toEqual([
      { jsonrpc: "2.0", id: 7, result: { text: "x" } },
      { jsonrpc: "2.0", id: 7, result: { text: "y" } },
    ]);
    const upstreamIds = server.received.filter((r) => r.message.method === "tools/call").map((r) => r.message.id);
    expect(new Set(upstreamIds).size).toBe(2);
    server.takeover = undefined;
  });

  it("restores the client's ids in a pooled SSE answer written in awkward pieces", async () => {
    const apiKey = key("sse");
    const headers = { "X-Outline-API-Key": apiKey };
    expect((await post(tiny.url, list(0), headers)).status).toBe(200);
    const server = serverOf(apiKey);
    server.takeover = async ({ message }, response) => {
      if (message.method !== "tools/call") return false;
      const events =
        `event: message\r\ndata: ${JSON.stringify({ jsonrpc: "2.0", method: "notifications/progress", params: { progress: 1, message: "½ — 日本" } })}\r\n\r\n` +
        `id: 2\r\ndata: ${JSON.stringify({ jsonrpc: "2.0", id: message.id, result: { content: [{ type: "text", text: "done ✓" }] } })}\r\n\r\n`;
      const bytes = Buffer.from(events);
      response.writeHead(200, { "content-type": "text/event-stream" });
      // Cut inside a field name, an upstream id, a two-byte character, and between CR and LF.
      const cuts = [3, bytes.indexOf("mcpb-") + 6, bytes.indexOf("½") + 1, bytes.indexOf("\r\n\r\nid") + 1];
      let from = 0;
      for (const cut of cuts.sort((a, b) => a - b)) {
        response.write(bytes.subarray(from, cut));
        from = cut;
        await new Promise((resolve) => setImmediate(resolve));
      }
      response.end(bytes.subarray(from));
      return true;
    };
    const response = await fetch(tiny.url, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify(call("mine", "slow_task")),
    });
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    expect(response.headers.get("cache-control")).toBe("no-cache, no-transform");
    expect(response.headers.get("x-accel-buffering")).toBe("no");
    const data = (await response.text())
      .split("\n")
      .filter((line) => line.startsWith("data: "))
      .map((line) => JSON.parse(line.slice(6)));
    expect(data).toEqual([
      { jsonrpc: "2.0", method: "notifications/progress", params: { progress: 1, message: "½ — 日本" } },
      { jsonrpc: "2.0", id: "mine", result: { content: [{ type: "text", text: "done ✓" }] } },
    ]);
    server.takeover = undefined;
  });

  it("answers each request-level error from the one table", async () => {
    const headers = { "X-Outline-API-Key": key("errors") };
    const rpc = (body: unknown) => (body as { error: { code: number } }).error.code;
    const missing = await post(tiny.url, list());
    expect([missing.status, rpc(missing.body), missing.headers.get("www-authenticate")]).toEqual([
      401,
      -32004,
      'Bearer realm="mcp-session-broker"',
    ]);
    const notJson = await post(tiny.url, "{nope", headers);
    expect([notJson.status, rpc(notJson.body)]).toEqual([400, -32700]);
    const notRpc = await post(tiny.url, { hello: 1 }, headers);
    expect([notRpc.status, rpc(notRpc.body)]).toEqual([400, -32600]);
    const notAlone = await post(tiny.url, [INITIALIZE, list(1)], headers);
    expect([notAlone.status, notAlone.body.error.message]).toEqual([
      400,
      "initialize must be the only message in its request",
    ]);
    const typed = await post(tiny.url, JSON.stringify(list()), { ...headers, "content-type": "text/plain" });
    expect(typed.status).toBe(415);
    const unknown = await post(tiny.url, list(), { ...headers, "Mcp-Session-Id": "no-such-session" });
    expect([unknown.status, rpc(unknown.body)]).toEqual([404, -32001]);
    const put = await fetch(tiny.url, { method: "PUT", headers });
    expect([put.status, put.headers.get("allow")]).toEqual([405, "GET, POST, DELETE"]);
    const deleteWithout = await fetch(tiny.url, { method: "DELETE", headers });
    expect([deleteWithout.status, (await deleteWithout.json()).error.message]).toEqual([
      400,
      "DELETE needs the Mcp-Session-Id to end",
    ]);
    const getWithout = await fetch(tiny.url, { headers });
    expect([getWithout.status, (await getWithout.json()).error.message]).toEqual([
      405,
      "No server-to-client stream without an Mcp-Session-Id",
    ]);
    const nowhere = await fetch(tiny.url.replace("/mcp", "/nope"));
    expect([nowhere.status, (await nowhere.json()).error.message]).toEqual([404, "No route for GET /nope"]);
    const oauth = await fetch(tiny.url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp"));
    expect(oauth.status).toBe(404);
  });

  it("ends a session on DELETE, upstream and in Redis", async () => {
    const apiKey = key("delete");
    const init = await post(tiny.url, INITIALIZE, { "X-Outline-API-Key": apiKey });
    const session = { "X-Outline-API-Key": apiKey, "Mcp-Session-Id": init.headers.get("mcp-session-id") as string };
    const deleted = await fetch(tiny.url, { method: "DELETE", headers: session });
    expect(deleted.status).toBe(200);
    expect(serverOf(apiKey).sessions.size).toBe(0);
    expect((await post(tiny.url, list(1), session)).status).toBe(404);
  });
});

describe("the outline stub in process, through the gateway, with the real SDK client", () => {
  let redis: LocalRedis;
  let gateway: InProcessGateway;
  const driver = new InProcessDriver(({ apiKey }) => startStub({ apiKey }));

  beforeAll(async () => {
    redis = await startLocalRedis();
    gateway = await startInProcessGateway(redis, driver);
  });
  afterAll(async () => {
    await gateway?.close();
    await redis?.stop();
  });

  it("serves tools, streams progress before the result, and survives the server forgetting its sessions", async () => {
    const apiKey = key("sdk");
    const client = await connectClient(gateway.url, { "X-Outline-API-Key": apiKey });
    try {
      expect((await client.listTools()).tools.length).toBe(8);
      const progress: number[] = [];
      const result = await client.callTool({ name: "slow_task", arguments: { seconds: 1 } }, undefined, {
        onprogress: (p) => progress.push(p.progress),
      });
      expect(progress).toEqual([1]);
      expect(resultText(result)).toContain("after 1s");

      const [stub] = driver.serversOf(gateway.userOf(apiKey));
      await stub?.closeAll(); // as a restart of the real server would
      const who = JSON.parse(resultText(await client.callTool({ name: "whoami", arguments: {} })));
      expect(who.requestKey).toBe(who.key);
      expect(await gateway.recoveries("session")).toBe(1);
    } finally {
      await client.close();
    }
  });
});

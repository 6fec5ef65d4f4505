import { connectClient, eventually, images, MCP_POST_HEADERS, resultText } from "@mcp-broker/test-support";
import { removeLabelled, requireDocker, startRedis, type TestRedis } from "@mcp-broker/test-support/docker";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { userIdFor } from "../middleware/auth.js";
import type { RunningGateway } from "../server.js";
import { key, startTestGateway } from "../testing/gateway.js";
import { call, INITIALIZE, list, post, toolJson } from "../testing/rpc.js";

describe("gateway /mcp with the real SDK client, real Redis and real containers", () => {
  let redis: TestRedis;
  let gateway: RunningGateway;
  const clients: Client[] = [];

  beforeAll(async () => {
    await requireDocker(images.stub);
    redis = await startRedis();
    gateway = await startTestGateway({ REDIS_URL: redis.url, REDIS_PREFIX: redis.prefix });
  });
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close().catch(() => {})));
    await gateway?.close();
    await removeLabelled(`mcp-broker.deployment=${gateway?.config.DEPLOYMENT_NAME}`);
    await redis?.stop();
  });

  const connect = async (apiKey: string) => {
    const client = await connectClient(gateway.url, { "X-Outline-API-Key": apiKey });
    clients.push(client);
    return client;
  };

  it("serves initialize, tools/list and every outline-stub tool to the SDK client", async () => {
    const client = await connect(key("sdk"));
    expect(client.getServerVersion()?.name).toBe("outline-stub");
    const { tools } = await client.listTools();
    expect(tools.map((tool) => tool.name).sort()).toEqual([
      "ask_sampling",
      "create_document",
      "echo",
      "notify_later",
      "read_document",
      "search_documents",
      "slow_task",
      "whoami",
    ]);
    const created = JSON.parse(
      resultText(await client.callTool({ name: "create_document", arguments: { title: "Gateway doc", text: "hi" } })),
    );
    const found = JSON.parse(
      resultText(await client.callTool({ name: "search_documents", arguments: { query: "gateway doc" } })),
    );
    expect(found).toEqual([{ id: created.id, title: "Gateway doc" }]);
    const read = JSON.parse(
      resultText(await client.callTool({ name: "read_document", arguments: { id: created.id } })),
    );
    expect(read.text).toBe("hi");
    const whoami = JSON.parse(resultText(await client.callTool({ name: "whoami", arguments: {} })));
    expect(whoami.key).toBe(whoami.requestKey);
  });

  it("streams slow_task progress to the SDK client before its result", async () => {
    const client = await connect(key("progress"));
    const events: Array<{ what: string; at: number }> = [];
    const started = Date.now();
    // Five seconds: the margin below still holds when this machine stalls for a second or two.
    const result = await client.callTool({ name: "slow_task", arguments: { seconds: 5 } }, undefined, {
      onprogress: (progress) => events.push({ what: `progress ${progress.progress}`, at: Date.now() - started }),
    });
    events.push({ what: "result", at: Date.now() - started });
    expect(resultText(result)).toContain("after 5s");
    expect(events.map((e) => e.what)).toEqual([1, 2, 3, 4, 5].map((n) => `progress ${n}`).concat("result"));
    // Not buffered: the first progress arrived about a second in, long before the result.
    expect((events[0]?.at ?? 0) + 1500).toBeLessThan(events[5]?.at ?? 0);
  });

  it("answers the curl flow with no session header at all, on the pooled session", async () => {
    const apiKey = key("curl");
    const headers = { "X-Outline-API-Key": apiKey };
    const init = await post(gateway.url, INITIALIZE, headers);
    expect(init.status).toBe(200);
    expect(init.body.result.serverInfo.name).toBe("outline-stub");
    const listed = await post(gateway.url, list(1), headers);
    expect(listed.status).toBe(200);
    expect(listed.body.id).toBe(1);
    expect(listed.body.result.tools.length).toBe(8);
    const called = await post(gateway.url, call(2, "create_document", { title: "curl", text: "x" }), headers);
    expect(called.status).toBe(200);
    expect(called.body.id).toBe(2);
    expect(toolJson(called).title).toBe("curl");
    expect(called.headers.get("mcp-session-id")).toBeNull();
  });

  it("answers tools/list as a key's very first request, initializing upstream on its behalf", async () => {
    const first = await post(gateway.url, list("first"), { Authorization: `Bearer ${key("first")}` });
    expect(first.status).toBe(200);
    expect(first.body.id).toBe("first");
    expect(first.body.result.tools.length).toBe(8);
  });

  it("gives two keys two containers, and another key's session id reads as unknown", async () => {
    const a = key("iso-a");
    const b = key("iso-b");
    const initA = await post(gateway.url, INITIALIZE, { "X-Outline-API-Key": a });
    const sessionA = initA.headers.get("mcp-session-id") as string;
    expect(sessionA).toBeTruthy();
    const whoA = toolJson(
      await post(gateway.url, call(1, "whoami"), { "X-Outline-API-Key": a, "Mcp-Session-Id": sessionA }),
    );
    const whoB = toolJson(await post(gateway.url, call(1, "whoami"), { "X-Outline-API-Key": b }));
    expect(whoA.key).not.toBe(whoB.key);
    expect(whoA.instance).not.toBe(whoB.instance);
    const routes = await Promise.all([gateway.store.getRoute(userOf(a)), gateway.store.getRoute(userOf(b))]);
    expect(routes[0]?.containerId).not.toBe(routes[1]?.containerId);

    const stolen = await post(gateway.url, list(1), { "X-Outline-API-Key": b, "Mcp-Session-Id": sessionA });
    expect(stolen.status).toBe(404);
    expect(stolen.body).toMatchObject({ jsonrpc: "2.0", error: { code: -32001 } });
  });

  it("keeps concurrent session-less clients of one key apart although they reuse JSON-RPC ids", async () => {
    const headers = { "X-Outline-API-Key": key("pool") };
    await post(gateway.url, list(0), headers); // open the pool and the container first
    for (let round = 0; round < 50; round++) {
      const [x, y] = await Promise.all(
        // Both in flight on the server at once (echo waits 30 ms), with the same id.
        ["x", "y"].map((client) =>
          post(gateway.url, call(7, "echo", { text: `${client}-${round}`, delay_ms: 30 }), headers),
        ),
      );
      expect(x?.body.id).toBe(7);
      expect(y?.body.id).toBe(7);
      expect(x?.body.result.content[0].text).toBe(`x-${round}`);
      expect(y?.body.result.content[0].text).toBe(`y-${round}`);
    }
  });

  it("tells the server to cancel a tool call whose client disconnected", async () => {
    const headers = { "X-Outline-API-Key": key("cancel") };
    for (const pooled of [false, true]) {
      const session = pooled
        ? {}
        : { "Mcp-Session-Id": (await post(gateway.url, INITIALIZE, headers)).headers.get("mcp-session-id") as string };
      const before = toolJson(await post(gateway.url, call(1, "whoami"), { ...headers, ...session })).cancelled;
      const aborter = new AbortController();
      const slowCall = call(2, "slow_task", { seconds: 30 });
      const response = await fetch(gateway.url, {
        method: "POST",
        headers: { ...MCP_POST_HEADERS, ...headers, ...session },
        body: JSON.stringify({ ...slowCall, params: { ...slowCall.params, _meta: { progressToken: 1 } } }),
        signal: aborter.signal,
      });
      // Disconnect once the server is surely working on it: its first progress came through.
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      const decoder = new TextDecoder();
      try {
        for (let seen = ""; !seen.includes("notifications/progress"); ) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`the call ended before its first progress: ${seen}`);
          seen += decoder.decode(value, { stream: true });
        }
      } finally {
        aborter.abort();
      }
      await expect(reader.read()).rejects.toThrow();
      await eventually(
        async () => toolJson(await post(gateway.url, call(3, "whoami"), { ...headers, ...session })).cancelled,
        {
          until: (count) => count === before + 1,
        },
      );
    }
  });

  it("ends a session on DELETE, upstream and in Redis", async () => {
    const headers = { "X-Outline-API-Key": key("delete") };
    const init = await post(gateway.url, INITIALIZE, headers);
    const session = init.headers.get("mcp-session-id") as string;
    const deleted = await fetch(gateway.url, { method: "DELETE", headers: { ...headers, "Mcp-Session-Id": session } });
    expect(deleted.status).toBe(200);
    const after = await post(gateway.url, list(1), { ...headers, "Mcp-Session-Id": session });
    expect(after.status).toBe(404);
  });

  const userOf = (apiKey: string) => userIdFor(gateway.config.KEY_HASH_SECRET, apiKey);
});

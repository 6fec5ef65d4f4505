import {
  connectClient,
  eventually,
  INITIALIZE,
  MCP_POST_HEADERS,
  parseRpcBody,
  resultText,
} from "@mcp-broker/test-support";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CreateMessageRequestSchema, LoggingMessageNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { type RunningStub, startStub } from "./server.js";
import { fingerprint } from "./tools.js";

const KEY = "ol_api_stub_test_key_0001";

describe("outline-stub through the real MCP SDK client", () => {
  let stub: RunningStub;
  let client: Client;

  beforeAll(async () => {
    stub = await startStub({ apiKey: KEY });
    client = await connectClient(stub.url);
  });
  afterAll(async () => {
    await client.close();
    await stub.close();
  });

  it("initializes and lists the Outline tools", async () => {
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
  });

  it("sends notifications on the standalone stream after notify_later returned", async () => {
    const received: unknown[] = [];
    client.setNotificationHandler(LoggingMessageNotificationSchema, (notification) => {
      received.push(notification.params.data);
    });
    const result = await client.callTool({
      name: "notify_later",
      arguments: { count: 3, interval_ms: 100, series: "s" },
    });
    expect(resultText(result)).toBe("scheduled 3 notifications");
    await eventually(() => received.length, { until: (count) => count === 3 });
    expect(received).toEqual([1, 2, 3].map((seq) => ({ series: "s", seq })));
  });

  it("asks the client for sampling on the standalone stream and answers with its reply", async () => {
    const sampling = new Client({ name: "sampler", version: "1" }, { capabilities: { sampling: {} } });
    sampling.setRequestHandler(CreateMessageRequestSchema, async () => ({
      role: "assistant",
      model: "test",
      content: { type: "text", text: "sampled reply" },
    }));
    // The SDK client opens its GET stream after `initialized`, without waiting: wait for its answer.
    let streamOpened: () => void = () => {};
    const standalone = new Promise<void>((resolve) => (streamOpened = resolve));
    const transport = new StreamableHTTPClientTransport(new URL(stub.url), {
      fetch: async (url, init) => {
        const response = await fetch(url, init);
        if (init?.method === "GET" && response.ok) streamOpened();
        return response;
      },
    });
    await sampling.connect(transport);
    try {
      await standalone;
      const result = await sampling.callTool({ name: "ask_sampling", arguments: { prompt: "hi" } });
      expect(JSON.parse(resultText(result))).toMatchObject({ sampled: "sampled reply" });
    } finally {
      await sampling.close();
    }
  });

  it("creates, searches and reads documents", async () => {
    const created = JSON.parse(
      resultText(
        await client.callTool({ name: "create_document", arguments: { title: "Runbook", text: "restart it" } }),
      ),
    );
    const found = JSON.parse(
      resultText(await client.callTool({ name: "search_documents", arguments: { query: "runbook" } })),
    );
    expect(found).toEqual([{ id: created.id, title: "Runbook" }]);
    const read = JSON.parse(
      resultText(await client.callTool({ name: "read_document", arguments: { id: created.id } })),
    );
    expect(read.text).toBe("restart it");
    const missing = await client.callTool({ name: "read_document", arguments: { id: "nope" } });
    expect(missing.isError).toBe(true);
  });

  it("whoami returns a fingerprint of the key, never the key", async () => {
    const text = resultText(await client.callTool({ name: "whoami", arguments: {} }));
    expect(text).not.toContain(KEY);
    expect(JSON.parse(text)).toMatchObject({ key: fingerprint(KEY), requestKey: null });
  });

  it("annotates the tools that change nothing as read-only, and create_document not", async () => {
    const { tools } = await client.listTools();
    const readOnly = tools.filter((tool) => tool.annotations?.readOnlyHint === true).map((tool) => tool.name);
    expect(readOnly.sort()).toEqual(["echo", "read_document", "search_documents", "slow_task", "whoami"]);
  });

  it("reports the MCP session every tool ran in", async () => {
    const session = (client.transport as { sessionId?: string }).sessionId;
    expect(session).toBeTruthy();
    const who = await client.callTool({ name: "whoami", arguments: {} });
    expect(JSON.parse(resultText(who)).session).toBe(session);
    const echoed = await client.callTool({ name: "echo", arguments: { text: "hi" } });
    expect(echoed._meta).toEqual({ sessionId: session });
  });

  it("create_document waits delay_ms before creating", async () => {
    const started = Date.now();
    const created = await client.callTool({
      name: "create_document",
      arguments: { title: "Later", text: "x", delay_ms: 300 },
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(JSON.parse(resultText(created)).title).toBe("Later");
  });

  it("slow_task sends a progress notification each second, before its result", async () => {
    const events: string[] = [];
    const result = client
      .callTool({ name: "slow_task", arguments: { seconds: 2 } }, undefined, {
        onprogress: (progress) => events.push(`progress ${progress.progress}/${progress.total}`),
      })
      .then((value) => {
        events.push("result");
        return value;
      });
    expect(resultText(await result)).toContain("after 2s");
    expect(events).toEqual(["progress 1/2", "progress 2/2", "result"]);
  });
});

describe("outline-stub session rules over raw HTTP", () => {
  let stub: RunningStub;
  beforeAll(async () => {
    stub = await startStub({ apiKey: KEY, allowedKeys: [KEY] });
  });
  afterAll(async () => {
    await stub.close();
  });

  const post = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(stub.url, { method: "POST", headers: { ...MCP_POST_HEADERS, ...headers }, body: JSON.stringify(body) });
  const toolsList = { jsonrpc: "2.0", id: 1, method: "tools/list" };

  it("answers a non-initialize request without a session id with 400", async () => {
    const response = await post(toolsList);
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { code: -32000 } });
  });

  it("answers GET without a session id with 400 and an unknown id with 404", async () => {
    expect((await fetch(stub.url, { headers: { accept: "text/event-stream" } })).status).toBe(400);
    const unknown = await post(toolsList, { "mcp-session-id": "no-such-session" });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { code: -32001, message: "Session not found" } });
  });

  it("opens a session on initialize, serves it, and ends it on DELETE", async () => {
    const init = await post(INITIALIZE);
    expect(init.status).toBe(200);
    const sessionId = init.headers.get("mcp-session-id");
    expect(sessionId).toBeTruthy();
    await init.text();
    const headers = { "mcp-session-id": sessionId as string, "mcp-protocol-version": "2025-06-18" };
    const listed = await post(toolsList, headers);
    expect(listed.status).toBe(200);
    expect(parseRpcBody(listed.headers.get("content-type"), await listed.text())).toMatchObject({ id: 1 });

    const deleted = await fetch(stub.url, { method: "DELETE", headers });
    expect(deleted.status).toBe(200);
    expect(stub.sessions.has(sessionId as string)).toBe(false);
    expect((await post(toolsList, headers)).status).toBe(404);
  });

  it("answers the fake Outline auth.info for allowed keys only", async () => {
    const info = (key: string) =>
      fetch(stub.url.replace("/mcp", "/api/auth.info"), {
        method: "POST",
        headers: { authorization: `Bearer ${key}` },
      });
    expect((await info(KEY)).status).toBe(200);
    const rejected = await info("ol_api_unknown");
    expect(rejected.status).toBe(401);
    expect(await rejected.json()).toMatchObject({ ok: false, error: "authentication_required" });
  });

  it("in demo mode accepts keys matching AUTH_ALLOWED_KEY_PATTERN, and no others", async () => {
    const demo = await startStub({ apiKey: "unused", allowedKeyPattern: /^ol_api_[A-Za-z0-9_]*demo/ });
    const info = (key: string) =>
      fetch(demo.url.replace("/mcp", "/api/auth.info"), {
        method: "POST",
        headers: { authorization: `Bearer ${key}` },
      });
    try {
      expect((await info("ol_api_demo_0123")).status).toBe(200);
      expect((await info("ol_api_compose_demo_key")).status).toBe(200);
      expect((await info("ol_api_random_0123")).status).toBe(401);
    } finally {
      await demo.close();
    }
  });
});

describe("outline-stub started without a key (a spare of the warm pool)", () => {
  let stub: RunningStub;
  beforeAll(async () => {
    stub = await startStub({ apiKey: "" });
  });
  afterAll(async () => {
    await stub.close();
  });

  it("runs each request as the key in its x-outline-api-key header, as the Outline MCP server does", async () => {
    const whoamiAs = async (key: string) => {
      const client = await connectClient(stub.url, { "x-outline-api-key": key });
      try {
        return JSON.parse(resultText(await client.callTool({ name: "whoami", arguments: {} })));
      } finally {
        await client.close();
      }
    };
    const a = await whoamiAs("ol_api_spare_key_a");
    const b = await whoamiAs("ol_api_spare_key_b");
    expect(a).toMatchObject({ key: fingerprint("ol_api_spare_key_a"), startKey: null });
    expect(b).toMatchObject({ key: fingerprint("ol_api_spare_key_b"), startKey: null });
  });
});

import type { ServerResponse } from "node:http";
import { eventually, type LocalRedis, startLocalRedis } from "@mcp-broker/test-support";
import { InProcessDriver } from "./testing/in-process-driver.js";
import { type InProcessGateway, startInProcessGateway } from "./testing/in-process-gateway.js";
import { key } from "./testing/keys.js";
import { call, INITIALIZE, list, post } from "./testing/rpc.js";
import { type ReceivedMessage, startTinyMcpServer, type TinyMcpServer } from "./testing/tiny-mcp-server.js";

const NOT_REPEATED = { code: -32603, message: "the MCP server stopped while running this call; it was not repeated" };
const TOOLS = [
  { name: "search_documents", annotations: { readOnlyHint: true } },
  { name: "upsert_document", annotations: { readOnlyHint: false, idempotentHint: true } },
  { name: "create_document", annotations: { readOnlyHint: false } },
  { name: "plain_tool" },
];

const sse = (response: ServerResponse, ...messages: unknown[]) => {
  response.writeHead(200, { "content-type": "text/event-stream" });
  for (const message of messages) response.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
};

/** Which lost calls are sent again (docs/architecture.md#recovery-and-replay), in process. */
describe("replaying a call whose connection was lost", () => {
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

  /** A session on a tiny server whose tools/list names TOOLS (as JSON, or as an event stream with `sseTools`). */
  async function setup(options: { sseTools?: boolean } = {}) {
    const driver = new InProcessDriver<TinyMcpServer>(async () => {
      const server = await startTinyMcpServer();
      server.takeover = ({ message }, response) => {
        if (message.method !== "tools/list") return false;
        const answer = { jsonrpc: "2.0", id: message.id, result: { tools: TOOLS } };
        if (options.sseTools) {
          sse(response, { jsonrpc: "2.0", method: "notifications/message", params: {} }, answer);
          response.end();
        } else {
          response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer));
        }
        return true;
      };
      return server;
    });
    const gateway = await startInProcessGateway(redis, driver);
    running.push(gateway);
    const apiKey = key("replay");
    const user = gateway.userOf(apiKey);
    const init = await post(gateway.url, INITIALIZE, { "X-Outline-API-Key": apiKey });
    const session = { "X-Outline-API-Key": apiKey, "Mcp-Session-Id": init.headers.get("mcp-session-id") as string };
    expect((await post(gateway.url, list(1), session)).status).toBe(200);
    const servers = () => driver.serversOf(user);
    const first = servers()[0] as TinyMcpServer;
    const firstRoute = (await gateway.store.getRoute(user))?.containerId as string;
    /** The first server takes tools/calls over: `act` answers part (or nothing), then the server dies. */
    const dieDuring = (act: (received: ReceivedMessage, response: ServerResponse) => void) => {
      const listing = first.takeover;
      first.takeover = (received, response) => {
        if (received.message.method !== "tools/call" && !Array.isArray(received.message)) {
          return listing?.(received, response) ?? false;
        }
        act(received, response);
        driver.declareDead(firstRoute);
        setImmediate(() => response.socket?.destroy());
        return true;
      };
    };
    const calls = (server: TinyMcpServer | undefined) =>
      server?.received.filter((r) => r.message.method === "tools/call" || Array.isArray(r.message)) ?? [];
    return { gateway, user, session, servers, dieDuring, calls };
  }

  it.each([false, true])(
    "records which tools are safe to repeat from a tools/list answer (SSE: %s)",
    async (sseTools) => {
      const { gateway, user } = await setup({ sseTools });
      const names = TOOLS.map((tool) => tool.name);
      await eventually(() => gateway.store.safeTools(user, names), {
        until: (safe) => safe.size === 2,
      });
      expect(await gateway.store.safeTools(user, names)).toEqual(new Set(["search_documents", "upsert_document"]));
    },
  );

  it("repeats a read-only tool's call lost with its server, on a new server", async () => {
    const { gateway, session, servers, dieDuring, calls } = await setup();
    await eventually(
      () => gateway.store.safeTools(gateway.userOf(session["X-Outline-API-Key"]), ["search_documents"]),
      {
        until: (safe) => safe.size === 1,
      },
    );
    dieDuring(() => {});
    const answer = await post(gateway.url, call(5, "search_documents", { query: "x" }), session);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ id: 5, result: { method: "tools/call" } });
    expect(calls(servers()[1])).toHaveLength(2); // 404 on the new server, revived, sent again
    expect(await gateway.replaysRefused()).toBe(0);
  });

  it("answers every request of a batch with the error when one of them is not safe to repeat", async () => {
    const { gateway, session, servers, dieDuring, calls } = await setup();
    dieDuring(() => {});
    const batch = [call(6, "search_documents"), call(7, "create_document"), list(8)];
    const answer = await post(gateway.url, batch, session);
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual([6, 7, 8].map((id) => ({ jsonrpc: "2.0", id, error: NOT_REPEATED })));
    expect(servers()).toHaveLength(2); // re-created before answering
    expect(calls(servers()[1])).toHaveLength(0);
    // The next call works, on the new server.
    expect((await post(gateway.url, list(9), session)).body).toMatchObject({ id: 9, result: {} });
  });

  it("ends a broken event stream with the error for its call when it is not safe to repeat", async () => {
    const { gateway, session, servers, dieDuring, calls } = await setup();
    dieDuring((_received, response) =>
      sse(response, { jsonrpc: "2.0", method: "notifications/progress", params: { progress: 1 } }),
    );
    const answer = await post(gateway.url, call(10, "create_document", { title: "t" }), session);
    expect(answer.status).toBe(200);
    expect(answer.headers.get("content-type")).toBe("text/event-stream");
    expect(answer.body).toEqual({ jsonrpc: "2.0", id: 10, error: NOT_REPEATED });
    expect(servers()).toHaveLength(2);
    expect(calls(servers()[1])).toHaveLength(0);
    expect(await gateway.replaysRefused()).toBe(1);
  });

  it("continues a broken event stream with the repeated call's answer when it is safe to repeat", async () => {
    const { gateway, session, servers, dieDuring, calls } = await setup();
    await eventually(() => gateway.store.safeTools(gateway.userOf(session["X-Outline-API-Key"]), ["upsert_document"]), {
      until: (safe) => safe.size === 1,
    });
    dieDuring((_received, response) =>
      sse(response, { jsonrpc: "2.0", method: "notifications/progress", params: { progress: 1 } }),
    );
    const response = await fetch(gateway.url, {
      method: "POST",
      headers: { ...session, "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify(call(11, "upsert_document")),
    });
    const events = (await response.text())
      .split("\n")
      .filter((line) => line.startsWith("data: "))
      .map((line) => JSON.parse(line.slice(6)));
    expect(events).toEqual([
      { jsonrpc: "2.0", method: "notifications/progress", params: { progress: 1 } },
      { jsonrpc: "2.0", id: 11, result: { server: "tiny", method: "tools/call" } },
    ]);
    expect(calls(servers()[1])).toHaveLength(2);
  });

  it("sends a request that is safe to repeat once more on a server that still runs", async () => {
    const { gateway, session, servers } = await setup();
    const server = servers()[0] as TinyMcpServer;
    const listing = server.takeover;
    let dropped = 0;
    server.takeover = (received, response) => {
      if (received.message.method !== "ping" || dropped++ > 0) return listing?.(received, response) ?? false;
      response.socket?.destroy(); // the connection breaks; the server lives on
      return true;
    };
    const answer = await post(gateway.url, { jsonrpc: "2.0", id: 14, method: "ping" }, session);
    expect(answer.body).toMatchObject({ id: 14, result: {} });
    expect(server.received.filter((r) => r.message.method === "ping")).toHaveLength(2);
    expect(servers()).toHaveLength(1);
    expect(gateway.logs).toContainEqual(
      expect.objectContaining({ msg: "connection to the MCP server lost; sending again (safe to repeat)" }),
    );
  });

  it("does not repeat what part of a batch already answered, and answers the rest with the error", async () => {
    const { gateway, session, dieDuring } = await setup();
    dieDuring(({ message }, response) => sse(response, { jsonrpc: "2.0", id: message[0].id, result: { first: true } }));
    const response = await fetch(gateway.url, {
      method: "POST",
      headers: { ...session, "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify([list(12), list(13)]),
    });
    const events = (await response.text())
      .split("\n")
      .filter((line) => line.startsWith("data: "))
      .map((line) => JSON.parse(line.slice(6)));
    expect(events).toEqual([
      { jsonrpc: "2.0", id: 12, result: { first: true } },
      { jsonrpc: "2.0", id: 13, error: NOT_REPEATED },
    ]);
  });
});

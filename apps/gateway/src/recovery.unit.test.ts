import { eventually, type LocalRedis, startLocalRedis } from "@mcp-broker/test-support";
import { InProcessDriver } from "./testing/in-process-driver.js";
import { type InProcessGateway, startInProcessGateway } from "./testing/in-process-gateway.js";
import { key } from "./testing/keys.js";
import { call, INITIALIZE, list, nonceOf, post } from "./testing/rpc.js";
import { startTinyMcpServer, type TinyMcpServer } from "./testing/tiny-mcp-server.js";

/** Recovery rules (docs/architecture.md#recovery-and-replay) on real Redis and real HTTP servers, in process. */
describe("recovery when the user's server or its session vanishes", () => {
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

  /** A gateway whose driver starts tiny servers; `plan.next` replaces how the next one starts. */
  async function setup(env: Record<string, string> = {}) {
    const plan: { next?: (() => Promise<TinyMcpServer>) | undefined } = {};
    const driver = new InProcessDriver<TinyMcpServer>(async () => {
      const next = plan.next;
      plan.next = undefined;
      return next ? next() : startTinyMcpServer();
    });
    const gateway = await startInProcessGateway(redis, driver, env);
    running.push(gateway);
    const apiKey = key("recovery");
    const headers = { "X-Outline-API-Key": apiKey };
    const user = gateway.userOf(apiKey);
    const servers = () => driver.serversOf(user);
    const route = async () => (await gateway.store.getRoute(user))?.containerId as string;
    const initialize = async () => {
      const init = await post(gateway.url, INITIALIZE, headers);
      expect(init.status).toBe(200);
      return { ...headers, "Mcp-Session-Id": init.headers.get("mcp-session-id") as string };
    };
    const methods = (server: TinyMcpServer | undefined) => server?.received.map((r) => r.message.method);
    return { plan, driver, gateway, headers, user, servers, route, initialize, methods };
  }

  it("re-initializes a session its server answers 404 for, and retries on the same broker session", async () => {
    const { gateway, user, servers, initialize, methods } = await setup();
    const session = await initialize();
    const before = await gateway.store.getSession(user, nonceOf(session["Mcp-Session-Id"]));
    servers()[0]?.sessions.clear(); // the server restarted in place and forgot every session

    const answer = await post(gateway.url, list(5), session);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ id: 5, result: { method: "tools/list" } });
    expect(methods(servers()[0])).toEqual([
      "initialize",
      "tools/list",
      "initialize",
      "notifications/initialized",
      "tools/list",
    ]);
    expect(servers()[0]?.received[2]?.message.params).toEqual(INITIALIZE.params); // the client's own initialize, replayed
    const after = await gateway.store.getSession(user, nonceOf(session["Mcp-Session-Id"]));
    expect(after?.upstreamSessionId).not.toBe(before?.upstreamSessionId);
    expect([await gateway.recoveries("session"), await gateway.recoveries("container")]).toEqual([1, 0]);
  });

  it('does the same for a 400 "No valid session ID" (older Python SDK, the TS SDK example server)', async () => {
    const { gateway, servers, initialize, methods } = await setup();
    const session = await initialize();
    const server = servers()[0] as TinyMcpServer;
    server.unknownSession = 400;
    server.sessions.clear();

    const answer = await post(gateway.url, call(6, "echo"), session);
    expect(answer.status).toBe(200);
    expect(answer.body.id).toBe(6);
    expect(methods(server)).toEqual([
      "initialize",
      "tools/call",
      "initialize",
      "notifications/initialized",
      "tools/call",
    ]);
    expect(await gateway.recoveries("session")).toBe(1);
  });

  it("passes on a 400 that is not about the session, without sending the request again", async () => {
    const { gateway, servers, initialize, methods } = await setup();
    const session = await initialize();
    const server = servers()[0] as TinyMcpServer;
    server.takeover = ({ message }, response) => {
      if (message.method !== "tools/call") return false;
      response.writeHead(400, { "content-type": "application/json" });
      response.end(
        JSON.stringify({ jsonrpc: "2.0", id: message.id, error: { code: -32602, message: "Invalid params" } }),
      );
      return true;
    };
    const answer = await post(gateway.url, call(7, "echo"), session);
    expect(answer.status).toBe(400);
    expect(answer.body.error.message).toBe("Invalid params");
    expect(methods(server)).toEqual(["initialize", "tools/call"]);
    expect(await gateway.recoveries("session")).toBe(0);
  });

  it("re-creates a server whose port refuses, and retries on the same broker session", async () => {
    const { gateway, driver, user, servers, route, initialize, methods } = await setup();
    const session = await initialize();
    const first = await route();
    await driver.kill(first);

    const answer = await post(gateway.url, list(8), session);
    expect(answer.status).toBe(200);
    expect(answer.body.id).toBe(8);
    expect(servers()).toHaveLength(2);
    expect(methods(servers()[1])).toEqual(["tools/list", "initialize", "notifications/initialized", "tools/list"]);
    expect(await route()).not.toBe(first);
    expect(await gateway.store.getSession(user, nonceOf(session["Mcp-Session-Id"]))).not.toBeNull();
    expect(gateway.logs).toContainEqual(
      expect.objectContaining({ failure: "refused", msg: "MCP server unreachable; re-creating it" }),
    );
    expect([await gateway.recoveries("container"), await gateway.recoveries("session")]).toEqual([1, 1]);
  });

  it("answers 502 once a re-created server refuses too, and re-creates only once", async () => {
    const { plan, gateway, driver, route, initialize } = await setup();
    const session = await initialize();
    await driver.kill(await route());
    plan.next = async () => {
      const dead = await startTinyMcpServer();
      await dead.close(); // its port refuses from the start
      return dead;
    };
    const answer = await post(gateway.url, list(9), session);
    expect(answer.status).toBe(502);
    expect(answer.body.error).toEqual({ code: -32000, message: "Your MCP server failed to answer (ECONNREFUSED)" });
    expect(await gateway.recoveries("container")).toBe(1);
  });

  /** The server reads the tools/call, then its connection breaks; `dies` also has the engine report it dead. */
  const dropToolCalls = (server: TinyMcpServer, dies?: () => void) => {
    server.takeover = ({ message }, response) => {
      if (message.method !== "tools/call") return false;
      dies?.();
      response.socket?.destroy();
      return true;
    };
  };

  it("answers 502 without sending again when the connection broke and the server still runs", async () => {
    const { gateway, servers, initialize, methods } = await setup();
    const session = await initialize();
    dropToolCalls(servers()[0] as TinyMcpServer);

    const answer = await post(gateway.url, call(10, "create_document"), session);
    expect(answer.status).toBe(502);
    expect(answer.body.error.message).toMatch(/^Your MCP server failed to answer \(UND_ERR_SOCKET\)$/);
    expect(methods(servers()[0])).toEqual(["initialize", "tools/call"]); // received once: it may have acted on it
    expect(servers()).toHaveLength(1);
    expect(await gateway.recoveries("container")).toBe(0);
  });

  it("re-creates the server but does not repeat a call that is not safe to repeat when the server is found dead", async () => {
    const { gateway, driver, servers, route, initialize, methods } = await setup();
    const session = await initialize();
    const first = await route();
    dropToolCalls(servers()[0] as TinyMcpServer, () => driver.declareDead(first));

    const answer = await post(gateway.url, call(11, "create_document"), session);
    expect(answer.status).toBe(200);
    expect(answer.body.id).toBe(11);
    expect(answer.body.error).toEqual({
      code: -32603,
      message: "the MCP server stopped while running this call; it was not repeated",
    });
    expect(methods(servers()[0])).toEqual(["initialize", "tools/call"]);
    expect(methods(servers()[1])).toEqual([]); // re-created before the answer, sent nothing
    expect(gateway.logs).toContainEqual(expect.objectContaining({ failure: "lost" }));
    expect([await gateway.recoveries("container"), await gateway.recoveries("session")]).toEqual([1, 0]);
    expect(await gateway.replaysRefused()).toBe(1);
  });

  it("opens the pooled session on a re-created server when the recorded one refuses", async () => {
    const { gateway, servers, user, headers, methods } = await setup();
    const gone = await startTinyMcpServer();
    await gone.close();
    await gateway.store.setRoute({ userId: user, containerId: "in-process-gone", endpoint: gone.url });

    const answer = await post(gateway.url, list("first"), headers);
    expect(answer.status).toBe(200);
    expect(answer.body.id).toBe("first");
    expect(methods(servers()[0])).toEqual(["initialize", "notifications/initialized", "tools/list"]);
    expect(servers()[0]?.received[0]?.message.params.clientInfo.name).toBe("mcp-session-broker (pooled)");
    expect(await gateway.store.getPooledSession(user)).not.toBeNull();
    expect(gateway.logs).toContainEqual(expect.objectContaining({ failure: "refused" }));
    expect(await gateway.recoveries("container")).toBe(1);
  });

  it("answers 504 when the server does not answer in time, and sends nothing again", async () => {
    // Not much shorter: the initialize before it has the same limit, and a busy machine stalls for a second.
    const { gateway, servers, initialize, methods } = await setup({ UPSTREAM_TIMEOUT_MS: "2000" });
    const session = await initialize();
    (servers()[0] as TinyMcpServer).takeover = ({ message }) => message.method === "tools/call"; // never answers

    const answer = await post(gateway.url, call(12, "slow_task"), session);
    expect(answer.status).toBe(504);
    expect(answer.body.error).toEqual({ code: -32000, message: "Your MCP server did not answer in time" });
    expect(methods(servers()[0])).toEqual(["initialize", "tools/call"]);
  });

  it("answers a GET 405 when the server is not running, and never starts one to listen", async () => {
    const { gateway, driver, servers, route, initialize } = await setup();
    const session = await initialize();
    const stream = await fetch(gateway.url, { headers: { ...session, accept: "text/event-stream" } });
    expect(stream.status).toBe(200);
    expect(stream.headers.get("x-accel-buffering")).toBe("no");
    await stream.body?.cancel();

    await driver.kill(await route());
    const refused = await fetch(gateway.url, { headers: { ...session, accept: "text/event-stream" } });
    expect(refused.status).toBe(405);
    expect(refused.headers.get("allow")).toBe("POST, DELETE");
    expect(await refused.json()).toMatchObject({ error: { message: /your MCP server is not running/ } });
    expect(servers()).toHaveLength(1);
  });

  it("tells the server to cancel a pooled request whose client went away, by its rewritten id", async () => {
    const { gateway, servers, headers } = await setup();
    expect((await post(gateway.url, list(0), headers)).status).toBe(200); // opens the pool
    const server = servers()[0] as TinyMcpServer;
    server.takeover = ({ message }, response) => {
      if (message.method !== "tools/call") return false;
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.write(`data: ${JSON.stringify({ jsonrpc: "2.0", method: "notifications/progress", params: {} })}\n\n`);
      return true; // and never finishes
    };
    const aborter = new AbortController();
    const response = await fetch(gateway.url, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify(call(1, "slow_task")),
      signal: aborter.signal,
    });
    await response.body?.getReader().read(); // the first event arrived: the server is at work
    aborter.abort();

    const cancelled = await eventually(() => {
      const found = server.received.find((r) => r.message.method === "notifications/cancelled");
      if (!found) throw new Error("no notifications/cancelled yet");
      return found;
    });
    const sent = server.received.find((r) => r.message.method === "tools/call");
    expect(sent?.message.id).toMatch(/^mcpb-/);
    expect(cancelled.message.params).toEqual({ requestId: sent?.message.id, reason: "client disconnected" });
    expect(cancelled.session).toBe(sent?.session);
  });
});

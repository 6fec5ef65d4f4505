import { randomUUID } from "node:crypto";
import { connectClient, eventually, images, loseRedisData, resultText } from "@mcp-broker/test-support";
import { docker, removeLabelled, requireDocker, startRedis, type TestRedis } from "@mcp-broker/test-support/docker";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { userIdFor } from "./middleware/auth.js";
import type { RunningGateway } from "./server.js";
import { mintSessionToken } from "./sessions/token.js";
import { key, startTestGateway } from "./testing/gateway.js";
import { call, INITIALIZE, list, post, toolJson } from "./testing/rpc.js";

const CURRENT = "current-session-secret-0123";
const PREVIOUS = "previous-session-secret-012";

/**
 * Sessions that cannot be lost (docs/architecture.md#sessions, #recovery-and-replay): real Redis
 * of the test's own (it is flushed), real containers of the outline-stub, the real SDK client.
 */
describe("sessions survive Redis, replicas and dead servers; calls are never repeated unsafely", () => {
  let redis: TestRedis;
  let a: RunningGateway;
  let b: RunningGateway;
  const deployment = `t${randomUUID().slice(0, 8)}`;
  const label = `mcp-broker.deployment=${deployment}`;
  const clients: Client[] = [];

  beforeAll(async () => {
    await requireDocker(images.stub, images.redis);
    redis = await startRedis({ ownContainer: true });
    const env = {
      REDIS_URL: redis.url,
      REDIS_PREFIX: redis.prefix,
      DEPLOYMENT_NAME: deployment,
      SESSION_SECRET: `${CURRENT},${PREVIOUS}`,
    };
    [a, b] = await Promise.all([startTestGateway(env), startTestGateway(env)]);
  });
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close().catch(() => {})));
    await Promise.all([a?.close(), b?.close()]);
    await removeLabelled(label);
    await redis?.stop();
  });

  const userOf = (apiKey: string) => userIdFor(a.config.KEY_HASH_SECRET, apiKey);
  const containersOf = async (apiKey: string) =>
    docker.listContainers({ all: true, filters: { label: [label, `mcp-broker.user=${userOf(apiKey)}`] } });
  const connect = async (apiKey: string, url = a.url) => {
    const client = await connectClient(url, { "X-Outline-API-Key": apiKey });
    clients.push(client);
    return client;
  };
  const sessionOf = (client: Client) => (client.transport as { sessionId?: string } | undefined)?.sessionId;
  const tool = async (client: Client, name: string, args: Record<string, unknown> = {}) =>
    JSON.parse(resultText(await client.callTool({ name, arguments: args })));
  /** POSTs answered with headers so far by gateway `a` (the stub sends an event stream's headers at once). */
  const upstreamPosts = async () =>
    (await a.metrics.upstreamDuration.get()).values.find(
      (value) => value.metricName === "mcpb_upstream_duration_seconds_count" && value.labels.method === "POST",
    )?.value ?? 0;
  const kill = async (apiKey: string) => {
    const route = await a.store.getRoute(userOf(apiKey));
    await docker.getContainer(route?.containerId as string).kill();
  };

  it("keeps a session through FLUSHALL: same id, same container, and a call in flight completes", async () => {
    const apiKey = key("flush");
    const client = await connect(apiKey);
    const before = await tool(client, "whoami");
    const sessionId = sessionOf(client);
    let progressed = 0;
    const slow = client.callTool({ name: "slow_task", arguments: { seconds: 3 } }, undefined, {
      onprogress: () => {
        progressed++;
      },
    });
    await eventually(() => progressed, { until: (count) => count >= 1 });

    await loseRedisData(redis.url); // FLUSHALL
    const after = await tool(client, "whoami");
    expect(sessionOf(client)).toBe(sessionId);
    expect(after.instance).toBe(before.instance); // the same server process: no second container
    expect(after.session).not.toBe(before.session); // on a new upstream session, unseen by the client
    expect(await containersOf(apiKey)).toHaveLength(1);
    expect(resultText(await slow)).toContain("after 3s");
    expect(await a.metrics.registry.getSingleMetricAsString("mcpb_session_revivals_total")).toMatch(
      /cause="redis-lost"} [1-9]/,
    );
  });

  it("answers 404 for tampered, foreign, retired, malformed and 10 KiB ids; the previous secret's id works", async () => {
    const apiKey = key("tokens");
    const headers = { "X-Outline-API-Key": apiKey };
    const init = await post(a.url, INITIALIZE, headers);
    const id = init.headers.get("mcp-session-id") as string;
    const foreign = (await post(a.url, INITIALIZE, { "X-Outline-API-Key": key("foreign") })).headers.get(
      "mcp-session-id",
    ) as string;
    const minted = (secret: string) => mintSessionToken(userOf(apiKey), INITIALIZE.params, { secrets: [secret] }).token;
    const refused = [
      `${id.slice(0, -3)}${id.endsWith("AAA") ? "BBB" : "AAA"}`,
      foreign,
      minted("retired-session-secret-0123"),
      "mcpb1.not-a-token",
      "A".repeat(10 * 1024),
    ];
    const answers = await Promise.all(
      refused.map((bad) => post(a.url, list(1), { ...headers, "Mcp-Session-Id": bad })),
    );
    expect(answers.map((answer) => answer.status)).toEqual(Array(refused.length).fill(404));
    expect(new Set(answers.map((answer) => JSON.stringify(answer.body))).size).toBe(1);
    expect(answers[0]?.body).toMatchObject({ error: { code: -32001 } });

    const previous = await post(a.url, list(2), { ...headers, "Mcp-Session-Id": minted(PREVIOUS) });
    expect(previous.status).toBe(200);
    expect(previous.body.result.tools.length).toBe(8);
  });

  it("ends a session on DELETE: 404 from then on, through the other replica too", async () => {
    const apiKey = key("delete");
    const init = await post(a.url, INITIALIZE, { "X-Outline-API-Key": apiKey });
    const session = { "X-Outline-API-Key": apiKey, "Mcp-Session-Id": init.headers.get("mcp-session-id") as string };
    expect((await post(b.url, list(1), session)).status).toBe(200);
    expect((await fetch(a.url, { method: "DELETE", headers: session })).status).toBe(200);
    expect((await post(b.url, list(2), session)).status).toBe(404);
    expect((await post(a.url, list(3), session)).status).toBe(404);
  });

  it("does not repeat a create_document its container died running: -32603, no document, and the next call works", async () => {
    const apiKey = key("kill-create");
    const client = await connect(apiKey);
    await client.listTools(); // the broker learns which tools are safe to repeat
    const title = `once-${randomUUID().slice(0, 8)}`;
    const sent = await upstreamPosts();
    const creating = client.callTool({ name: "create_document", arguments: { title, text: "x", delay_ms: 4000 } });
    await eventually(upstreamPosts, { until: (count) => count > sent });
    await kill(apiKey);

    await expect(creating).rejects.toMatchObject({
      code: -32603,
      message: expect.stringContaining("the MCP server stopped while running this call; it was not repeated"),
    });
    const found = await tool(client, "search_documents", { query: title });
    expect(found).toEqual([]); // the re-created server never ran it
    expect((await tool(client, "whoami")).requestKey).toBeTruthy();
    expect(await a.metrics.registry.getSingleMetricAsString("mcpb_replays_refused_total")).toMatch(/ [1-9]/);
  });

  it("repeats a read-only slow_task its container died running: the SDK client sees only success", async () => {
    const apiKey = key("kill-read");
    const client = await connect(apiKey);
    await client.listTools();
    const before = await tool(client, "whoami");
    let progressed = 0;
    const slow = client.callTool({ name: "slow_task", arguments: { seconds: 2 } }, undefined, {
      onprogress: () => {
        progressed++;
      },
    });
    await eventually(() => progressed, { until: (count) => count >= 1 });
    await kill(apiKey);

    expect(resultText(await slow)).toContain("after 2s");
    const after = await tool(client, "whoami");
    expect(after.instance).not.toBe(before.instance);
    expect(await containersOf(apiKey)).toHaveLength(1);
  });

  it("never lets a session-less client into a Claude-Code-style client's upstream session", async () => {
    const apiKey = key("mixed");
    const own = await connect(apiKey);
    const ownSession = (await tool(own, "whoami")).session;
    for (let i = 0; i < 5; i++) {
      const sessionLess = toolJson(await post(b.url, call(i, "whoami"), { "X-Outline-API-Key": apiKey }));
      expect(sessionLess.session).toBeTruthy();
      expect(sessionLess.session).not.toBe(ownSession);
      expect(sessionLess.instance).toBe((await tool(own, "whoami")).instance); // one server for the key
    }
    expect((await tool(own, "whoami")).session).toBe(ownSession);
  });
});

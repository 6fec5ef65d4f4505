import { randomUUID } from "node:crypto";
import { connectClient, eventually, images, resultText } from "@mcp-broker/test-support";
import { docker, removeLabelled, requireDocker, startRedis, type TestRedis } from "@mcp-broker/test-support/docker";
import { userIdFor } from "./middleware/auth.js";
import type { RunningGateway } from "./server.js";
import { key, startTestGateway } from "./testing/gateway.js";
import { call, INITIALIZE, list, nonceOf, post, toolJson } from "./testing/rpc.js";

describe("two gateway replicas on one Redis, and recovery when upstream state vanishes", () => {
  let redis: TestRedis;
  let a: RunningGateway;
  let b: RunningGateway;
  const deployment = `t${randomUUID().slice(0, 8)}`;
  const label = `mcp-broker.deployment=${deployment}`;

  beforeAll(async () => {
    await requireDocker(images.stub);
    redis = await startRedis();
    const env = { REDIS_URL: redis.url, REDIS_PREFIX: redis.prefix, DEPLOYMENT_NAME: deployment };
    [a, b] = await Promise.all([startTestGateway(env), startTestGateway(env)]);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await removeLabelled(label);
    await redis?.stop();
  });

  const userOf = (apiKey: string) => userIdFor(a.config.KEY_HASH_SECRET, apiKey);
  const containersOf = async (apiKey: string) =>
    docker.listContainers({ all: true, filters: { label: [label, `mcp-broker.user=${userOf(apiKey)}`] } });

  it("serves a session initialized through one replica from the other, on the same container", async () => {
    const apiKey = key("replicas");
    const init = await post(a.url, INITIALIZE, { "X-Outline-API-Key": apiKey });
    const session = init.headers.get("mcp-session-id") as string;
    const headers = { "X-Outline-API-Key": apiKey, "Mcp-Session-Id": session };
    const viaA = toolJson(await post(a.url, call(1, "whoami"), headers));
    const viaB = toolJson(await post(b.url, call(2, "whoami"), headers));
    expect(viaB.instance).toBe(viaA.instance);
    expect(await containersOf(apiKey)).toHaveLength(1);
  });

  it("answers twenty concurrent first requests of a new key across both replicas with one container", async () => {
    const apiKey = key("burst");
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => post(i % 2 ? b.url : a.url, list(i), { "X-Outline-API-Key": apiKey })),
    );
    expect(answers.map((answer) => answer.status)).toEqual(Array(20).fill(200));
    expect(answers.map((answer) => answer.body.id)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(await containersOf(apiKey)).toHaveLength(1);
  });

  it("re-creates a killed container under the same broker session, unseen by the SDK client", async () => {
    const apiKey = key("kill");
    const client = await connectClient(a.url, { "X-Outline-API-Key": apiKey });
    try {
      const before = JSON.parse(resultText(await client.callTool({ name: "whoami", arguments: {} })));
      const sessionId = (client.transport as { sessionId?: string } | undefined)?.sessionId;
      const route = await a.store.getRoute(userOf(apiKey));
      await docker.getContainer(route?.containerId as string).kill();
      await eventually(async () => (await docker.getContainer(route?.containerId as string).inspect()).State.Running, {
        until: (running) => !running,
      });

      const after = JSON.parse(resultText(await client.callTool({ name: "whoami", arguments: {} })));
      expect(after.instance).not.toBe(before.instance);
      expect(after.key).toBe(before.key);
      expect((client.transport as { sessionId?: string } | undefined)?.sessionId).toBe(sessionId);
      const metrics = await a.metrics.registry.getSingleMetricAsString("mcpb_recoveries_total");
      expect(metrics).toMatch(/kind="container"} [1-9]/);
      expect(metrics).toMatch(/kind="session"} [1-9]/);
    } finally {
      await client.close();
    }
  });

  it("re-initializes an upstream session the server ended, and remaps the broker session", async () => {
    const apiKey = key("expire");
    const init = await post(a.url, INITIALIZE, { "X-Outline-API-Key": apiKey });
    const brokerSession = init.headers.get("mcp-session-id") as string;
    const stored = await a.store.getSession(userOf(apiKey), nonceOf(brokerSession));
    const route = await a.store.getRoute(userOf(apiKey));
    // End the upstream session behind the broker's back, as a server restart or expiry would.
    const ended = await fetch(route?.endpoint as string, {
      method: "DELETE",
      headers: { "mcp-session-id": stored?.upstreamSessionId as string },
    });
    expect(ended.status).toBe(200);

    const answer = await post(b.url, call(3, "echo", { text: "still here" }), {
      "X-Outline-API-Key": apiKey,
      "Mcp-Session-Id": brokerSession,
    });
    expect(answer.status).toBe(200);
    expect(answer.body.result.content[0].text).toBe("still here");
    const remapped = await a.store.getSession(userOf(apiKey), nonceOf(brokerSession));
    expect(remapped?.upstreamSessionId).not.toBe(stored?.upstreamSessionId);
  });
});

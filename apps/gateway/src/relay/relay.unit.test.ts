import { type RunningStub, startStub } from "@mcp-broker/outline-stub";
import { eventually, type LocalRedis, openEventStream, resultText, startLocalRedis } from "@mcp-broker/test-support";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CreateMessageRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { InProcessDriver } from "../testing/in-process-driver.js";
import { type InProcessGateway, startInProcessGateway } from "../testing/in-process-gateway.js";
import { key } from "../testing/keys.js";
import { call, INITIALIZE, nonceOf, post } from "../testing/rpc.js";

const INITIALIZED = { jsonrpc: "2.0", method: "notifications/initialized" };
const seqOf = (data: string) => (JSON.parse(data) as { params: { data: { seq: number } } }).params.data.seq;

/**
 * Server-to-client messages relayed through Redis (docs/architecture.md#server-to-client-streams),
 * with real Redis, the outline stub as the server and the real SDK client, in process.
 */
describe("server-to-client relay", () => {
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

  async function setup(env: Record<string, string> = {}, replicas = 1) {
    const driver = new InProcessDriver<RunningStub>(({ apiKey }) => startStub({ apiKey }));
    const gateways: InProcessGateway[] = [];
    for (let i = 0; i < replicas; i++) gateways.push(await startInProcessGateway(redis, driver, env));
    running.push(...gateways);
    const gateway = gateways[0] as InProcessGateway;
    const apiKey = key("relay");
    const user = gateway.userOf(apiKey);
    /** A session opened as an SDK client opens it: initialize, then notifications/initialized. */
    const open = async (url = gateway.url) => {
      const init = await post(url, INITIALIZE, { "X-Outline-API-Key": apiKey });
      const headers = { "X-Outline-API-Key": apiKey, "Mcp-Session-Id": init.headers.get("mcp-session-id") as string };
      expect((await post(url, INITIALIZED, headers)).status).toBe(202);
      return { headers, nonce: nonceOf(headers["Mcp-Session-Id"]) };
    };
    const relayed = (nonce: string) => gateway.store.relays.length(user, nonce);
    const streams = async (replica: InProcessGateway, kind: "upstream" | "client") =>
      (await replica.metrics.relayStreams.get()).values.find((value) => value.labels.kind === kind)?.value ?? 0;
    return { gateways, gateway, apiKey, user, open, relayed, streams };
  }

  it("delivers a sampling request sent before the client's GET arrived, and the server gets its answer", async () => {
    const { gateway, apiKey, user, relayed } = await setup();
    // The SDK client's GET is held back until the server's request is in the relay: the race
    // the conformance suite's tools-call-sampling loses through a broker without one.
    let releaseGet: () => void = () => {};
    const getMayGo = new Promise<void>((resolve) => {
      releaseGet = resolve;
    });
    const fetchHoldingGet: typeof fetch = async (input, init) => {
      if ((init?.method ?? "GET") === "GET") await getMayGo;
      return fetch(input, init);
    };
    const client = new Client({ name: "relay-test", version: "1" }, { capabilities: { sampling: {} } });
    client.setRequestHandler(CreateMessageRequestSchema, async (request) => ({
      role: "assistant",
      model: "test",
      content: { type: "text", text: `answer to ${JSON.stringify(request.params.messages[0]?.content)}` },
    }));
    const transport = new StreamableHTTPClientTransport(new URL(gateway.url), {
      requestInit: { headers: { "X-Outline-API-Key": apiKey } },
      fetch: fetchHoldingGet,
    });
    await client.connect(transport);
    const nonce = nonceOf(transport.sessionId as string);
    const result = client.callTool({ name: "ask_sampling", arguments: { prompt: "hello" } });
    await eventually(() => relayed(nonce), { until: (length) => length === 1 });
    releaseGet();
    const text = resultText(await result);
    expect(JSON.parse(text).sampled).toContain("hello");
    expect(await gateway.store.relays.holder(user, nonce)).not.toBeNull();
    await client.close();
  });

  it("serves on replica 2 what replica 1's upstream stream relayed; Last-Event-ID resumes after it", async () => {
    const { gateways, open, relayed, streams } = await setup({}, 2);
    const [one, two] = gateways as [InProcessGateway, InProcessGateway];
    const { headers, nonce } = await open(one.url);
    expect([await streams(one, "upstream"), await streams(two, "upstream")]).toEqual([1, 0]);
    await post(one.url, call(1, "notify_later", { count: 5, interval_ms: 0 }), headers);
    await eventually(() => relayed(nonce), { until: (length) => length === 5 });

    // No Last-Event-ID: everything no GET was written yet, i.e. all five.
    const first = await openEventStream(two.url, headers);
    expect(first.status).toBe(200);
    await eventually(() => first.events.length, { until: (count) => count === 5 });
    first.close();
    expect(first.events.map((event) => seqOf(event.data))).toEqual([1, 2, 3, 4, 5]);
    // Events written to a stream whose client just left count as delivered: wait for it to go.
    await eventually(() => streams(two, "client"), { until: (count) => count === 0 });

    await post(one.url, call(2, "notify_later", { count: 2, interval_ms: 0 }), headers);
    await eventually(() => relayed(nonce), { until: (length) => length === 7 });
    // A new GET without Last-Event-ID starts after what the last GET was written.
    const next = await openEventStream(two.url, headers);
    await eventually(() => next.events.length, { until: (count) => count === 2 });
    next.close();
    expect(next.events.map((event) => seqOf(event.data))).toEqual([1, 2]);

    // Resuming after the third event of the first stream: exactly the four after it.
    const resumed = await openEventStream(two.url, { ...headers, "Last-Event-ID": first.events[2]?.id as string });
    await eventually(() => resumed.events.length, { until: (count) => count === 4 });
    await new Promise((resolve) => setTimeout(resolve, 300)); // nothing more may come
    resumed.close();
    expect(resumed.events.map((event) => event.id)).toEqual([
      first.events[3]?.id,
      first.events[4]?.id,
      next.events[0]?.id,
      next.events[1]?.id,
    ]);
  });

  /** Sends `count` notifications and reads the relay from its oldest entry once the last is in. */
  async function sendAndReadKept(env: Record<string, string>, count: number) {
    const { gateway, open, relayed } = await setup(env);
    const { headers, nonce } = await open();
    await post(gateway.url, call(1, "notify_later", { count, interval_ms: 0 }), headers);
    const readAll = async () => {
      const stream = await openEventStream(gateway.url, { ...headers, "Last-Event-ID": "0-0" });
      await eventually(() => stream.events.at(-1), { until: (event) => !!event && seqOf(event.data) === count });
      stream.close();
      return stream.events;
    };
    await readAll(); // the last one is in (a live reader may have caught trimmed ones too)
    const kept = await readAll();
    return { kept, length: await relayed(nonce) };
  }

  it("keeps at most RELAY_MAX_EVENTS events per session, the newest", async () => {
    const { kept, length } = await sendAndReadKept({ RELAY_MAX_EVENTS: "10", RELAY_MAX_BYTES: "100000" }, 25);
    expect(length).toBe(10);
    expect(kept.map((event) => seqOf(event.data))).toEqual([16, 17, 18, 19, 20, 21, 22, 23, 24, 25]);
  });

  it("keeps at most RELAY_MAX_BYTES bytes of events per session, the newest", async () => {
    const { kept, length } = await sendAndReadKept({ RELAY_MAX_EVENTS: "1000", RELAY_MAX_BYTES: "1000" }, 30);
    const bytes = kept.reduce((sum, event) => sum + Buffer.byteLength(event.data), 0);
    console.log(`relay bytes bound: ${kept.length} of 30 events kept, ${bytes} bytes (bound 1000)`);
    expect(bytes).toBeLessThanOrEqual(1000);
    expect(kept.length).toBeLessThan(30);
    expect(length).toBe(kept.length);
    expect(kept.map((event) => seqOf(event.data))).toEqual(
      Array.from({ length: kept.length }, (_, index) => 30 - kept.length + 1 + index),
    );
  });

  it("another replica takes the upstream stream over when its holder goes, and the client's GET goes on", async () => {
    const { gateways, open, streams } = await setup({ RELAY_LEASE_MS: "1000" }, 2);
    const [one, two] = gateways as [InProcessGateway, InProcessGateway];
    const { headers } = await open(one.url);
    const stream = await openEventStream(two.url, headers);
    await one.handOver(); // gives its lease up; the GET on replica 2 checks every half lease
    await eventually(() => streams(two, "upstream"), { until: (count) => count === 1 });
    await post(two.url, call(1, "notify_later", { count: 3, interval_ms: 0 }), headers);
    await eventually(() => stream.events.length, { until: (count) => count === 3 });
    stream.close();
    expect(stream.events.map((event) => seqOf(event.data))).toEqual([1, 2, 3]);
  });
});

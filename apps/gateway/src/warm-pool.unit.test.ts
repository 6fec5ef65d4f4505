import { eventually, type LocalRedis, startLocalRedis } from "@mcp-broker/test-support";
import { InProcessDriver } from "./testing/in-process-driver.js";
import { type InProcessGateway, startInProcessGateway } from "./testing/in-process-gateway.js";
import { key } from "./testing/keys.js";
import { call, post } from "./testing/rpc.js";
import { startTinyMcpServer, type TinyMcpServer } from "./testing/tiny-mcp-server.js";
import { WARM_UP_TOOL } from "./warm-pool.js";

/** The warm-up a spare gets before it is pooled (docs/architecture.md#warm-pool), on real Redis and a real HTTP server. */
describe("warm pool warm-up", () => {
  let redis: LocalRedis;
  let driver: InProcessDriver<TinyMcpServer>;
  let gateway: InProcessGateway;

  beforeAll(async () => {
    redis = await startLocalRedis();
    driver = new InProcessDriver<TinyMcpServer>(() => startTinyMcpServer());
    gateway = await startInProcessGateway(redis, driver, { WARM_POOL_SIZE: "1" });
    gateway.spares.start();
  });
  afterAll(async () => {
    await gateway?.close();
    await redis?.stop();
  });

  it("warms a spare up without a key (initialize, tools/list, a call of a tool no server has), and its first user's call is the next message it gets", async () => {
    await eventually(async () => expect(await gateway.store.warmPool.list()).toHaveLength(1));
    const [spare] = [...driver.started.values()].map((started) => started.server);
    const received = spare?.received ?? [];
    expect(received.map((r) => r.message.method)).toEqual([
      "initialize",
      "notifications/initialized",
      "tools/list",
      "tools/call",
    ]);
    expect(received[3]?.message.params).toEqual({ name: WARM_UP_TOOL, arguments: {} });
    expect(received.filter((r) => r.headers["x-outline-api-key"] !== undefined)).toEqual([]);

    const apiKey = key("warm-up");
    const answer = await post(gateway.url, call(1, "whoami"), { "X-Outline-API-Key": apiKey });
    expect(answer.status).toBe(200);
    expect(answer.body.result).toEqual({ server: spare?.name, method: "tools/call" });
    // The warm session became the user's pooled session: no second initialize.
    expect(received.slice(4).map((r) => [r.message.method, r.session, r.headers["x-outline-api-key"]])).toEqual([
      ["tools/call", received[2]?.session, apiKey],
    ]);
  });
});

import { eventually, type LocalRedis, startLocalRedis } from "@mcp-broker/test-support";
import { InProcessDriver } from "./testing/in-process-driver.js";
import { type InProcessGateway, startInProcessGateway } from "./testing/in-process-gateway.js";
import { key } from "./testing/keys.js";
import { INITIALIZE, list, post } from "./testing/rpc.js";
import { startTinyMcpServer, type TinyMcpServer } from "./testing/tiny-mcp-server.js";

/** What the gateway leaves in Redis for the operator view (apps/reaper operator view). */
describe("what the gateway records for operators", () => {
  let redis: LocalRedis;
  let gateway: InProcessGateway;
  let driver: InProcessDriver<TinyMcpServer>;

  beforeAll(async () => {
    redis = await startLocalRedis();
    driver = new InProcessDriver<TinyMcpServer>(() => startTinyMcpServer());
    gateway = await startInProcessGateway(redis, driver);
  });
  afterAll(async () => {
    await gateway?.close();
    await redis?.stop();
  });

  it("keeps the cold start's duration in the route, and counts recoveries and revivals per minute in Redis", async () => {
    const headers = { "X-Outline-API-Key": key("operator") };
    const user = gateway.userOf(headers["X-Outline-API-Key"]);
    const init = await post(gateway.url, INITIALIZE, headers);
    const session = { ...headers, "Mcp-Session-Id": init.headers.get("mcp-session-id") as string };
    const route = await gateway.store.getRoute(user);
    expect(route?.coldStartMs).toBeGreaterThanOrEqual(0);

    driver.serversOf(user)[0]?.sessions.clear(); // the server forgot the session: revived, counted
    expect((await post(gateway.url, list(2), session)).status).toBe(200);
    // Fire-and-forget writes: they land shortly after the answer.
    const counts = await eventually(() => gateway.store.eventsSince(60), {
      timeoutMs: 5000,
      until: (events) => (events["recovery:session"] ?? 0) > 0 && (events["revival:upstream-restart"] ?? 0) > 0,
    });
    expect(counts).toEqual({ "recovery:session": 1, "revival:upstream-restart": 1 });
    expect([await gateway.recoveries("session"), await gateway.revivals("upstream-restart")]).toEqual([1, 1]);
  });
});

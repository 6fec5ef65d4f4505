import { Hono } from "hono";
import { monitoringRoutes } from "./monitoring.js";

describe("monitoringRoutes", () => {
  it("answers /health with ok and the service's own fields, and /metrics from the registry", async () => {
    // The shape of a prom-client Registry; the apps' typecheck holds the real one to it.
    const registry = { contentType: "text/plain; version=0.0.4", metrics: async () => "test_things_total 3\n" };
    const seen: string[] = [];
    const app = new Hono();
    app.use(async (c, next) => {
      seen.push(c.req.path);
      await next();
    });
    app.route("/", monitoringRoutes({ registry, health: () => ({ sessions: 2 }) }));

    const health = await app.request("/health");
    expect(await health.json()).toEqual({ ok: true, sessions: 2 });
    const metrics = await app.request("/metrics");
    expect(metrics.headers.get("content-type")).toBe(registry.contentType);
    expect(await metrics.text()).toContain("test_things_total 3");
    expect(seen).toEqual(["/health", "/metrics"]);
  });

  it("has no /metrics without a registry", async () => {
    const app = new Hono().route("/", monitoringRoutes({}));
    expect((await app.request("/metrics")).status).toBe(404);
    expect(await (await app.request("/health")).json()).toEqual({ ok: true });
  });
});

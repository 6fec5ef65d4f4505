import { Hono } from "hono";

/** What `/metrics` needs of a prom-client `Registry` (typed by shape: no prom-client import here). */
export interface MetricsRegistry {
  metrics(): Promise<string>;
  readonly contentType: string;
}

/**
 * `/health` (the process answers) and `/metrics` (Prometheus text), the same in every service.
 * Mount with `app.route("/", monitoringRoutes({ registry }))`; routes the parent registered
 * before, such as request logging, still run for these.
 */
export function monitoringRoutes(options: {
  /** Without one there is no `/metrics` route. */
  registry?: MetricsRegistry;
  /** Extra fields for the `/health` body beside `ok: true`, read on each call. */
  health?: () => Record<string, unknown>;
}): Hono {
  const routes = new Hono();
  routes.get("/health", (c) => c.json({ ok: true, ...options.health?.() }));
  const registry = options.registry;
  if (registry) {
    routes.get("/metrics", async (c) =>
      c.text(await registry.metrics(), 200, { "content-type": registry.contentType }),
    );
  }
  return routes;
}

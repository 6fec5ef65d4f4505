import { randomUUID } from "node:crypto";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import type { ContainerDriver } from "@mcp-broker/container-manager";
import { monitoringRoutes, tracingOn } from "@mcp-broker/service-runtime";
import type { SessionStore } from "@mcp-broker/session-store";
import { type Context, Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Logger } from "pino";
import type { Dispatcher } from "undici";
import { Broker } from "./broker.js";
import { BusyUsers } from "./busy-users.js";
import type { GatewayConfig } from "./config.js";
import { type GatewayEnv, requestHeader } from "./env.js";
import { errorAnswerBody, GatewayError, toGatewayError } from "./errors.js";
import { createDispatcher } from "./forward/upstream-call.js";
import { createMetrics, type Metrics } from "./metrics.js";
import { authenticate } from "./middleware/auth.js";
import { accessLog, lazyChild } from "./request-log.js";
import { mcpRoutes } from "./routes/mcp.js";
import { tracedStore, traceRequests } from "./tracing.js";
import { SpareRefill } from "./warm-pool.js";

export interface AppDeps {
  config: GatewayConfig;
  store: SessionStore;
  driver: ContainerDriver;
  logger: Logger;
  metrics?: Metrics;
  dispatcher?: Dispatcher;
  /** True from SIGTERM on: /ready answers 503 so the balancer stops sending requests. */
  draining?: () => boolean;
}

export interface GatewayApp {
  app: Hono<GatewayEnv>;
  /** The warm pool's refill: `start` it once the gateway serves, `close` it on shutdown. */
  spares: SpareRefill;
  metrics: Metrics;
  dispatcher: Dispatcher;
  /** Ends what the app holds open beyond requests: relayed server-to-client streams. */
  close(): Promise<void>;
  /** Writes the batched touches not yet written (the start of a drain). */
  flushTouches(): Promise<void>;
  /** Writes what is left and stops the broker's timers; call after the server stopped. */
  closeBroker(): Promise<void>;
}

// OAuth discovery: answering these 404 (never `{}`) makes MCP clients stop probing for OAuth
// and show the 401's message, which names the header to send (docs/architecture.md#authentication).
const OAUTH_DISCOVERY = [
  "/.well-known/oauth-authorization-server",
  "/.well-known/oauth-authorization-server/*",
  "/.well-known/oauth-protected-resource",
  "/.well-known/oauth-protected-resource/*",
  "/.well-known/openid-configuration",
  "/.well-known/openid-configuration/*",
  "/register",
];

/** Builds the gateway from its dependencies; no I/O happens until a request arrives. */
export function createApp(deps: AppDeps): GatewayApp {
  const { config, driver, logger } = deps;
  // With tracing on, every store call inside a traced request is a span (docs/architecture.md#tracing).
  const store = tracedStore(deps.store);
  const metrics = deps.metrics ?? createMetrics(store, logger);
  const reach = driver.reach?.bind(driver);
  const dispatcher =
    deps.dispatcher ?? createDispatcher(reach && ((hostname) => reach({ endpoint: `http://${hostname}/` })));
  const spares = new SpareRefill({ config, store, driver, metrics, logger });
  const instanceId = randomUUID().slice(0, 8);
  const broker = new Broker({ config, store, driver, dispatcher, metrics, spares, instanceId, logger });
  const busy = new BusyUsers(store, logger, config.RECLAIM_MIN_IDLE_SECONDS > 0);
  const app = new Hono<GatewayEnv>();
  const access = accessLog(logger);

  app.use(async (c, next) => {
    const given = requestHeader(c, "x-request-id");
    const requestId = given && /^[\w.-]{1,64}$/.test(given) ? given : randomUUID();
    c.set("requestId", requestId);
    c.set(
      "log",
      lazyChild(logger, () => ({ req: requestId })),
    );
    // On Node's response, so it also rides on answers the route writes there itself (routes/answer.ts).
    c.env.outgoing.setHeader("x-request-id", requestId);
    const started = performance.now();
    try {
      await next();
    } finally {
      const seconds = (performance.now() - started) / 1000;
      const method = c.env.incoming.method ?? "";
      const status = c.res === RESPONSE_ALREADY_SENT ? c.env.outgoing.statusCode : c.res.status;
      metrics.requests.inc({ method, status });
      metrics.requestDuration.observe({ method }, seconds);
      const url = c.env.incoming.url ?? "";
      if (url === "/mcp" || url.startsWith("/mcp?")) {
        access({ req: requestId, user: c.get("user")?.tag, method, status, ms: Math.round(seconds * 1000) });
      }
    }
  });

  app.route("/", monitoringRoutes({ registry: metrics.registry }));
  let lastReadyFailure = "";
  app.get("/ready", async (c) => {
    if (deps.draining?.()) return c.json({ ok: false, draining: true }, 503);
    const checks = await Promise.allSettled([store.ping(), driver.ping()]);
    // Which dependency is down, never its raw error (it can name hosts, ports, credentials): the log has it.
    const [redis, backend] = checks.map((check) => (check.status === "fulfilled" ? "ok" : "down"));
    const failed = checks.flatMap((check) => (check.status === "rejected" ? [(check.reason as Error).message] : []));
    // Logged when it changes, not on every balancer check (one a second per balancer).
    if (failed.join() !== lastReadyFailure) {
      lastReadyFailure = failed.join();
      if (failed.length > 0) logger.warn({ errors: failed }, "readiness check failed");
    }
    const ok = checks.every((check) => check.status === "fulfilled");
    return c.json({ ok, redis, backend, driver: driver.kind }, ok ? 200 : 503);
  });
  for (const path of OAUTH_DISCOVERY) {
    app.all(path, () => {
      throw new GatewayError("OAUTH_NOT_SUPPORTED", config.API_KEY_HEADER);
    });
  }

  if (tracingOn()) app.use("/mcp", traceRequests());
  app.use("/mcp", async (c, next) => {
    if (!["GET", "POST", "DELETE"].includes(c.req.method)) throw new GatewayError("METHOD_NOT_ALLOWED", c.req.method);
    const origin = requestHeader(c, "origin");
    // MCP transports: servers MUST validate Origin (DNS rebinding from browsers). Refused unless
    // listed; no Origin at all (CLI and desktop clients send none) passes.
    if (origin !== undefined && !config.ALLOWED_ORIGINS.includes(origin)) {
      throw new GatewayError("ORIGIN_NOT_ALLOWED", origin);
    }
    await next();
  });
  app.use("/mcp", authenticate(config, store));
  app.route("/", mcpRoutes({ config, broker, store, busy }));

  // The one place errors become answers: error-codes.ts's table gives status, JSON-RPC code, headers.
  const answer = (c: Context<GatewayEnv>, error: GatewayError) =>
    c.json(errorAnswerBody(error), error.status as ContentfulStatusCode, error.headers);
  app.notFound((c) => answer(c, new GatewayError("NO_ROUTE", `${c.req.method} ${c.req.path}`)));
  app.onError((error, c) => {
    const known = toGatewayError(error);
    metrics.errors.inc({ code: known.code });
    const log = c.get("log") ?? logger;
    if (known.status >= 500) log.error({ err: error }, known.message);
    else if (known.code === "CLIENT_CLOSED") log.info("client closed the request");
    return answer(c, known);
  });

  return {
    app,
    metrics,
    dispatcher,
    spares,
    close: () => broker.closeStreams(),
    flushTouches: () => broker.flushTouches(),
    closeBroker: () => broker.close(),
  };
}

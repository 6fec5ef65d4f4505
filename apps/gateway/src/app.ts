import { randomUUID } from "node:crypto";
import type { ContainerDriver } from "@mcp-broker/container-manager";
import type { SessionStore } from "@mcp-broker/session-store";
import { Hono } from "hono";
import type { Logger } from "pino";
import type { Dispatcher } from "undici";
import { Broker } from "./broker.js";
import type { GatewayConfig } from "./config.js";
import { type GatewayEnv, requestHeader } from "./env.js";
import { HttpError, RPC, rpcErrorBody, toHttpError } from "./errors.js";
import { createDispatcher } from "./forward.js";
import { createMetrics, type Metrics } from "./metrics.js";
import { authenticate } from "./middleware/auth.js";
import { mcpRoutes } from "./routes/mcp.js";

export interface AppDeps {
  config: GatewayConfig;
  store: SessionStore;
  driver: ContainerDriver;
  logger: Logger;
  metrics?: Metrics;
  dispatcher?: Dispatcher;
}

export interface GatewayApp {
  app: Hono<GatewayEnv>;
  metrics: Metrics;
  dispatcher: Dispatcher;
}

// OAuth discovery: answering these 404 (never `{}`) makes MCP clients stop probing for OAuth
// and show the 401's message, which names the header to send.
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
  const { config, store, driver, logger } = deps;
  const metrics = deps.metrics ?? createMetrics(store);
  const dispatcher = deps.dispatcher ?? createDispatcher();
  const broker = new Broker({ config, store, driver, dispatcher, metrics, instanceId: randomUUID().slice(0, 8) });
  const app = new Hono<GatewayEnv>();

  app.use(async (c, next) => {
    const given = requestHeader(c, "x-request-id");
    const requestId = given && /^[\w.-]{1,64}$/.test(given) ? given : randomUUID();
    c.set("requestId", requestId);
    c.set("log", logger.child({ req: requestId }));
    const started = performance.now();
    try {
      await next();
    } finally {
      const seconds = (performance.now() - started) / 1000;
      const status = c.res.status;
      metrics.requests.inc({ method: c.req.method, status });
      metrics.requestDuration.observe({ method: c.req.method }, seconds);
      c.res.headers.set("x-request-id", requestId);
      if (c.req.path === "/mcp") {
        c.get("log").info({ method: c.req.method, status, ms: Math.round(seconds * 1000) }, "request");
      }
    }
  });

  app.get("/health", (c) => c.json({ ok: true }));
  app.get("/ready", async (c) => {
    const checks = await Promise.allSettled([store.ping(), driver.ping()]);
    const [redis, backend] = checks.map((check) => (check.status === "fulfilled" ? "ok" : check.reason.message));
    const ok = checks.every((check) => check.status === "fulfilled");
    return c.json({ ok, redis, backend, driver: driver.kind }, ok ? 200 : 503);
  });
  app.get("/metrics", async (c) =>
    c.text(await metrics.registry.metrics(), 200, { "content-type": metrics.registry.contentType }),
  );
  for (const path of OAUTH_DISCOVERY) {
    app.all(path, (c) =>
      c.json(
        rpcErrorBody(
          RPC.invalidRequest,
          `This server does not use OAuth: send your API key in the ${config.API_KEY_HEADER} header`,
        ),
        404,
      ),
    );
  }

  app.use("/mcp", async (c, next) => {
    if (!["GET", "POST", "DELETE"].includes(c.req.method)) {
      throw new HttpError(405, RPC.invalidRequest, `Method ${c.req.method} not allowed on /mcp`, {
        Allow: "GET, POST, DELETE",
      });
    }
    const origin = requestHeader(c, "origin");
    // MCP transports: servers must validate Origin to stop DNS rebinding from browsers.
    if (origin && config.ALLOWED_ORIGINS.length > 0 && !config.ALLOWED_ORIGINS.includes(origin)) {
      throw new HttpError(403, RPC.invalidRequest, `Origin ${origin} is not allowed`);
    }
    await next();
  });
  app.use("/mcp", authenticate(config, store));
  app.route("/", mcpRoutes({ config, store, broker }));

  app.notFound((c) => c.json(rpcErrorBody(RPC.invalidRequest, `No route for ${c.req.method} ${c.req.path}`), 404));
  app.onError((error, c) => {
    const http = toHttpError(error);
    const log = c.get("log") ?? logger;
    if (http.status >= 500) log.error({ err: error }, http.message);
    else if (http.status === 499) log.info("client closed the request");
    return c.json(rpcErrorBody(http.rpcCode, http.message), http.status as 400, http.headers);
  });

  return { app, metrics, dispatcher };
}

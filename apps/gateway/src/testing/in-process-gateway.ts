import { once } from "node:events";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { SessionStore } from "@mcp-broker/session-store";
import type { LocalRedis } from "@mcp-broker/test-support";
import { pino } from "pino";
import { createApp, type GatewayApp } from "../app.js";
import { type GatewayConfig, loadConfig } from "../config.js";
import { redaction } from "../log-redaction.js";
import { userIdFor } from "../middleware/auth.js";
import type { InProcessDriver } from "./in-process-driver.js";

export interface InProcessGateway extends GatewayApp {
  url: string;
  config: GatewayConfig;
  store: SessionStore;
  /** Every log line the gateway wrote (LOG_LEVEL, default info, and above), parsed. */
  // biome-ignore lint/suspicious/noExplicitAny: tests match on arbitrary log fields
  logs: any[];
  userOf(apiKey: string): string;
  /** The value of one `mcpb_recoveries_total` series. */
  recoveries(kind: "container" | "session"): Promise<number>;
  /** The value of one `mcpb_session_revivals_total` series. */
  revivals(cause: "redis-lost" | "idle-released" | "upstream-restart"): Promise<number>;
  /** The value of `mcpb_replays_refused_total`. */
  replaysRefused(): Promise<number>;
  /** What shutdown does to relayed streams: held upstream streams handed over, client streams ended. */
  handOver(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The gateway as `createApp` builds it, listening on 127.0.0.1, on real Redis and an
 * in-process driver: every rule of the gateway, no container engine.
 */
export async function startInProcessGateway(
  redis: LocalRedis,
  driver: InProcessDriver,
  env: Record<string, string> = {},
): Promise<InProcessGateway> {
  const config = loadConfig({
    PORT: "0",
    HOST: "127.0.0.1",
    KEY_HASH_SECRET: "unit-secret-0123456789",
    REDIS_URL: redis.url,
    REDIS_PREFIX: redis.prefix,
    RATE_LIMIT_PER_MINUTE: "0",
    AUTH_VERIFY: "off",
    NEW_KEY_STARTS_PER_IP_PER_MINUTE: "0",
    ...env,
  });
  const store = SessionStore.connect(config.REDIS_URL, {
    prefix: config.REDIS_PREFIX,
    sessionIdleTtlSeconds: 3600,
    rateLimitPoints: config.RATE_LIMIT_PER_MINUTE,
  });
  const logs: unknown[] = [];
  const logger = pino(
    { level: env.LOG_LEVEL ?? "info", redact: redaction(config.API_KEY_HEADER) },
    { write: (line: string) => logs.push(JSON.parse(line)) },
  );
  const gateway = createApp({ config, store, driver, logger });
  const server = serve({ fetch: gateway.app.fetch, port: 0, hostname: "127.0.0.1" }) as Server;
  if (!server.listening) await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    ...gateway,
    url: `http://127.0.0.1:${port}/mcp`,
    config,
    store,
    logs,
    userOf: (apiKey) => userIdFor(config.KEY_HASH_SECRET, apiKey),
    async recoveries(kind) {
      const metric = await gateway.metrics.recoveries.get();
      return metric.values.find((value) => value.labels.kind === kind)?.value ?? 0;
    },
    async revivals(cause) {
      const metric = await gateway.metrics.sessionRevivals.get();
      return metric.values.find((value) => value.labels.cause === cause)?.value ?? 0;
    },
    async replaysRefused() {
      return (await gateway.metrics.replaysRefused.get()).values[0]?.value ?? 0;
    },
    handOver: () => gateway.close(),
    async close() {
      await gateway.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await gateway.closeBroker();
      await gateway.dispatcher.close();
      await driver.close();
      await store.close();
    },
  };
}

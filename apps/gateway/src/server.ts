import {
  type ContainerDriver,
  closeBackendConnections,
  type DriverLog,
  PER_USER_NETWORK,
  ProcessDriver,
} from "@mcp-broker/container-manager";
import { DockerDriver, SwarmDriver } from "@mcp-broker/container-manager/docker";
import { listen, redisTarget } from "@mcp-broker/service-runtime";
import { SessionStore } from "@mcp-broker/session-store";
import type { Logger } from "pino";
import { createApp, type GatewayApp } from "./app.js";
import type { GatewayConfig } from "./config.js";

export interface RunningGateway extends GatewayApp {
  config: GatewayConfig;
  /** Requests whose answer has not finished streaming (graceful shutdown waits for them). */
  inFlight(): number;
  url: string;
  port: number;
  store: SessionStore;
  driver: ContainerDriver;
  /**
   * SIGTERM's first step, before `close`: for DRAIN_SECONDS /ready answers 503 and every answer
   * closes its connection, while requests are still served. The balancer takes the replica out
   * and keeps no idle connection to it, so none of its requests meets a closed port.
   */
  drain(): Promise<void>;
  /** Stop accepting, let in-flight requests finish (bounded), close connections and clients. */
  close(): Promise<void>;
}

export function createDriver(config: GatewayConfig, logger: Logger): ContainerDriver {
  const log: DriverLog = (level, message, fields) => logger[level](fields ?? {}, message);
  if (config.BACKEND_DRIVER === "process") {
    return new ProcessDriver({
      command: config.BACKEND_COMMAND.split(" ").filter(Boolean),
      path: config.BACKEND_PATH,
      keyEnv: config.BACKEND_KEY_ENV,
      env: config.backendProcessEnv,
      readinessTimeoutMs: config.BACKEND_READY_TIMEOUT_MS,
      log,
    });
  }
  const backend = {
    image: config.BACKEND_IMAGE,
    port: config.BACKEND_PORT,
    path: config.BACKEND_PATH,
    keyEnv: config.BACKEND_KEY_ENV,
    env: config.backendEnv,
    deployment: config.DEPLOYMENT_NAME,
    memoryBytes: config.BACKEND_MEMORY_MB * 1024 * 1024,
    nanoCpus: Math.round(config.BACKEND_CPUS * 1e9),
    pidsLimit: config.BACKEND_PIDS_LIMIT,
    user: config.BACKEND_USER,
    readOnlyRootfs: config.BACKEND_READ_ONLY,
    readinessTimeoutMs: config.BACKEND_READY_TIMEOUT_MS,
    log,
  };
  // The config schema requires BACKEND_NETWORK with swarm. Swarm nodes pull images themselves.
  if (config.BACKEND_DRIVER === "swarm") return new SwarmDriver({ ...backend, network: config.BACKEND_NETWORK });
  return new DockerDriver({
    ...backend,
    ...(config.BACKEND_NETWORK ? { network: config.BACKEND_NETWORK } : {}),
    subnets: { pool: config.BACKEND_NETWORK_POOL, prefixLength: config.BACKEND_NETWORK_PREFIX },
    self: config.BACKEND_PEER_CONTAINER,
    publishHost: config.BACKEND_PUBLISH_HOST,
    pullMissing: config.BACKEND_PULL,
  });
}

export function createStore(config: GatewayConfig, logger: Logger): SessionStore {
  let lastReport = 0;
  return SessionStore.connect(redisTarget(config), {
    prefix: config.REDIS_PREFIX,
    sessionIdleTtlSeconds: config.SESSION_IDLE_TTL_SECONDS,
    rateLimitPoints: config.RATE_LIMIT_PER_MINUTE,
    rateLimitWindowSeconds: 60,
    authPositiveTtlSeconds: config.AUTH_CACHE_SECONDS,
    authNegativeTtlSeconds: config.AUTH_NEGATIVE_CACHE_SECONDS,
    commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS,
    onConnectionError: (error) => {
      // ioredis reports every failed reconnect; once every 10 s is enough to see an outage.
      if (Date.now() - lastReport > 10_000) {
        lastReport = Date.now();
        logger.warn({ err: error.message }, "Redis connection error; reconnecting");
      }
    },
  });
}

/** Starts a gateway with real clients; resolves once it listens. */
export async function startGateway(
  config: GatewayConfig,
  logger: Logger,
  overrides: { store?: SessionStore; driver?: ContainerDriver } = {},
): Promise<RunningGateway> {
  const store = overrides.store ?? createStore(config, logger);
  const driver = overrides.driver ?? createDriver(config, logger);
  let draining = false;
  const gateway = createApp({ config, store, driver, logger, draining: () => draining });
  const server = await listen(gateway.app.fetch, { port: config.PORT, host: config.HOST });
  // Before the app's own listener, so the header is set before any answer is written.
  server.server.prependListener("request", (_request, response) => {
    if (draining) response.setHeader("connection", "close");
  });
  if (config.BACKEND_NETWORK === PER_USER_NETWORK) {
    // Backends must not reach /ready, /metrics or /mcp here (docs/architecture.md#trust-boundaries).
    server.server.prependListener("connection", closeBackendConnections(config.BACKEND_NETWORK_POOL));
    // A replica that starts after backends did joins their networks; /ready waits for it (the
    // driver's ping). A network it still misses: the backend's name does not resolve, and
    // recovery's `ensure` connects this replica.
    driver.prepare?.().catch((error: Error) => logger.warn({ err: error.message }, "joining backend networks failed"));
  }
  gateway.spares.start();
  const drain = async () => {
    draining = true;
    await gateway.flushTouches();
    await new Promise((resolve) => setTimeout(resolve, config.DRAIN_SECONDS * 1000));
  };

  const close = async () => {
    // Open GET streams would hold the shutdown to its timeout: they end first, and their clients
    // resume on another replica by Last-Event-ID; held upstream streams are handed over.
    await gateway
      .close()
      .catch((error: Error) => logger.warn({ err: error.message }, "closing relayed streams failed"));
    await gateway.spares.close();
    await server.close(config.SHUTDOWN_TIMEOUT_MS);
    // Last-used times still batched: the reaper must not see these sessions idle since the last flush.
    await gateway.closeBroker();
    await gateway.dispatcher
      .close()
      .catch((error: Error) => logger.warn({ err: error.message }, "closing upstream connections failed"));
    if (!overrides.store) await store.close();
    if (!overrides.driver) await driver.close();
  };
  const { inFlight, port, url } = server;
  return { ...gateway, inFlight, config, url: `${url}/mcp`, port, store, driver, drain, close };
}

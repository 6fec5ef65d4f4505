import { setTimeout as sleep } from "node:timers/promises";
import type { ContainerDriver } from "@mcp-broker/container-manager";
import { inSpan } from "@mcp-broker/service-runtime";
import type { LockOptions, Route, SessionStore } from "@mcp-broker/session-store";
import type { Logger } from "pino";
import type { GatewayConfig } from "./config.js";
import type { User } from "./env.js";
import { GatewayError } from "./errors.js";
import type { Metrics } from "./metrics.js";

export interface BackendsDeps {
  config: Pick<GatewayConfig, "BACKEND_READY_TIMEOUT_MS" | "MAX_BACKENDS" | "NEW_KEY_STARTS_PER_IP_PER_MINUTE">;
  store: SessionStore;
  driver: ContainerDriver;
  metrics: Metrics;
}

/** When a lost connection's server is asked about again: at once, then after these pauses. */
const ALIVE_RECHECKS_MS = [0, 100, 250];

/** A ready route, and not the one that just failed (`stale`). */
export function usable(route: Route | null | undefined, stale?: Route): route is Route {
  if (route?.state !== "ready") return false;
  return !(stale && route.containerId === stale.containerId && route.createdAt === stale.createdAt);
}

/**
 * Where each user's MCP server runs (docs/architecture.md#routing): found in Redis, or
 * created once under the user's lock, whichever replica asks first; the others wait for it.
 */
export class Backends {
  /**
   * The lock outlives a slow start (so a second replica does not start a duplicate), and
   * waiters wait as long as a start may take; Docker's unique names are the last guard.
   */
  readonly lock: LockOptions;

  constructor(private readonly deps: BackendsDeps) {
    const ready = deps.config.BACKEND_READY_TIMEOUT_MS;
    this.lock = { ttlMs: ready + 30_000, timeoutMs: ready + 15_000 };
  }

  /** The user's ready route, starting their server if needed; `stale` is a route that just failed. */
  async ensure(user: User, log: Logger, stale?: Route): Promise<Route> {
    const route = await this.deps.store.getRoute(user.id);
    if (usable(route, stale)) return route;
    return this.deps.store.withUserLock(user.id, this.lock, () => this.ensureLocked(user, log, stale));
  }

  /** As `ensure`, for a caller that already holds the user's lock. */
  async ensureLocked(user: User, log: Logger, stale?: Route): Promise<Route> {
    const current = await this.deps.store.getRoute(user.id);
    if (usable(current, stale)) return current;
    await this.#admitStart(user);
    const started = performance.now();
    const start = () => this.deps.driver.ensure({ userId: user.id, apiKey: user.key });
    const backend = await inSpan("cold start", start, {
      attributes: () => ({ "mcpb.driver": this.deps.driver.kind }),
    }).catch(async (error) => {
      await this.deps.store.releaseBackendStart(user.id).catch(() => {});
      throw error;
    });
    const seconds = (performance.now() - started) / 1000;
    this.deps.metrics.coldStarts.inc();
    this.deps.metrics.coldStartDuration.observe(seconds);
    log.info({ container: backend.containerId.slice(0, 12), ms: Math.round(seconds * 1000) }, "backend ready");
    // Kept with the route so operators can see each user's last cold start (the operator view).
    return this.deps.store.setRoute({ userId: user.id, ...backend, coldStartMs: seconds * 1000 });
  }

  /**
   * Caps on starting a server: per client IP per minute (random keys each start one), and
   * MAX_BACKENDS running or starting across every replica, reserved atomically in Redis.
   */
  async #admitStart(user: User): Promise<void> {
    const { config, store } = this.deps;
    const budget = await store.consumeIpLimit("starts", user.ip, config.NEW_KEY_STARTS_PER_IP_PER_MINUTE);
    if (!budget.allowed) {
      throw new GatewayError("STARTS_LIMITED", String(Math.max(1, Math.ceil(budget.retryAfterMs / 1000))));
    }
    if (!(await store.reserveBackendStart(user.id, config.MAX_BACKENDS, this.lock.ttlMs))) {
      throw new GatewayError("BACKENDS_FULL");
    }
  }

  /** The user's ready route if there is one; never starts a server. */
  async running(user: User): Promise<Route | null> {
    const route = await this.deps.store.getRoute(user.id);
    return usable(route) ? route : null;
  }

  /**
   * Whether the route's server still runs (an engine that cannot say counts as "not running"),
   * asked after a connection to it was lost. The engine reports a killed container a moment
   * after its sockets close, so "running" is asked again before it is believed.
   */
  async isAlive(route: Route): Promise<boolean> {
    for (const waitMs of ALIVE_RECHECKS_MS) {
      if (waitMs > 0) await sleep(waitMs);
      const container = await this.deps.driver.inspect(route.containerId).catch(() => null);
      if (!container?.running) return false;
    }
    return true;
  }
}

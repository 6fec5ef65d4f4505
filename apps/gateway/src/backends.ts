import { setTimeout as sleep } from "node:timers/promises";
import { type ContainerDriver, endMcpSession } from "@mcp-broker/container-manager";
import { inSpan } from "@mcp-broker/service-runtime";
import type {
  BrokerSession,
  ClaimedRoute,
  LockOptions,
  Route,
  SessionStore,
  WarmSession,
} from "@mcp-broker/session-store";
import type { Logger } from "pino";
import type { GatewayConfig } from "./config.js";
import type { User } from "./env.js";
import { GatewayError } from "./errors.js";
import type { Metrics } from "./metrics.js";
import { brokerInitializeParams } from "./upstream-sessions.js";
import type { SpareRefill } from "./warm-pool.js";

export interface BackendsDeps {
  config: Pick<
    GatewayConfig,
    "BACKEND_READY_TIMEOUT_MS" | "MAX_BACKENDS" | "NEW_KEY_STARTS_PER_IP_PER_MINUTE" | "RECLAIM_MIN_IDLE_SECONDS"
  >;
  store: SessionStore;
  driver: ContainerDriver;
  metrics: Metrics;
  /** The warm pool; without one (or disabled) every new user waits for a start. */
  spares?: SpareRefill | undefined;
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
    return (await this.ensureWithPooled(user, log, stale)).route;
  }

  /**
   * As `ensureLocked`, with the pooled session a claimed spare brought along (its warm session,
   * adopted as the user's): `PooledSessions.#open` then has nothing left to open. Null otherwise.
   */
  async ensureWithPooled(
    user: User,
    log: Logger,
    stale?: Route,
  ): Promise<{ route: Route; pooled: BrokerSession | null }> {
    const current = await this.deps.store.getRoute(user.id);
    if (usable(current, stale)) return { route: current, pooled: null };
    const rejoined = await this.#rejoin(current, stale, log);
    if (rejoined) return { route: rejoined, pooled: null };
    await this.#admitNewKey(user);
    const spare = await this.#claimSpare(user, log);
    if (spare) return spare;
    await this.#reserveSlot(user, log);
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
    const route = await this.deps.store.setRoute({ userId: user.id, ...backend, coldStartMs: seconds * 1000 });
    return { route, pooled: null };
  }

  /**
   * The route that failed, when it is still the user's and this replica could not reach it for
   * want of its network (per-user networks: a replica that was restarting when the network was
   * made misses it); the driver joins it and the call goes to the same server. Null otherwise.
   */
  async #rejoin(current: Route | null, stale: Route | undefined, log: Logger): Promise<Route | null> {
    const { driver } = this.deps;
    if (!stale || !driver.reach || current?.containerId !== stale.containerId) return null;
    if (!(await driver.reach(current))) return null;
    log.warn({ container: current.containerId.slice(0, 12) }, "joined the backend's network this replica had missed");
    return current;
  }

  /** Per client IP per minute: random keys each need a server (a start, or a spare and its refill). */
  async #admitNewKey(user: User): Promise<void> {
    const { config, store } = this.deps;
    const budget = await store.consumeIpLimit("starts", user.ip, config.NEW_KEY_STARTS_PER_IP_PER_MINUTE);
    if (!budget.allowed) {
      throw new GatewayError("STARTS_LIMITED", String(Math.max(1, Math.ceil(budget.retryAfterMs / 1000))));
    }
  }

  /**
   * A spare of the warm pool, taken in one Redis step (never given to two users) and routed as
   * the user's; the spare reads the user's key from the key header of every request. Its warm
   * session becomes the user's pooled session. The pool refills in the background.
   */
  async #claimSpare(user: User, log: Logger): Promise<{ route: Route; pooled: BrokerSession | null } | null> {
    const { store, spares, metrics } = this.deps;
    if (!spares?.enabled) return null;
    const started = performance.now();
    const spare = await store.warmPool.claim(user.id, this.lock.ttlMs);
    if (!spare) {
      metrics.spareMisses.inc();
      spares.refillSoon();
      return null;
    }
    const ms = performance.now() - started;
    metrics.spareClaims.inc();
    const route = await store.setRoute({
      userId: user.id,
      containerId: spare.containerId,
      endpoint: spare.endpoint,
      coldStartMs: ms,
    });
    const pooled = spare.warmSession ? await this.#adopt(user, route, spare.warmSession) : null;
    log.info(
      { container: spare.containerId.slice(0, 12), ms: Math.round(ms), adopted: pooled !== null },
      "spare backend claimed",
    );
    spares.refillSoon();
    return { route, pooled };
  }

  /**
   * Makes a claimed spare's warm session the user's pooled session (under the user's lock, as
   * `PooledSessions.#open` writes one): the session a session-less first call would otherwise
   * open with the same `initialize`, two round trips and a fresh server's CPU later. A user who
   * already has a pooled session (their server was reaped, their session not yet) keeps it, and
   * the warm one is ended. Resolves to the pooled session it wrote, or null.
   */
  async #adopt(user: User, route: Route, warm: WarmSession): Promise<BrokerSession | null> {
    const { store } = this.deps;
    if (await store.getPooledSession(user.id)) {
      void endMcpSession({ url: route.endpoint, timeoutMs: 5_000 }, warm.id).catch(() => {});
      return null;
    }
    return store.createSession({
      userId: user.id,
      upstreamSessionId: warm.id,
      initializeParams: brokerInitializeParams(),
      protocolVersion: warm.protocolVersion,
      pooled: true,
    });
  }

  /**
   * MAX_BACKENDS running or starting across every replica, reserved atomically in Redis. When
   * full, the least recently used backend idle for RECLAIM_MIN_IDLE_SECONDS with nothing in
   * flight is stopped and its slot passed on; only when none is, the answer is a 503.
   */
  async #reserveSlot(user: User, log: Logger): Promise<void> {
    const { config, store } = this.deps;
    if (await store.reserveBackendStart(user.id, config.MAX_BACKENDS, this.lock.ttlMs)) return;
    if (config.RECLAIM_MIN_IDLE_SECONDS > 0) {
      const cutoff = Date.now() - config.RECLAIM_MIN_IDLE_SECONDS * 1000;
      const claim = await store.reclaimIdleBackend(user.id, cutoff, this.lock.ttlMs, 120_000);
      if (claim) return this.#reclaim(claim, user, log);
    }
    throw new GatewayError("BACKENDS_FULL");
  }

  /**
   * Stops a reclaimed backend as the reaper stops an idle one: its route goes, its sessions stay
   * and revive on their next use (docs/architecture.md#sessions).
   */
  async #reclaim(claim: ClaimedRoute, user: User, log: Logger): Promise<void> {
    const { driver, store, metrics } = this.deps;
    try {
      await driver.remove(claim.containerId);
    } catch (error) {
      await store.abandonRouteRemoval(claim).catch(() => {});
      await store.releaseBackendStart(user.id).catch(() => {});
      log.warn({ err: (error as Error).message }, "reclaimed backend refused to stop");
      throw new GatewayError("BACKENDS_FULL");
    }
    await store.finishRouteRemoval(claim);
    metrics.backendsReclaimed.inc();
    log.info(
      { user: claim.userId.slice(0, 12), container: claim.containerId.slice(0, 12) },
      "idle backend reclaimed for a new user (MAX_BACKENDS)",
    );
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

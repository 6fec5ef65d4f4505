import {
  type Backend,
  type ContainerDriver,
  openMcpSession,
  requestMcp,
  spareUserId,
} from "@mcp-broker/container-manager";
import type { SessionStore, WarmSession } from "@mcp-broker/session-store";
import type { Logger } from "pino";
import type { GatewayConfig } from "./config.js";
import type { Metrics } from "./metrics.js";
import { negotiated } from "./protocol-eras.js";
import { brokerInitializeParams } from "./upstream-sessions.js";

export interface WarmPoolDeps {
  config: Pick<
    GatewayConfig,
    "WARM_POOL_SIZE" | "WARM_POOL_REFILL_SECONDS" | "BACKEND_KEY_AT_START" | "MAX_BACKENDS" | "BACKEND_READY_TIMEOUT_MS"
  >;
  store: SessionStore;
  driver: ContainerDriver;
  metrics: Metrics;
  logger: Logger;
}

/** Spares one replica starts at once while refilling: a pool of 20 fills in a few rounds, not 20. */
const PARALLEL_STARTS = 4;
const REFILL_DELAY_MS = 2000;
/** The tool a spare's warm-up calls: a name no server has, so no tool ever runs. */
export const WARM_UP_TOOL = "mcp-broker-warm-up-no-such-tool";

/**
 * Keeps the warm pool full (docs/architecture.md#warm-pool): spares started without a key,
 * which a new user claims instead of waiting for a start. Every replica refills, after each
 * claim and every WARM_POOL_REFILL_SECONDS; Redis (WarmPool.reserveStart) keeps ready plus
 * starting spares at most WARM_POOL_SIZE across replicas, and inside MAX_BACKENDS.
 */
export class SpareRefill {
  readonly enabled: boolean;
  #running: Promise<void> | null = null;
  #timer: NodeJS.Timeout | undefined;
  #soon: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(private readonly deps: WarmPoolDeps) {
    // An image that reads its key only at start cannot serve a user it was not started for.
    this.enabled = deps.config.WARM_POOL_SIZE > 0 && !deps.config.BACKEND_KEY_AT_START;
  }

  /** Fills the pool now and then every WARM_POOL_REFILL_SECONDS, until `close`. */
  start(): void {
    if (!this.enabled || this.#timer) return;
    this.#timer = setInterval(() => void this.refill(), this.deps.config.WARM_POOL_REFILL_SECONDS * 1000);
    this.#timer.unref();
    void this.refill();
  }

  /**
   * Refills a moment after a claim: starting containers takes the CPU that the claimant's
   * first calls on their fresh spare need (measured: bench/src/pool.mjs), and claims come in bursts.
   */
  refillSoon(): void {
    if (!this.enabled || this.#soon) return;
    this.#soon = setTimeout(() => {
      this.#soon = undefined;
      void this.refill();
    }, REFILL_DELAY_MS);
    this.#soon.unref();
  }

  /** Starts spares until the pool (or MAX_BACKENDS) is full; one round at a time per replica. */
  refill(): Promise<void> {
    if (!this.enabled || this.#closed) return Promise.resolve();
    this.#running ??= Promise.all(Array.from({ length: PARALLEL_STARTS }, () => this.#fill())).then(() => {
      this.#running = null;
    });
    return this.#running;
  }

  /** Stops refilling; resolves once the starts under way are pooled (or removed). */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    clearTimeout(this.#soon);
    this.#timer = undefined;
    await this.#running;
  }

  /**
   * One keyless MCP exchange before the spare is pooled (the broker's own `initialize`, then
   * `tools/list`, then a `tools/call` of a tool no server has, which every MCP server answers
   * with an error without running anything), so the server has loaded and compiled its request
   * path, tool calls included, before a user's first call: a fresh process answers its first
   * requests several times slower. Measured on outline-stub: the first `tools/call whoami` after
   * `tools/list` took 16–23 ms of CPU, after the unknown-tool call 7–8 ms (4 ms once warm).
   * The session stays open: it is exactly what the claimant's pooled session would open, so
   * `Backends` adopts it instead of initializing again (docs/architecture.md#warm-pool). Best
   * effort: a spare whose warm-up failed is pooled without a session.
   */
  async #warmUp(backend: Backend): Promise<WarmSession | undefined> {
    const endpoint = { url: backend.endpoint, timeoutMs: 10_000 };
    const params = brokerInitializeParams();
    try {
      const { sessionId, result } = await openMcpSession(endpoint, params);
      const failed = await requestMcp(endpoint, sessionId, "tools/list", {});
      if (failed) throw new Error(`tools/list: ${failed.message}`);
      // Its answer is an error (unknown tool) by design; only a missing answer throws.
      await requestMcp(endpoint, sessionId, "tools/call", { name: WARM_UP_TOOL, arguments: {} });
      return { id: sessionId, protocolVersion: negotiated(result) ?? params.protocolVersion };
    } catch (error) {
      this.deps.logger.warn({ err: (error as Error).message }, "warm pool: warming a spare up failed");
      return undefined;
    }
  }

  async #fill(): Promise<void> {
    const { config, store, driver, logger, metrics } = this.deps;
    const ttlMs = config.BACKEND_READY_TIMEOUT_MS + 30_000;
    while (!this.#closed) {
      const ticket = await store.warmPool
        .reserveStart(config.WARM_POOL_SIZE, config.MAX_BACKENDS, ttlMs)
        .catch((error: Error) => void logger.warn({ err: error.message }, "warm pool: cannot reserve a start"));
      if (!ticket) return;
      try {
        const backend = await driver.ensure({ userId: spareUserId(), apiKey: "" });
        const warmSession = await this.#warmUp(backend);
        const spare = { ...backend, createdAt: Date.now(), ...(warmSession ? { warmSession } : {}) };
        if (await store.warmPool.add(ticket, spare, config.WARM_POOL_SIZE)) {
          metrics.sparesStarted.inc();
          continue;
        }
        await driver.remove(backend.containerId); // the pool filled meanwhile (a slow start)
      } catch (error) {
        await store.warmPool.cancelStart(ticket).catch(() => {});
        logger.warn({ err: (error as Error).message }, "warm pool: starting a spare failed; retried next round");
      }
      return;
    }
  }
}

import type { SessionStore } from "@mcp-broker/session-store";
import type { Logger } from "pino";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
const START_BUCKETS = [0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60];

/**
 * The gateway's Prometheus metrics, on a registry of its own (several apps can share a process in
 * tests). Recoveries, revivals and refused replays are also counted per minute in Redis
 * (`countRecent`), so the operator view shows the last hour across every replica.
 */
export function createMetrics(store: SessionStore, logger?: Logger) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "mcpb_gateway_" });
  const metrics = {
    registry,
    requests: new Counter({
      name: "mcpb_http_requests_total",
      help: "Requests answered, by method and status",
      labelNames: ["method", "status"] as const,
      registers: [registry],
    }),
    requestDuration: new Histogram({
      name: "mcpb_http_request_duration_seconds",
      help: "Time to response headers, whole request, by method",
      labelNames: ["method"] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    upstreamDuration: new Histogram({
      name: "mcpb_upstream_duration_seconds",
      help: "Time from forwarding to upstream response headers",
      labelNames: ["method"] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    coldStarts: new Counter({
      name: "mcpb_cold_starts_total",
      help: "MCP servers created or restarted for a request",
      registers: [registry],
    }),
    coldStartDuration: new Histogram({
      name: "mcpb_cold_start_duration_seconds",
      help: "Time to get a user's MCP server ready",
      buckets: START_BUCKETS,
      registers: [registry],
    }),
    spareClaims: new Counter({
      name: "mcpb_warm_pool_claims_total",
      help: "New users given a spare of the warm pool instead of a start",
      registers: [registry],
    }),
    spareMisses: new Counter({
      name: "mcpb_warm_pool_misses_total",
      help: "New users who found the warm pool empty and waited for a start",
      registers: [registry],
    }),
    sparesStarted: new Counter({
      name: "mcpb_warm_pool_spares_started_total",
      help: "Spares this replica started into the warm pool",
      registers: [registry],
    }),
    backendsReclaimed: new Counter({
      name: "mcpb_backends_reclaimed_total",
      help: "Idle backends stopped to give their MAX_BACKENDS slot to a new user",
      registers: [registry],
    }),
    recoveries: new Counter({
      name: "mcpb_recoveries_total",
      help: "Transparent recoveries, by what was re-created (session or container)",
      labelNames: ["kind"] as const,
      registers: [registry],
    }),
    relayStreams: new Gauge({
      name: "mcpb_relay_streams",
      help: "Server-to-client streams open on this replica: upstream GETs it holds open, client GETs it serves",
      labelNames: ["kind"] as const,
      registers: [registry],
    }),
    relayDropped: new Counter({
      name: "mcpb_relay_dropped_total",
      help: "Server-to-client events not relayed, by reason (too large for RELAY_MAX_BYTES)",
      labelNames: ["reason"] as const,
      registers: [registry],
    }),
    sessionRevivals: new Counter({
      name: "mcpb_session_revivals_total",
      help: "Client sessions given a new upstream session, by why the old one was gone",
      labelNames: ["cause"] as const,
      registers: [registry],
    }),
    errors: new Counter({
      name: "mcpb_errors_total",
      help: "Error answers, by the gateway's error code (STORE_UNAVAILABLE: Redis; DOCKER_UNAVAILABLE: the engine)",
      labelNames: ["code"] as const,
      registers: [registry],
    }),
    replaysRefused: new Counter({
      name: "mcpb_replays_refused_total",
      help: "Requests lost with their connection and not sent again, as not safe to repeat",
      registers: [registry],
    }),
  };
  // Fire-and-forget: the request never waits for this write, and a Redis hiccup costs one count.
  const countRecent = (event: string) => {
    store.countEvent(event).catch((error: Error) => logger?.warn({ err: error.message, event }, "event not counted"));
  };
  const recorded = {
    /** A transparent recovery: `mcpb_recoveries_total{kind}` and the operator view's hourly count. */
    recovered(kind: "session" | "container") {
      metrics.recoveries.inc({ kind });
      countRecent(`recovery:${kind}`);
    },
    revived(cause: string) {
      metrics.sessionRevivals.inc({ cause });
      countRecent(`revival:${cause}`);
    },
    replayRefused() {
      metrics.replaysRefused.inc();
      countRecent("replay-refused");
    },
  };
  new Gauge({
    name: "mcpb_active_sessions",
    help: "Broker sessions in the idle index",
    registers: [registry],
    async collect() {
      this.set((await store.counts().catch(() => ({ sessions: Number.NaN }))).sessions);
    },
  });
  new Gauge({
    name: "mcpb_active_containers",
    help: "Routed MCP servers in the idle index",
    registers: [registry],
    async collect() {
      this.set((await store.counts().catch(() => ({ routes: Number.NaN }))).routes);
    },
  });
  // Redis has maxmemory + noeviction in compose: near the limit, writes fail (503s), so watch it.
  new Gauge({
    name: "mcpb_redis_used_memory_bytes",
    help: "Redis used_memory (INFO memory), read on each scrape",
    registers: [registry],
    async collect() {
      this.set((await store.memory().catch(() => ({ used: Number.NaN }))).used);
    },
  });
  new Gauge({
    name: "mcpb_redis_maxmemory_bytes",
    help: "Redis maxmemory (0: no limit)",
    registers: [registry],
    async collect() {
      this.set((await store.memory().catch(() => ({ max: Number.NaN }))).max);
    },
  });
  return { ...metrics, ...recorded };
}

export type Metrics = ReturnType<typeof createMetrics>;

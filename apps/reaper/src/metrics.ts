import { Counter, collectDefaultMetrics, Histogram, Registry } from "prom-client";
import type { SweepResult } from "./sweep.js";

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "mcpb_reaper_" });
  const sweeps = new Counter({
    name: "mcpb_sweeps_total",
    help: "Sweeps run, by outcome",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "mcpb_sweep_duration_seconds",
    help: "Time one sweep took",
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60],
    registers: [registry],
  });
  const reaped = new Counter({
    name: "mcpb_reaped_total",
    help: "Items the reaper removed, by kind",
    labelNames: ["kind"] as const,
    registers: [registry],
  });
  return {
    registry,
    sweeps,
    record(result: SweepResult) {
      sweeps.inc({ outcome: result.failures.length > 0 ? "partial" : "ok" });
      duration.observe(result.durationMs / 1000);
      reaped.inc({ kind: "session" }, result.sessionsEnded);
      reaped.inc({ kind: "container" }, result.containersStopped);
      reaped.inc({ kind: "orphan" }, result.orphansRemoved);
      reaped.inc({ kind: "stale_route" }, result.staleRoutesRemoved);
      reaped.inc({ kind: "network" }, result.networksRemoved);
    },
  };
}

export type ReaperMetrics = ReturnType<typeof createMetrics>;

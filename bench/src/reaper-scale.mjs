// The reaper at scale: one sweep over more and more stored sessions with the same number
// expired, timed, and Redis's memory per stored session. `measureReaper` takes the bench's
// Redis; run.mjs's `reaperScale` section calls it.
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { docker, root } from "./stack.mjs";

const { SessionStore } = await import(join(root, "packages/session-store/dist/index.js"));
const { DockerDriver } = await import(join(root, "packages/container-manager/dist/docker-index.js"));
const { sweep } = await import(join(root, "apps/reaper/dist/index.js"));
const { pino } = await import("pino");

/** One row per size in `sizes`: stored, expired, the sweep's ms, and Redis bytes per stored session. */
export async function measureReaper({ redis, sizes, expired, deployment }) {
  const rows = [];
  for (const stored of sizes) {
    const prefix = `reap${stored}:`;
    const reapStore = SessionStore.connect(redis.url, { prefix, sessionIdleTtlSeconds: 60 });
    const before = memoryUsed(redis);
    await fill(reapStore, stored, expired);
    const after = memoryUsed(redis);
    const driver = new DockerDriver({ deployment: `${deployment}-none` });
    const sweepConfig = {
      SESSION_IDLE_TTL_SECONDS: 60,
      CONTAINER_IDLE_TTL_SECONDS: 60,
      REAP_BATCH_SIZE: 500,
      REAP_MAX_BATCHES: 1000,
      ORPHAN_GRACE_SECONDS: 120,
    };
    const sweepDeps = { config: sweepConfig, store: reapStore, driver, log: pino({ level: "silent" }) };
    const started = performance.now();
    const result = await sweep(sweepDeps);
    const ms = performance.now() - started;
    if (result.sessionsEnded !== expired) throw new Error(`sweep ended ${result.sessionsEnded}, expected ${expired}`);
    rows.push({ stored, expired, ms, bytesPerSession: (after - before) / stored });
    await reapStore.close();
  }
  return rows;
}

/** `stored` sessions spread over 5000 users, the first `expired` of them last used an hour ago. */
async function fill(store, stored, expired) {
  const old = Date.now() - 3_600_000;
  for (let i = 0; i < stored; i += 1000) {
    await Promise.all(
      Array.from({ length: Math.min(1000, stored - i) }, async (_, j) => {
        const session = await store.createSession({
          userId: `u${(i + j) % 5000}`,
          upstreamSessionId: randomUUID(),
          initializeParams: {
            protocolVersion: "2025-06-18",
            capabilities: {},
            clientInfo: { name: "bench", version: "1" },
          },
          protocolVersion: "2025-06-18",
        });
        if (i + j < expired) await store.touch(session.userId, session.id, old);
      }),
    );
  }
}

// Asked of the server, not through the store: the store keeps its Redis client to itself.
function memoryUsed(redis) {
  return Number(docker("exec", redis.name, "redis-cli", "INFO", "memory").match(/^used_memory:(\d+)/m)[1]);
}

// Issue 15: a first request that does not wait for a container. Measures, with and without a
// warm pool, the first `tools/call` of a new key (session-less: the broker starts or claims the
// backend, opens the key's pooled session and forwards the call) and 20 new keys at once.
// Self-contained: `measurePool(stack)` takes the bench's stack; `node bench/src/pool.mjs
// [--quick]` starts its own Redis and gateways (images built: `bash scripts/images.sh`).
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { containerPids, cpuSnapshot } from "./cpu.mjs";
import { MCP_HEADERS } from "./load.mjs";
import { docker, removeDeployment, root, startGateway, startRedis, stopAll } from "./stack.mjs";

const key = (name) => `ol_api_bench_${name}_${randomUUID().slice(0, 8)}`;
const log = (line) => process.stderr.write(`[bench pool] ${line}\n`);

/** One session-less `tools/call whoami` as a new key: ms until its whole answer arrived. */
async function firstCall(url, apiKey) {
  const started = performance.now();
  const response = await fetch(url, {
    method: "POST",
    headers: { ...MCP_HEADERS, "x-outline-api-key": apiKey },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "whoami", arguments: {} } }),
  });
  const text = await response.text();
  if (response.status !== 200 || !text.includes("requestKey")) throw new Error(`first call: ${response.status}`);
  return performance.now() - started;
}

export const p50 = (samples) => {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
};

/** Waits until the pool (in Redis, seen by `store`) holds `size` ready spares. */
async function poolFull(store, size, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while ((await store.warmPool.list()).length < size) {
    if (Date.now() > deadline)
      throw new Error(
        `warm pool not at ${size} within ${timeoutMs} ms: ${(await store.warmPool.list()).length} ready, ${await store.warmPool.starting()} starting`,
      );
    await sleep(100);
  }
}

/** The host pid of each running backend of a deployment (spares included). */
function backendPids(deployment) {
  const ids = docker("ps", "-q", "--filter", `label=mcp-broker.deployment=${deployment}`).split("\n").filter(Boolean);
  if (!ids.length) return {};
  return Object.fromEntries(containerPids(ids).map((pid, i) => [`backend${i}`, pid]));
}

/**
 * `stack`: { redisUrl, env (the bench's gateway env), samples, burst }. Each case runs on a
 * gateway, a Redis prefix and a deployment of its own, removed afterwards.
 * Returns { single: { noPool, pool }, burst: { noPool, pool } }: samples in ms, and burstCpu:
 * { noPool, pool }, the CPU ms the burst took in the gateway and in the backends that were
 * running when it began (the spares; a burst without a pool starts its backends meanwhile).
 */
export async function measurePool({ redisUrl, env, samples = 7, burst = 20 }) {
  const { SessionStore } = await import(join(root, "packages/session-store/dist/index.js"));
  const results = { single: {}, burst: {}, burstCpu: {}, samples, burstSize: burst };
  for (const [name, size] of [
    ["noPool", 0],
    ["pool", burst],
  ]) {
    const deployment = `benchpool${name.toLowerCase()}${process.pid}`;
    const prefix = `${deployment}:`;
    const gateway = await startGateway({
      ...env,
      REDIS_URL: redisUrl,
      REDIS_PREFIX: prefix,
      DEPLOYMENT_NAME: deployment,
      WARM_POOL_SIZE: String(size),
      MAX_BACKENDS: String(4 * burst + samples),
    });
    const store = SessionStore.connect(redisUrl, { prefix, sessionIdleTtlSeconds: 3600 });
    try {
      log(`${name}: first tools/call of ${samples} new keys, one at a time`);
      const single = [];
      for (let i = 0; i < samples; i++) {
        if (size > 0) await poolFull(store, size);
        single.push(await firstCall(gateway.url, key(`first${i}`)));
      }
      if (size > 0) await poolFull(store, size);
      log(`${name}: ${burst} new keys at once`);
      const keys = Array.from({ length: burst }, (_, i) => key(`burst${i}`));
      results.single[name] = single;
      const processes = { gateway: gateway.pid, ...backendPids(deployment) };
      const before = cpuSnapshot(processes);
      results.burst[name] = await Promise.all(keys.map((apiKey) => firstCall(gateway.url, apiKey)));
      const after = cpuSnapshot(processes);
      const ms = (names) => Math.round(names.reduce((sum, n) => sum + after[n] - before[n], 0) / 1000);
      const backends = Object.keys(processes).filter((n) => n !== "gateway");
      results.burstCpu[name] = { gateway: ms(["gateway"]), backends: ms(backends), backendCount: backends.length };
    } finally {
      await store.close();
      // Its exit, not a pause: the spares it is still starting are pooled (and listed) before it ends.
      const exited = gateway.child.exitCode === null ? once(gateway.child, "exit") : null;
      gateway.child.kill("SIGTERM");
      await exited;
      removeDeployment(deployment);
      // A start the engine accepted just before the gateway exited still ends in a container
      // (in a deployment the reaper removes it as an orphan; here nothing else would).
      await sleep(5_000);
      removeDeployment(deployment);
    }
  }
  return results;
}

/** The figures as markdown rows (p50 in ms), for BENCHMARKS.md or a terminal. */
export function poolRows(results) {
  const ms = (samples) => `${Math.round(p50(samples))} ms`;
  return [
    "| case | without pool (p50) | with pool (p50) | target with pool |",
    "|---|---|---|---|",
    `| first \`tools/call\` of a new key (${results.samples} keys, one at a time) | ${ms(results.single.noPool)} | ${ms(results.single.pool)} | ≤ 60 ms |`,
    `| ${results.burstSize} new keys at once (pool of ${results.burstSize}) | ${ms(results.burst.noPool)} | ${ms(results.burst.pool)} | ≤ 300 ms |`,
    ...(results.burstCpu?.pool
      ? [
          "",
          `CPU the pooled burst took (from /proc): the gateway ${results.burstCpu.pool.gateway} ms, the ${results.burstCpu.pool.backendCount} backends running when it began ${results.burstCpu.pool.backends} ms (mostly the ${results.burstSize} spares answering their first call; their warm-up ends with a \`tools/call\` of a tool no server has, so that path is compiled already). On two cores the burst is CPU-bound: the slowest answer comes about when the CPU all of them need is spent.`,
        ]
      : []),
  ].join("\n");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes("--quick");
  try {
    const redis = await startRedis();
    const env = {
      KEY_HASH_SECRET: "bench-secret-0123456789",
      BACKEND_IMAGE: "mcp-broker/outline-stub:local",
      BACKEND_PULL: "false",
      RATE_LIMIT_PER_MINUTE: "0",
      LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
    };
    const results = await measurePool({ redisUrl: redis.url, env, samples: quick ? 3 : 7, burst: quick ? 10 : 20 });
    console.log(poolRows(results));
    console.log(JSON.stringify(results));
  } finally {
    await stopAll();
  }
}

// `npm run bench` (full) or `npm run bench -- --quick` (CI smoke): every scenario in one run,
// side by side, so the ratios compare like with like on a shared, noisy machine.
// Writes BENCHMARKS.md (full mode) or prints the table only (quick mode, unless --write).
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { measureColdStart } from "./cold-start.mjs";
import { containerPid, cpuPerRequest, cpuSnapshot } from "./cpu.mjs";
import { initialize, latencyAtOne, measure } from "./load.mjs";
import { measurePool } from "./pool.mjs";
import { measureReaper } from "./reaper-scale.mjs";
import { renderReport } from "./report.mjs";
import {
  collectGarbage,
  docker,
  removeDeployment,
  root,
  rssMiB,
  startGateway,
  startNginx,
  startNginxRouter,
  startNodeProxy,
  startRedis,
  stopAll,
} from "./stack.mjs";
import { tracingCost } from "./tracing-cost.mjs";

const quick = process.argv.includes("--quick");
const write = !quick || process.argv.includes("--write");
const P = quick
  ? { seconds: 3, connections: 10, users: 5, coldSamples: 3, burst: 5, reap: [2_000, 20_000], expired: 200 }
  : { seconds: 10, connections: 10, users: 50, coldSamples: 7, burst: 20, reap: [10_000, 100_000], expired: 1_000 };
/** Warm-path rounds: every path once per round, in turn, so each round's machine state is shared. */
P.rounds = quick ? 1 : 3;

const { userIdFor } = await import(join(root, "apps/gateway/dist/index.js"));
const { SessionStore } = await import(join(root, "packages/session-store/dist/index.js"));

const SECRET = "bench-secret-0123456789";
const deployment = `bench${process.pid}`;
const log = (line) => process.stderr.write(`[bench] ${line}\n`);
const key = (name) => `ol_api_bench_${name}_${randomUUID().slice(0, 8)}`;
const results = {};

/**
 * The scenarios, in order; each reads and extends `ctx` and stores its figures in `results`
 * under its own name, which report.mjs renders.
 */
const SECTIONS = [warmPath, manyUsers, coldStart, warmPool, reaperScale, tracing];

async function main() {
  const redis = await startRedis();
  const env = {
    REDIS_URL: redis.url,
    KEY_HASH_SECRET: SECRET,
    BACKEND_IMAGE: "mcp-broker/outline-stub:local",
    BACKEND_PULL: "false",
    DEPLOYMENT_NAME: deployment,
    RATE_LIMIT_PER_MINUTE: "0",
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "info",
  };
  const g1 = await startGateway(env);
  const freshRss = rssMiB(g1.pid);
  const g2 = await startGateway(env);
  const store = SessionStore.connect(redis.url, { sessionIdleTtlSeconds: 3600 });
  const ctx = { redis, env, g1, g2, store, freshRss, results };
  // `--only=warmPath,manyUsers`: a subset, for a profiling loop (the report needs every section).
  const only = process.argv
    .find((arg) => arg.startsWith("--only="))
    ?.slice(7)
    .split(",");
  for (const section of SECTIONS.filter((s) => !only || only.includes(s.name))) {
    log(`section: ${section.name}`);
    await section(ctx);
  }
  await store.close();
}

const run = (url, targets, connections = P.connections) => measure({ url, targets, connections, seconds: P.seconds });

/**
 * One user, server running: the same load straight to the MCP server, through nginx, through
 * the minimal Node proxy, one gateway, two gateways behind nginx; req/s, latency, and the CPU
 * each process on the path spent per request; then latency at concurrency 1 per hop.
 */
async function warmPath(ctx) {
  const { g1, g2, store, redis } = ctx;
  const warmKey = key("warm");
  const brokerSession = await initialize(g1.url, { "x-outline-api-key": warmKey });
  const route = await store.getRoute(userIdFor(SECRET, warmKey));
  const direct = route.endpoint;
  const directSession = await initialize(direct);
  const { origin, pathname } = new URL(direct);
  const nginxDirect = await startNginx([new URL(direct).host]);
  const nodeProxy = await startNodeProxy(origin);
  const nginxGateways = await startNginx([new URL(g1.url).host, new URL(g2.url).host]);
  const processes = {
    server: containerPid(route.containerId),
    redis: containerPid(redis.name),
    nginx: nginxDirect.pid,
    nodeProxy: nodeProxy.pid,
    gateway: g1.pid,
    gateway2: g2.pid,
    nginxGateways: nginxGateways.pid,
  };
  const viaGateway = [{ headers: { "x-outline-api-key": warmKey, "mcp-session-id": brokerSession } }];
  const viaDirect = [{ headers: { "mcp-session-id": directSession } }];
  const paths = {
    direct: [direct, viaDirect],
    nginx: [`${nginxDirect.url}${pathname}`, viaDirect],
    nodeProxy: [`${nodeProxy.url}${pathname}`, viaDirect],
    gateway: [g1.url, viaGateway],
    twoGateways: [`${nginxGateways.url}/mcp`, viaGateway],
  };
  const warm = Object.fromEntries(Object.keys(paths).map((name) => [name, []]));
  for (let round = 0; round < P.rounds; round++) {
    for (const [name, [url, targets]] of Object.entries(paths)) {
      const before = cpuSnapshot(processes);
      const result = await run(url, targets);
      result.cpu = cpuPerRequest(before, cpuSnapshot(processes), result.total);
      warm[name].push(result);
    }
  }
  // req/s and latency: the best round. CPU per request: every round pooled (all CPU over all
  // requests), which one noisy round moves less than it moves a single round's figure.
  const best = (list) => list.reduce((a, b) => (b.rps > a.rps ? b : a));
  const pooled = (list) => {
    const requests = list.reduce((sum, r) => sum + r.total, 0);
    const names = Object.keys(list[0].cpu);
    return Object.fromEntries(names.map((n) => [n, list.reduce((sum, r) => sum + r.cpu[n] * r.total, 0) / requests]));
  };
  ctx.results.warm = Object.fromEntries(
    Object.entries(warm).map(([name, list]) => [name, { ...best(list), cpu: pooled(list) }]),
  );

  ctx.results.memory = await memoryOf(g1);

  const count = quick ? 300 : 2000;
  ctx.results.atOne = {};
  for (const name of ["direct", "nginx", "nodeProxy", "gateway"]) {
    const [url, targets] = paths[name];
    ctx.results.atOne[name] = await latencyAtOne({ url, headers: targets[0].headers, count });
  }
}

/** Where a gateway's memory is (its /metrics): RSS against the V8 heap and memory outside it, MiB. */
async function memoryOf(gateway) {
  const text = await (await fetch(new URL("/metrics", gateway.url))).text();
  const metric = (name) => Number(new RegExp(`^${name} ([\\d.e+]+)`, "m").exec(text)?.[1]) / 2 ** 20;
  return {
    rss: rssMiB(gateway.pid),
    heapTotal: metric("mcpb_gateway_nodejs_heap_size_total_bytes"),
    heapUsed: metric("mcpb_gateway_nodejs_heap_size_used_bytes"),
    external: metric("mcpb_gateway_nodejs_external_memory_bytes"),
  };
}

/** Many users with warm servers through one gateway, and the nginx-routed control; gateway RSS. */
async function manyUsers(ctx) {
  const { g1, store } = ctx;
  log(`many users: ${P.users} keys with warm containers`);
  const idleRss = rssMiB(g1.pid);
  const users = [];
  for (let i = 0; i < P.users; i += 5) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(5, P.users - i) }, async () => {
        const apiKey = key(`user${i}`);
        return {
          headers: {
            "x-outline-api-key": apiKey,
            "mcp-session-id": await initialize(g1.url, { "x-outline-api-key": apiKey }),
          },
        };
      }),
    );
    users.push(...batch);
  }
  // The control: the same servers through nginx, each request routed to its user's server.
  const servers = [];
  for (const user of users) {
    const userRoute = await store.getRoute(userIdFor(SECRET, user.headers["x-outline-api-key"]));
    servers.push(new URL(userRoute.endpoint).host);
  }
  const router = await startNginxRouter(servers);
  const routed = [];
  for (const i of servers.keys()) {
    const target = { "x-bench-target": `t${i}` };
    routed.push({ headers: { ...target, "mcp-session-id": await initialize(`${router.url}/mcp`, target) } });
  }
  let peakRss = 0;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, rssMiB(g1.pid));
  }, 200);
  const oneUser = await run(g1.url, users.slice(0, 1));
  const manyUsers = await run(g1.url, users);
  clearInterval(sampler);
  const usersIdleRss = rssMiB(g1.pid);
  await collectGarbage(g1);
  const collected = { rss: rssMiB(g1.pid), ...(await memoryOf(g1)) };
  const oneNginx = await run(`${router.url}/mcp`, routed.slice(0, 1));
  const manyNginx = await run(`${router.url}/mcp`, routed);
  ctx.results.users = {
    one: oneUser,
    many: manyUsers,
    oneNginx,
    manyNginx,
    count: P.users,
    freshRss: ctx.freshRss,
    idleRss,
    peakRss,
    usersIdleRss,
    collected,
  };
}

/** New keys: the gateway's first initialize vs `docker run` by hand, and a burst across two gateways (bench/src/cold-start.mjs). */
async function coldStart(ctx) {
  const { g1, g2 } = ctx;
  ctx.results.cold = await measureColdStart({ g1, g2, samples: P.coldSamples, burst: P.burst, deployment, key });
  removeDeployment(deployment);
}

/** The warm pool (bench/src/pool.mjs): a new key's first call and a burst of new keys, without and with a pool. */
async function warmPool(ctx) {
  log("warm pool: first call of a new key, and a burst of new keys, without and with a pool");
  ctx.results.pool = await measurePool({
    redisUrl: ctx.redis.url,
    env: ctx.env,
    samples: P.coldSamples,
    burst: P.burst,
  });
}

/** What tracing costs the gateway (bench/src/tracing-cost.mjs): off, on, 10% sampled, off again. */
async function tracing(ctx) {
  log("tracing: gateway CPU per request with tracing off, on, 10% sampled, off again");
  ctx.results.tracing = await tracingCost({ seconds: P.seconds, connections: P.connections });
}

/** The reaper's sweep over 10× more stored sessions with the same number expired (bench/src/reaper-scale.mjs). */
async function reaperScale(ctx) {
  log(`reaper: ${P.reap.join(" and ")} stored sessions, ${P.expired} of them expired`);
  ctx.results.reaper = await measureReaper({ redis: ctx.redis, sizes: P.reap, expired: P.expired, deployment });
}

function require_os_totalmem() {
  return Number(execFileSync("awk", ["/MemTotal/ {print $2 * 1024}", "/proc/meminfo"]).toString().trim());
}

const partial = process.argv.some((arg) => arg.startsWith("--only="));
try {
  await main();
  if (partial) {
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  } else {
    const machine = `${cpus().length} × ${cpus()[0]?.model.trim()}, ${Math.round(require_os_totalmem() / 2 ** 30)} GiB, Node ${process.version}, Docker ${docker("version", "--format", "{{.Server.Version}}")}`;
    const text = renderReport({ results, P, quick, machine });
    process.stdout.write(text);
    if (write) writeFileSync(join(root, "BENCHMARKS.md"), text);
  }
} finally {
  await stopAll();
  removeDeployment(deployment);
}

// `npm run bench` (full) or `npm run bench -- --quick` (CI smoke): every scenario in one run,
// side by side, so the ratios compare like with like on a shared, noisy machine.
// Writes BENCHMARKS.md (full mode) or prints the table only (quick mode, unless --write).
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { initialize, MCP_HEADERS, measure } from "./load.mjs";
import {
  docker,
  removeDeployment,
  root,
  rssMiB,
  startGateway,
  startNginx,
  startNginxRouter,
  startRedis,
  stopAll,
} from "./stack.mjs";

const quick = process.argv.includes("--quick");
const write = !quick || process.argv.includes("--write");
const P = quick
  ? { seconds: 3, connections: 10, users: 5, coldSamples: 3, burst: 5, reap: [2_000, 20_000], expired: 200 }
  : { seconds: 10, connections: 10, users: 50, coldSamples: 7, burst: 20, reap: [10_000, 100_000], expired: 1_000 };

const { userIdFor } = await import(join(root, "apps/gateway/dist/index.js"));
const { SessionStore } = await import(join(root, "packages/session-store/dist/index.js"));
const { DockerDriver } = await import(join(root, "packages/container-manager/dist/index.js"));
const { sweep } = await import(join(root, "apps/reaper/dist/index.js"));
const { pino } = await import("pino");

const SECRET = "bench-secret-0123456789";
const deployment = `bench${process.pid}`;
const log = (line) => process.stderr.write(`[bench] ${line}\n`);
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const pct = (values, p) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))];
const fmt = (n, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");
const key = (name) => `ol_api_bench_${name}_${randomUUID().slice(0, 8)}`;
const results = {};

async function timed(work) {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

async function main() {
  const redis = await startRedis();
  const env = {
    REDIS_URL: redis.url,
    KEY_HASH_SECRET: SECRET,
    BACKEND_IMAGE: "mcp-broker/outline-stub:local",
    BACKEND_PULL: "false",
    DEPLOYMENT_NAME: deployment,
    RATE_LIMIT_PER_MINUTE: "0",
    LOG_LEVEL: "info",
  };
  const [g1, g2] = [await startGateway(env), await startGateway(env)];
  const store = SessionStore.connect(redis.url, { sessionIdleTtlSeconds: 3600 });

  // --- 1. warm path -------------------------------------------------------------------------
  log("warm path: direct, nginx, one gateway, two gateways behind nginx");
  const warmKey = key("warm");
  const brokerSession = await initialize(g1.url, { "x-outline-api-key": warmKey });
  const route = await store.getRoute(userIdFor(SECRET, warmKey));
  const direct = route.endpoint;
  const directSession = await initialize(direct);
  const hostPort = new URL(direct).host;
  const nginxDirect = await startNginx([hostPort]);
  const nginxGateways = await startNginx([new URL(g1.url).host, new URL(g2.url).host]);
  const viaGateway = [{ headers: { "x-outline-api-key": warmKey, "mcp-session-id": brokerSession } }];
  const viaDirect = [{ headers: { "mcp-session-id": directSession } }];
  const run = (url, targets) => measure({ url, targets, connections: P.connections, seconds: P.seconds });
  const rounds = quick ? 1 : 2;
  const warm = { direct: [], nginx: [], gateway: [], twoGateways: [] };
  for (let round = 0; round < rounds; round++) {
    warm.direct.push(await run(direct, viaDirect));
    warm.nginx.push(await run(`${nginxDirect.url}${new URL(direct).pathname}`, viaDirect));
    warm.gateway.push(await run(g1.url, viaGateway));
    warm.twoGateways.push(await run(`${nginxGateways.url}/mcp`, viaGateway));
  }
  const best = (list) => list.reduce((a, b) => (b.rps > a.rps ? b : a));
  results.warm = Object.fromEntries(Object.entries(warm).map(([name, list]) => [name, best(list)]));

  // --- 2. many users ------------------------------------------------------------------------
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
  const oneNginx = await run(`${router.url}/mcp`, routed.slice(0, 1));
  const manyNginx = await run(`${router.url}/mcp`, routed);
  results.users = { one: oneUser, many: manyUsers, oneNginx, manyNginx, count: P.users, idleRss, peakRss };

  // --- 3. cold start ------------------------------------------------------------------------
  log("cold start: gateway first initialize vs docker run + first answer by hand");
  const gatewayCold = [];
  const floor = [];
  for (let i = 0; i < P.coldSamples; i++) {
    gatewayCold.push(await timed(() => initialize(g1.url, { "x-outline-api-key": key(`cold${i}`) })));
    floor.push(await dockerRunFloor(i));
  }
  const burst = await Promise.all(
    Array.from({ length: P.burst }, (_, i) =>
      timed(() => initialize(i % 2 ? g2.url : g1.url, { "x-outline-api-key": key(`burst${i}`) })),
    ),
  );
  results.cold = { gateway: gatewayCold, floor, burst };
  removeDeployment(deployment);

  // --- 4. reaper scale ----------------------------------------------------------------------
  log(`reaper: ${P.reap.join(" and ")} stored sessions, ${P.expired} of them expired`);
  results.reaper = [];
  for (const stored of P.reap) {
    const prefix = `reap${stored}:`;
    const reapStore = SessionStore.connect(redis.url, { prefix, sessionIdleTtlSeconds: 60 });
    const before = memoryUsed(redis);
    await fill(reapStore, stored, P.expired);
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
    if (result.sessionsEnded !== P.expired)
      throw new Error(`sweep ended ${result.sessionsEnded}, expected ${P.expired}`);
    results.reaper.push({ stored, expired: P.expired, ms, bytesPerSession: (after - before) / stored });
    await reapStore.close();
  }

  await store.close();
}

/** `docker run` of the same image and the first MCP answer, by hand: the floor for a cold start. */
async function dockerRunFloor(i) {
  const name = `mcpb-bench-floor-${process.pid}-${i}`;
  const ms = await timed(async () => {
    docker(
      "run",
      "-d",
      "--name",
      name,
      "--label",
      `mcp-broker.deployment=${deployment}`,
      "-p",
      "127.0.0.1::3000",
      "-e",
      "OUTLINE_API_KEY=ol_api_floor",
      "mcp-broker/outline-stub:local",
    );
    const port = docker("port", name, "3000/tcp").split(":").pop();
    for (;;) {
      const answered = await fetch(`http://127.0.0.1:${port}/mcp`, {
        method: "POST",
        headers: MCP_HEADERS,
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: 0,
          method: "initialize",
          params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "floor", version: "1" } },
        }),
      })
        .then(async (r) => {
          await r.text();
          return r.status === 200;
        })
        .catch(() => false);
      if (answered) break;
      await sleep(20);
    }
  });
  docker("rm", "-f", name);
  return ms;
}

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

function report() {
  const { warm, users, cold, reaper } = results;
  const d = warm.direct;
  const addedGateway = warm.gateway.p50 - d.p50;
  const addedNginx = warm.nginx.p50 - d.p50;
  const coldP50 = median(cold.gateway);
  const floorP50 = median(cold.floor);
  const reapRatio = reaper[1].ms / reaper[0].ms;
  const manyRatio = users.many.p50 / users.one.p50;
  const nginxManyRatio = users.manyNginx.p50 / users.oneNginx.p50;
  const row = (name, r) =>
    `| ${name} | ${fmt(r.rps, 0)} | ${fmt(r.p50)} | ${fmt(r.p90)} | ${fmt(r.p99)} | ${fmt(r.rps / d.rps, 2)} |`;
  const verdict = (ok) => (ok ? "met" : "missed");
  const machine = `${cpus().length} × ${cpus()[0]?.model.trim()}, ${Math.round(require_os_totalmem() / 2 ** 30)} GiB, Node ${process.version}, Docker ${docker("version", "--format", "{{.Server.Version}}")}`;
  return `# Benchmarks

Measured by \`npm run bench\` (${quick ? "quick mode" : "full mode"}) on ${new Date().toISOString().slice(0, 10)}: ${machine}.
Every scenario ran in the same invocation, against the same outline-stub container image, with the
load generator (autocannon, ${P.connections} connections, ${P.seconds} s per run${quick ? "" : ", best of 2 rounds"}) on the same machine as
everything it measures: read the ratios, not the absolute numbers. Each request is an MCP
\`tools/call\` of the stub's \`echo\` tool on an initialized session (answer: one SSE event).

Reproduce: \`npm ci && npm run bench\` (about 3 minutes; \`npm run bench -- --quick\` for a smoke run).

## Warm path (one user, container already running)

| path | req/s | p50 ms | p90 ms | p99 ms | throughput vs direct |
|---|---|---|---|---|---|
${row("direct to the MCP server", d)}
${row("nginx proxy_pass (no session logic)", warm.nginx)}
${row("one gateway", warm.gateway)}
${row("two gateways behind nginx", warm.twoGateways)}

- Gateway throughput / direct: **${fmt(warm.gateway.rps / d.rps, 2)}** (target ≥ 0.8: ${verdict(warm.gateway.rps / d.rps >= 0.8)}).
- Added p50 latency: gateway ${fmt(addedGateway, 2)} ms, nginx ${fmt(addedNginx, 2)} ms; ${
    addedNginx > 0
      ? `ratio **${fmt(addedGateway / addedNginx, 2)}** (target ≤ 2: ${verdict(addedGateway <= 2 * addedNginx)})`
      : "nginx added no latency at all (it was faster than the direct path, see below), so the ratio is undefined and the target is judged missed"
  }.

## Many users (warm containers, same load through one gateway)

| path | users | req/s | p50 ms | p90 ms | p99 ms |
|---|---|---|---|---|---|
| gateway | 1 | ${fmt(users.one.rps, 0)} | ${fmt(users.one.p50)} | ${fmt(users.one.p90)} | ${fmt(users.one.p99)} |
| gateway | ${users.count} | ${fmt(users.many.rps, 0)} | ${fmt(users.many.p50)} | ${fmt(users.many.p90)} | ${fmt(users.many.p99)} |
| nginx routing to each user's server (control) | 1 | ${fmt(users.oneNginx.rps, 0)} | ${fmt(users.oneNginx.p50)} | ${fmt(users.oneNginx.p90)} | ${fmt(users.oneNginx.p99)} |
| nginx routing to each user's server (control) | ${users.count} | ${fmt(users.manyNginx.rps, 0)} | ${fmt(users.manyNginx.p50)} | ${fmt(users.manyNginx.p90)} | ${fmt(users.manyNginx.p99)} |

- Gateway p50 at ${users.count} users / 1 user: **${fmt(manyRatio, 2)}** (target ≤ 1.10: ${verdict(manyRatio <= 1.1)}).
- The same ratio without any session logic (nginx control): ${fmt(nginxManyRatio, 2)}. Spreading the load over
  ${users.count} servers on two cores (${users.count} Node processes, each with a cold JIT and its own caches) costs that much
  by itself; the gateway's own growth is ${fmt(manyRatio / nginxManyRatio, 2)}× (its per-request work is the same
  O(1) Redis pipeline whatever the number of users).

## Cold start (new key: container start + readiness + initialize)

| measurement | p50 ms | max ms | samples |
|---|---|---|---|
| gateway, first \`initialize\` of a new key | ${fmt(coldP50, 0)} | ${fmt(Math.max(...cold.gateway), 0)} | ${cold.gateway.length} |
| floor: \`docker run\` + first \`initialize\` answer, by hand | ${fmt(floorP50, 0)} | ${fmt(Math.max(...cold.floor), 0)} | ${cold.floor.length} |
| ${cold.burst.length} new keys at once, across two gateways | ${fmt(median(cold.burst), 0)} | ${fmt(Math.max(...cold.burst), 0)} (p99 ${fmt(pct(cold.burst, 0.99), 0)}) | ${cold.burst.length} |

- Cold start p50 / floor p50: **${fmt(coldP50 / floorP50, 2)}** (target ≤ 1.3: ${verdict(coldP50 / floorP50 <= 1.3)}).

## Reaper scale (sweep of idle sessions)

| sessions stored | expired | sweep ms | Redis bytes per session |
|---|---|---|---|
${reaper.map((r) => `| ${r.stored} | ${r.expired} | ${fmt(r.ms, 0)} | ${fmt(r.bytesPerSession, 0)} |`).join("\n")}

- ${reaper[1].stored / reaper[0].stored}× more stored, same expired: **${fmt(reapRatio, 2)}×** the time (target < 2: ${verdict(reapRatio < 2)}).
  The sweep asks the sessions index (a sorted set by last use) for what is past the cutoff, so its
  cost follows what expires (plus one best-effort upstream DELETE each), not what exists.

## Where the warm path stands, and what was fixed

The throughput target is missed on this machine: with two cores shared by the load generator,
the MCP server and the gateway, every CPU-microsecond the gateway spends per request comes out of
the server's share, and the stub's \`echo\` costs the server about as little as a request can.
Against a real Outline server (each tool call waits tens of milliseconds on Outline's API) the
same absolute overhead (about ${fmt(addedGateway, 1)} ms at p50 here) is a few percent. The latency target
(gateway adds at most twice what a plain proxy adds) is met.

Profile-driven fixes (\`node bench/src/profile.mjs\`: one gateway process, 10 connections, V8 CPU
profile; recorded while fixing, same machine, not re-measured by this run):

| commit | change | req/s |
|---|---|---|
| before (\`c8ede3f\`) | one Redis round trip each for session, route and touch; web \`Request\`, \`AbortSignal\` and two web streams per request; synchronous logs | 557 |
| \`d6ba059\` | session + route + touch in one pipelined round trip; client-gone detection from Node's response (no \`AbortSignal\`: 2% of CPU); buffered async logs | 691 |
| \`852eda7\` | body and headers read from Node's request (no web \`Request\`); one web stream per answer | 830–886 |

What the profile shows now (idle excluded, roughly): socket write syscalls 30%, ioredis 8%,
undici 6%, gateway code 5%, logging 3%. The next step is a per-replica cache of session → route
(skipping Redis on the hot path, with touches batched), which trades a bounded staleness window
for the last Redis round trip; it is not done.

## Memory

- Gateway RSS: ${fmt(users.idleRss, 0)} MiB idle (after the warm-path runs), ${fmt(users.peakRss, 0)} MiB peak under the ${users.count}-user load.
- Redis: about ${fmt(reaper[1].bytesPerSession, 0)} bytes per stored session (hash with the initialize params, index entry).
`;
}

function require_os_totalmem() {
  return Number(execFileSync("awk", ["/MemTotal/ {print $2 * 1024}", "/proc/meminfo"]).toString().trim());
}

try {
  await main();
  const text = report();
  process.stdout.write(text);
  if (write) writeFileSync(join(root, "BENCHMARKS.md"), text);
} finally {
  await stopAll();
  removeDeployment(deployment);
}

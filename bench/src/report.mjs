import { poolRows } from "./pool.mjs";
// The BENCHMARKS.md text for one run of bench/src/run.mjs.
export const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
export const pct = (values, p) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))];
export const fmt = (n, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");

/** BENCHMARKS.md from one run's results: ratios side by side, each target judged. */
export function renderReport({ results, P, quick, machine }) {
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
${results.pool ? `\n### Warm pool (\`bench/src/pool.mjs\`: a session-less \`tools/call\`, the first of a new key)\n\n${poolRows(results.pool)}\n` : ""}
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

## Cold start on a swarm vs the Docker driver

Measured by the stack tests in one run (\`test/e2e/src/sentinel-stack.test.ts\` then
\`swarm-stack.test.ts\`, 2026-11-28, this machine): \`initialize\` + first \`tools/call\` of a new key through
each stack's HAProxy, five keys each.

| backend driver | p50 ms | samples ms |
|---|---|---|
| Docker (Compose stack) | 898 | 1049, 885, 877, 1004, 898 |
| Swarm service (one-node swarm, overlay network, dnsrr) | 1069 | 1071, 1047, 1069, 1152, 986 |

Swarm / Docker p50: **1.19**. A Swarm service adds the orchestrator's scheduling of a task and the
overlay network's attachment; runs on this shared machine vary by ±300 ms, so read it as "about the same
order", not a precise ratio.

## Memory

- Gateway RSS: ${fmt(users.idleRss, 0)} MiB idle (after the warm-path runs), ${fmt(users.peakRss, 0)} MiB peak under the ${users.count}-user load.
- Redis: about ${fmt(reaper[1].bytesPerSession, 0)} bytes per stored session (the reaper scenario's sessions: hash and index entry).
- Redis per live session with Claude Code's \`initialize\` params (\`INFO used_memory\` delta over 1,000 sessions of 100
  users, Redis 7.0): **1,056 bytes before** signed session tokens (commit \`acb7899\`: the params stored in the
  session hash pushed it out of the compact listpack encoding), **496 bytes after** (the token carries the params;
  Redis keeps them only when they exceed the token's 2 KiB budget). A session released for idleness keeps a
  record of about 265 bytes until its token's max age, so it can be revived with its recorded state.
`;
}

// `node bench/src/compare-builds.mjs <rounds> <build>...`: CPU per warm request of several gateway
// builds and the minimal Node proxy, measured in turn in each round of one run, so a change is
// compared with its "before" under the same load on a shared machine (a quick run's ratio swings
// by ±0.2 from one run to the next; within one run the order of the builds holds).
// A build is `apps/gateway/dist/builds/<name>`, e.g. from another commit's sources:
//   git checkout <commit> -- apps/gateway/src
//   npx tsc -p apps/gateway/tsconfig.build.json --outDir apps/gateway/dist/builds/<name>
//   git checkout HEAD -- apps/gateway/src
import { spawn } from "node:child_process";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "@mcp-broker/service-runtime";
import { containerPid, cpuPerRequest, cpuSnapshot } from "./cpu.mjs";
import { initialize, measure } from "./load.mjs";
import { removeDeployment, root, startNodeProxy, startRedis, stopAll } from "./stack.mjs";

const [rounds, ...builds] = process.argv.slice(2);
const SECRET = "bench-secret-0123456789";
const SECONDS = 3;
const deployment = `compare${process.pid}`;
const buildDir = (name) => join(root, "apps/gateway/dist/builds", name);
const children = [];

async function startBuild(name, env) {
  const port = await freePort();
  const child = spawn(process.execPath, [join(buildDir(name), "main.js")], {
    cwd: root,
    env: { ...env, PORT: String(port) },
    stdio: ["ignore", "ignore", "inherit"],
  });
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300 && !(await fetch(`${url}/health`).catch(() => null)); i++) await sleep(100);
  return { url: `${url}/mcp`, pid: child.pid };
}

try {
  const redis = await startRedis();
  const env = {
    AUTH_VERIFY: "off",
    NEW_KEY_STARTS_PER_IP_PER_MINUTE: "0",
    ...process.env,
    REDIS_URL: redis.url,
    KEY_HASH_SECRET: SECRET,
    BACKEND_IMAGE: "mcp-broker/outline-stub:local",
    BACKEND_PULL: "false",
    DEPLOYMENT_NAME: deployment,
    RATE_LIMIT_PER_MINUTE: "0",
    LOG_LEVEL: "info",
    HOST: "127.0.0.1",
  };
  // One user: every build forwards to the same MCP server, on a session of its own.
  const apiKey = `ol_api_bench_compare_${process.pid}`;
  const paths = {};
  const processes = {};
  for (const name of builds) {
    const gateway = await startBuild(name, env);
    const session = await initialize(gateway.url, { "x-outline-api-key": apiKey });
    paths[name] = { url: gateway.url, headers: { "x-outline-api-key": apiKey, "mcp-session-id": session } };
    processes[name] = gateway.pid;
  }
  const { userIdFor } = await import(join(buildDir(builds[0]), "index.js"));
  const { SessionStore } = await import(join(root, "packages/session-store/dist/index.js"));
  const store = SessionStore.connect(redis.url, { sessionIdleTtlSeconds: 3600 });
  const route = await store.getRoute(userIdFor(SECRET, apiKey));
  await store.close();
  const proxy = await startNodeProxy(new URL(route.endpoint).origin);
  const directSession = await initialize(route.endpoint);
  paths.proxy = {
    url: `${proxy.url}${new URL(route.endpoint).pathname}`,
    headers: { "mcp-session-id": directSession },
  };
  Object.assign(processes, {
    proxy: proxy.pid,
    redis: containerPid(redis.name),
    server: containerPid(route.containerId),
  });

  const names = ["proxy", ...builds];
  for (const name of names)
    await measure({ url: paths[name].url, targets: [paths[name]], connections: 10, seconds: 1 });
  const cpu = Object.fromEntries(names.map((name) => [name, []]));
  for (let round = 0; round < Number(rounds); round++) {
    // Alternate the order, so no build always runs right after the same neighbour.
    for (const name of round % 2 ? [...names].reverse() : names) {
      const before = cpuSnapshot(processes);
      const result = await measure({ url: paths[name].url, targets: [paths[name]], connections: 10, seconds: SECONDS });
      const used = cpuPerRequest(before, cpuSnapshot(processes), result.total);
      // A gateway's own Redis counts with it, as in BENCHMARKS.md.
      cpu[name].push(used[name] + (name === "proxy" ? 0 : used.redis));
    }
    const ratio = (name) => (cpu[name].at(-1) / cpu.proxy.at(-1)).toFixed(2);
    console.log(
      `round ${round + 1}: proxy ${cpu.proxy.at(-1).toFixed(0)} µs; ` +
        builds.map((name) => `${name} ${cpu[name].at(-1).toFixed(0)} µs (${ratio(name)})`).join(", "),
    );
  }
  const sum = (list) => list.reduce((a, b) => a + b, 0);
  console.log(
    `all rounds, (gateway + Redis) / proxy: ${builds.map((name) => `${name} ${(sum(cpu[name]) / sum(cpu.proxy)).toFixed(2)}`).join(", ")}`,
  );
} finally {
  for (const child of children) child.kill("SIGTERM");
  await stopAll();
  removeDeployment(deployment);
}

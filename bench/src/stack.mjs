// The processes a benchmark run starts, all on 127.0.0.1, all stopped by `stopAll()`:
// a Redis container, gateway processes, and nginx processes from the host's nginx binary.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { freePort } from "@mcp-broker/service-runtime";

export const root = fileURLToPath(new URL("../..", import.meta.url));
const cleanups = [];

export const docker = (...args) =>
  execFileSync("docker", args, { stdio: ["ignore", "pipe", "pipe"] })
    .toString()
    .trim();

async function until(what, check, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {}
    if (Date.now() > deadline) throw new Error(`${what} did not come up in ${timeoutMs} ms`);
    await sleep(100);
  }
}

let redisCount = 0;

export async function startRedis() {
  const port = await freePort();
  // One per caller: the tracing section starts a Redis of its own beside the run's.
  const name = `mcpb-bench-redis-${process.pid}-${++redisCount}`;
  docker(
    "run",
    "-d",
    "--rm",
    "--name",
    name,
    "-p",
    `127.0.0.1:${port}:6379`,
    "mcp-broker/redis:local",
    "redis-server",
    "--save",
    "",
    "--appendonly",
    "no",
    "--protected-mode",
    "no",
  );
  cleanups.push(() => docker("rm", "-f", name));
  await until("redis", () => docker("exec", name, "redis-cli", "ping") === "PONG");
  return { url: `redis://127.0.0.1:${port}`, name };
}

/** BENCH_GATEWAY_MAIN: another build's gateway (an older commit's `apps/gateway/dist/main.js`), for a "before". */
const gatewayMain = process.env.BENCH_GATEWAY_MAIN ?? "apps/gateway/dist/main.js";

/** BENCH_GATEWAY_LOG: a file each gateway's log lines are appended to (with LOG_LEVEL=info: claims, sessions, requests). */
export async function startGateway(env) {
  const port = await freePort();
  // The inspector's port, for `collectGarbage`: it only listens once sent SIGUSR1, so the
  // runs before cost nothing extra.
  const inspectPort = await freePort();
  const child = spawn(process.execPath, [`--inspect-port=127.0.0.1:${inspectPort}`, gatewayMain], {
    cwd: root,
    // Benchmarks start many keys from one address on purpose: no verification, no per-IP start cap.
    env: {
      AUTH_VERIFY: "off",
      NEW_KEY_STARTS_PER_IP_PER_MINUTE: "0",
      ...process.env,
      ...env,
      PORT: String(port),
      HOST: "127.0.0.1",
    },
    stdio: [
      "ignore",
      process.env.BENCH_GATEWAY_LOG ? openSync(process.env.BENCH_GATEWAY_LOG, "a") : "ignore",
      "inherit",
    ],
  });
  cleanups.push(() => child.kill("SIGTERM"));
  const url = `http://127.0.0.1:${port}`;
  await until("gateway", async () => (await fetch(`${url}/health`)).ok);
  return { url: `${url}/mcp`, pid: child.pid, child, inspectPort };
}

/**
 * Forces full garbage collections in a gateway (V8's inspector, HeapProfiler.collectGarbage),
 * so its RSS and heap show what it retains rather than what V8 has not collected yet.
 */
export async function collectGarbage(gateway) {
  process.kill(gateway.pid, "SIGUSR1");
  let targets = [];
  await until("inspector", async () => {
    targets = await (await fetch(`http://127.0.0.1:${gateway.inspectPort}/json/list`)).json();
    return targets.length > 0;
  });
  const socket = new WebSocket(targets[0].webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    socket.addEventListener("open", resolve);
    socket.addEventListener("error", reject);
  });
  let nextId = 0;
  const send = (method) =>
    new Promise((resolve) => {
      const id = ++nextId;
      socket.addEventListener("message", (event) => JSON.parse(event.data).id === id && resolve());
      socket.send(JSON.stringify({ id, method }));
    });
  await send("HeapProfiler.collectGarbage");
  await send("HeapProfiler.collectGarbage");
  socket.close();
}

/** nginx proxying to `upstreams` (host:port list): keep-alive, unbuffered, no session logic. */
export function startNginx(upstreams) {
  return startNginxWith(
    `upstream targets { ${upstreams.map((u) => `server ${u};`).join(" ")} keepalive 64; }`,
    "targets",
  );
}

/**
 * nginx routing each request to the server named by its X-Bench-Target header (an upstream
 * group per server, each with keep-alive): the no-session-logic control for many users.
 */
export function startNginxRouter(servers) {
  const groups = servers.map((server, i) => `upstream t${i} { server ${server}; keepalive 8; }`).join("\n  ");
  return startNginxWith(groups, "$http_x_bench_target");
}

async function startNginxWith(upstreamBlocks, target) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "mcpb-bench-nginx-"));
  writeFileSync(
    join(dir, "nginx.conf"),
    `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  ${upstreamBlocks}
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://${target};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
    }
  }
}
`,
  );
  const child = spawn("nginx", ["-c", join(dir, "nginx.conf"), "-p", dir], { stdio: ["ignore", "ignore", "inherit"] });
  cleanups.push(() => child.kill("SIGQUIT"));
  await until("nginx", async () => (await fetch(`http://127.0.0.1:${port}/`).catch(() => null)) !== null);
  return { url: `http://127.0.0.1:${port}`, pid: child.pid };
}

/** bench/src/node-proxy.mjs in front of `origin`: the minimal Node reverse proxy, the floor. */
export async function startNodeProxy(origin) {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [fileURLToPath(new URL("./node-proxy.mjs", import.meta.url)), String(port), origin],
    {
      stdio: [
        "ignore",
        process.env.BENCH_GATEWAY_LOG ? openSync(process.env.BENCH_GATEWAY_LOG, "a") : "ignore",
        "inherit",
      ],
    },
  );
  cleanups.push(() => child.kill("SIGTERM"));
  const url = `http://127.0.0.1:${port}`;
  await until("node proxy", async () => (await fetch(url).catch(() => null)) !== null);
  return { url, pid: child.pid };
}

/** Resident set size of a process, in MiB. */
export function rssMiB(pid) {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+) kB/m);
  return line ? Number(line[1]) / 1024 : Number.NaN;
}

export function removeDeployment(deployment) {
  const ids = docker("ps", "-aq", "--filter", `label=mcp-broker.deployment=${deployment}`).split("\n").filter(Boolean);
  if (ids.length) docker("rm", "-f", ...ids);
}

export async function stopAll() {
  for (const cleanup of cleanups.reverse()) {
    try {
      cleanup();
    } catch {}
  }
  cleanups.length = 0;
  await sleep(200);
}

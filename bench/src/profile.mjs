// `node bench/src/profile.mjs`: one gateway process under the warm-path load with V8's CPU
// profiler on, then the share of CPU time by package and the top functions. This is how the
// warm-path fixes in BENCHMARKS.md were found; run it on an older commit for the "before".
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "@mcp-broker/service-runtime";
import { initialize, measure } from "./load.mjs";
import { removeDeployment, root, startRedis, stopAll } from "./stack.mjs";

const seconds = Number(process.argv[2] ?? 6);
const dir = mkdtempSync(join(tmpdir(), "mcpb-profile-"));
const deployment = `profile${process.pid}`;
try {
  const redis = await startRedis();
  const port = await freePort();
  const gateway = spawn(process.execPath, ["--cpu-prof", `--cpu-prof-dir=${dir}`, "apps/gateway/dist/main.js"], {
    cwd: root,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: "127.0.0.1",
      REDIS_URL: redis.url,
      KEY_HASH_SECRET: "profile-secret-0123456789",
      BACKEND_IMAGE: "mcp-broker/outline-stub:local",
      BACKEND_PULL: "false",
      DEPLOYMENT_NAME: deployment,
      RATE_LIMIT_PER_MINUTE: "0",
      AUTH_VERIFY: "off",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const url = `http://127.0.0.1:${port}/mcp`;
  for (let i = 0; i < 100 && !(await fetch(url.replace("/mcp", "/health")).catch(() => null)); i++) await sleep(100);
  const headers = { "x-outline-api-key": "ol_api_profile_key_0001" };
  const session = await initialize(url, headers);
  const result = await measure({
    url,
    targets: [{ headers: { ...headers, "mcp-session-id": session } }],
    connections: 10,
    seconds,
  });
  console.log(
    `one gateway, 10 connections, ${seconds} s: ${result.rps.toFixed(0)} req/s, p50 ${result.p50} ms, p99 ${result.p99} ms`,
  );
  gateway.kill("SIGINT");
  await new Promise((resolve) => gateway.once("exit", resolve));

  const profile = JSON.parse(readFileSync(join(dir, readdirSync(dir)[0]), "utf8"));
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map();
  for (const [i, id] of profile.samples.entries()) self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const share = (grouping) => {
    const groups = new Map();
    for (const [id, time] of self) {
      const key = grouping(nodes.get(id).callFrame);
      groups.set(key, (groups.get(key) ?? 0) + time);
    }
    return [...groups].sort((a, b) => b[1] - a[1]);
  };
  const byPackage = share(({ url, functionName }) => {
    const pkg = url.match(/node_modules\/((@[^/]+\/)?[^/]+)/)?.[1];
    if (pkg) return pkg;
    if (url.includes(root))
      return url
        .slice(url.indexOf(root) + root.length)
        .split("/")
        .slice(0, 2)
        .join("/");
    return url ? `node:${url.split("/").pop()}` : functionName;
  });
  console.log("\nCPU by package (idle included):");
  for (const [name, time] of byPackage.slice(0, 15))
    console.log(`  ${((time / total) * 100).toFixed(1).padStart(5)}%  ${name}`);
  console.log("\nTop functions:");
  for (const [name, time] of share(
    ({ functionName, url, lineNumber }) =>
      `${functionName || "(anonymous)"} ${url.split("/").slice(-2).join("/")}:${lineNumber}`,
  ).slice(0, 15)) {
    console.log(`  ${((time / total) * 100).toFixed(1).padStart(5)}%  ${name}`);
  }
} finally {
  await stopAll();
  removeDeployment(deployment);
}

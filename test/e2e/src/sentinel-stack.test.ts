import { execFile } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { eventually, freePort } from "@mcp-broker/test-support";
import { docker, requireDocker } from "@mcp-broker/test-support/docker";
import { CallLoad } from "./call-load.js";
import { coldStartMs } from "./cold-start.js";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../../..", import.meta.url));

/**
 * docker-compose.yml with the `ha` profile (deploy/ha.yml): a Redis master, a replica and three
 * sentinels. The master is killed under the looping-clients load of failover.test.ts; Sentinel
 * promotes the replica, the gateways follow it, and the reaper keeps sweeping.
 */
describe("the compose stack with Redis Sentinel (profile ha)", () => {
  const project = `mcpb-ha-${process.pid}`;
  let env: NodeJS.ProcessEnv;
  let url: string;
  let load: CallLoad | undefined;
  const stack = (...args: string[]) => run("bash", ["scripts/stack.sh", ...args], { cwd: root, env, timeout: 240_000 });
  const container = async (service: string) => {
    const [found] = await docker.listContainers({
      filters: { label: [`com.docker.compose.project=${project}`, `com.docker.compose.service=${service}`] },
    });
    if (!found) throw new Error(`no running ${service}`);
    return found.Id;
  };
  const sentinel = async (...args: string[]) =>
    (await run("docker", ["exec", await container("sentinel-1"), "redis-cli", "-p", "26379", ...args])).stdout;
  beforeAll(async () => {
    await requireDocker("mcp-broker/gateway:local", "mcp-broker/reaper:local", "mcp-broker/haproxy:local");
    const [port, dashboard] = [await freePort(), await freePort()];
    env = {
      ...process.env,
      COMPOSE_PROJECT_NAME: project,
      COMPOSE_PROFILES: "ha",
      DEPLOYMENT_NAME: `ha-${process.pid}`,
      BROKER_PORT: String(port),
      DASHBOARD_PORT: String(dashboard),
      BACKEND_PULL: "false",
      RATE_LIMIT_PER_MINUTE: "0",
      // A failover within seconds, not redis.conf's 30 s; the reaper sweeping every 2 s.
      SENTINEL_DOWN_AFTER_MS: "1000",
      REAP_INTERVAL_SECONDS: "2",
    };
    url = `http://127.0.0.1:${port}/mcp`;
    await stack("up").catch(async (error: { stdout?: string }) => {
      // stack.sh prints `ps` and the services' last log lines when the balancer never answered.
      console.log(`stack.sh up failed:\n${error.stdout ?? ""}`);
      throw error;
    });
  }, 260_000);
  afterAll(async () => {
    await load?.stop();
    await stack("down", "-v").catch(() => {});
  }, 130_000);

  it("measures cold start of new keys on the Docker driver (BENCHMARKS.md)", async () => {
    const { p50, all } = await coldStartMs(url, "ol_api_demo_docker_bench");
    console.log(
      `cold start, docker driver (initialize + first call of a new key): p50 ${p50} ms of [${all.join(", ")}]`,
    );
    expect(all).toHaveLength(5);
  }, 120_000);

  it("promotes the replica when the master is killed under load; calls succeed again and sweeps go on", async () => {
    // The sentinels must know the replica and each other before a failover can happen.
    await eventually(
      async () => {
        const info = await sentinel("sentinel", "master", "mymaster");
        if (!/num-slaves\n1\n/.test(info) || !/num-other-sentinels\n2\n/.test(info)) throw new Error(info);
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    load = new CallLoad({
      url,
      apiKey: "ol_api_demo_sentinel_key",
      sdkClients: 4,
      sessionlessClients: 2,
      pauseMs: 25,
      maxCallsPerClient: 20_000,
      slowMs: 500,
    });
    await load.start("before");
    await sleep(3_000);
    const killed = load.phase("master killed");
    const killedAt = Date.now();
    await run("docker", ["kill", await container("redis")]);
    await eventually(
      async () => {
        const master = await sentinel("sentinel", "get-master-addr-by-name", "mymaster");
        if (!master.startsWith("redis-replica")) throw new Error(`master is still ${master}`);
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    const promotedAt = Date.now();
    const promotedMs = promotedAt - killedAt;
    await sleep(8_000);
    const after = load.phase("after failover");
    await sleep(8_000);
    const results = await load.stop();
    load = undefined;
    console.log(
      `Sentinel failover (promotion seen ${promotedMs} ms after the kill), 4 SDK + 2 session-less clients:\n${CallLoad.table(results)}` +
        (killed.errors.length > 0 ? `\nfailed calls:\n  ${killed.errors.join("\n  ")}` : ""),
    );
    expect(after.calls).toBeGreaterThan(0);
    expect(after.failures).toBe(0);
    // Sweeps continue on the promoted master: a sweep finishes after the promotion. Read from the
    // reaper's log, not its counter, which a restarted reaper would begin again at 0.
    const reaper = await container("reaper");
    const since = new Date(promotedAt).toISOString();
    const done = await eventually(
      async () => {
        const logs = await run("docker", ["logs", "--since", since, reaper]);
        const count = `${logs.stdout}${logs.stderr}`.split("\n").filter((line) => line.includes('"msg":"sweep done"'));
        if (count.length === 0) throw new Error("no sweep since the failover");
        return count.length;
      },
      { timeoutMs: 30_000, intervalMs: 1_000 },
    ).catch(async (error) => {
      const logs = await run("docker", ["logs", "--tail", "40", reaper]);
      console.log(`reaper log:\n${logs.stdout}${logs.stderr}`);
      throw error;
    });
    const restarts = (await docker.getContainer(reaper).inspect()).RestartCount;
    console.log(`sweeps finished since the promotion: ${done}; reaper restarts: ${restarts}`);
  }, 200_000);
});

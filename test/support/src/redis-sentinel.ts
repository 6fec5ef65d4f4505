import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { eventually } from "./eventually.js";
import { freePort } from "./ports.js";

export interface TestSentinelRedis {
  masterName: string;
  sentinels: { host: string; port: number }[];
  /** The data nodes' ports: the first master, and the replica the sentinels will promote. */
  masterPort: number;
  replicaPort: number;
  /** SIGKILLs the master's process, as a crash or a lost host would stop it. */
  killMaster(): void;
  /** The master's port as the sentinels report it now. */
  currentMasterPort(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Failover timing: the master counts as down after 1 s without an answer (redis.conf's default
 * is 30 s; a test wants the failover, not the patience), and a failover may take 5 s.
 */
const DOWN_AFTER_MS = 1000;
const FAILOVER_TIMEOUT_MS = 5000;

/**
 * A master, one replica and three sentinels (quorum 2), all `redis-server` processes from PATH
 * (a sentinel is `redis-server --sentinel`, the same binary: scripts/host.sh installs it for
 * the tests) on free 127.0.0.1 ports, without persistence. Resolves once the replica is in sync
 * and every sentinel knows the replica and the other sentinels, so a failover can happen.
 */
export async function startSentinelRedis(masterName = "mymaster"): Promise<TestSentinelRedis> {
  const dir = await mkdtemp(join(tmpdir(), "mcpb-sentinel-"));
  const processes: ChildProcess[] = [];
  const clients: Redis[] = [];
  let spawnError: Error | undefined;
  const start = (args: string[]) => {
    const child = spawn("redis-server", args, { stdio: "ignore" });
    child.on("error", (error) => {
      spawnError = new Error(`redis-server did not start (scripts/host.sh installs it): ${error.message}`);
    });
    processes.push(child);
    return child;
  };
  const client = (port: number) => {
    const redis = new Redis({ port, host: "127.0.0.1", lazyConnect: true, retryStrategy: () => 100 });
    redis.on("error", () => {});
    clients.push(redis);
    return redis;
  };
  const dataNode = (port: number, extra: string[] = []) =>
    start(["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, ...extra]);

  const stop = async () => {
    for (const c of clients) c.disconnect();
    await Promise.all(processes.map((child) => stopProcess(child)));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const [masterPort, replicaPort] = [await freePort(), await freePort()];
    const master = dataNode(masterPort);
    dataNode(replicaPort, ["--replicaof", "127.0.0.1", String(masterPort)]);
    const replica = client(replicaPort);
    await eventually(
      async () => {
        if (spawnError) throw spawnError;
        if (!(await replica.info("replication")).includes("master_link_status:up"))
          throw new Error("replica not in sync");
      },
      { timeoutMs: 15_000 },
    );

    const sentinels: { host: string; port: number }[] = [];
    for (let n = 0; n < 3; n++) {
      const port = await freePort();
      // A sentinel rewrites its own configuration file (what it learned), so each gets one.
      const file = join(dir, `sentinel-${n}.conf`);
      await writeFile(
        file,
        [
          `port ${port}`,
          "bind 127.0.0.1",
          `dir ${dir}`,
          `sentinel monitor ${masterName} 127.0.0.1 ${masterPort} 2`,
          `sentinel down-after-milliseconds ${masterName} ${DOWN_AFTER_MS}`,
          `sentinel failover-timeout ${masterName} ${FAILOVER_TIMEOUT_MS}`,
          `sentinel parallel-syncs ${masterName} 1`,
          "",
        ].join("\n"),
      );
      start([file, "--sentinel"]);
      sentinels.push({ host: "127.0.0.1", port });
    }
    const asked = sentinels.map(({ port }) => client(port));
    await eventually(
      async () => {
        for (const sentinel of asked) {
          const replicas = (await sentinel.call("SENTINEL", "REPLICAS", masterName)) as unknown[];
          const peers = (await sentinel.call("SENTINEL", "SENTINELS", masterName)) as unknown[];
          if (replicas.length < 1 || peers.length < 2) throw new Error("sentinels still discovering");
        }
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    const currentMasterPort = async () => {
      const [, port] = (await (asked[0] as Redis).call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", masterName)) as string[];
      return Number(port);
    };
    return {
      masterName,
      sentinels,
      masterPort,
      replicaPort,
      killMaster: () => master.kill("SIGKILL"),
      currentMasterPort,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

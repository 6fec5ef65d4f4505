import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { freePort } from "./ports.js";

export interface LocalRedis {
  url: string;
  /** A key prefix unique to this test file, so files can share one server. */
  prefix: string;
  stop(): Promise<void>;
}

/**
 * Real Redis without a container engine, for the in-process tests: the server at REDIS_URL
 * when set, else a throwaway `redis-server` from PATH (no persistence), stopped by `stop()`.
 */
export async function startLocalRedis(): Promise<LocalRedis> {
  const prefix = `unit:${randomUUID().slice(0, 8)}:`;
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL, prefix, stop: async () => {} };
  const port = await freePort();
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
  const child = spawn(process.env.REDIS_SERVER ?? "redis-server", args, { stdio: ["ignore", "pipe", "ignore"] });
  await ready(child);
  return {
    url: `redis://127.0.0.1:${port}`,
    prefix,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** Resolves on redis-server's own "ready" line (a wait strategy, not a sleep). */
function ready(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => fail(new Error(`redis-server did not start in 20 s:\n${output}`)), 20_000);
    const fail = (error: Error) => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(error);
    };
    child.once("error", (error) =>
      fail(new Error(`cannot run redis-server (${error.message}): install it (apt-get install redis-server)`)),
    );
    child.once("exit", (code) => fail(new Error(`redis-server exited with ${code}:\n${output}`)));
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk;
      if (output.includes("Ready to accept connections")) {
        clearTimeout(timer);
        child.removeAllListeners("exit");
        child.stdout?.removeAllListeners("data").resume(); // keep draining its log
        resolve();
      }
    });
  });
}

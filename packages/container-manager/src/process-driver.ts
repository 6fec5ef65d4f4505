import { type ChildProcess, spawn } from "node:child_process";
import { freePort } from "@mcp-broker/service-runtime";
import {
  type Backend,
  type ContainerDriver,
  DRIVER_DEFAULTS,
  type DriverLog,
  type EnsureRequest,
  type ManagedContainer,
} from "./driver.js";
import { redactKey } from "./engine-api.js";
import { ContainerStartError, ContainerStartTimeoutError } from "./errors.js";
import { waitUntilReady } from "./readiness.js";

export interface ProcessDriverOptions {
  /** The command that runs one user's MCP server, e.g. ["node", "server.mjs"] or ["uvx", "mcp-outline"]. */
  command: readonly string[];
  /** Env variable through which the server learns its port. */
  portEnv?: string;
  path?: string;
  keyEnv?: string;
  /**
   * Each server's whole environment besides the port, host and key the driver sets (PATH for
   * the command, the operator's passthrough variables). Nothing of this process's environment
   * is copied: the gateway's own secrets (KEY_HASH_SECRET) must not reach a user's server.
   */
  env?: Readonly<Record<string, string>>;
  host?: string;
  readinessTimeoutMs?: number;
  log?: DriverLog;
}

interface Child {
  process: ChildProcess;
  userId: string;
  endpoint: string;
  createdAt: number;
  ready: Promise<Backend>;
}

/**
 * One local process per user, for hosts without Docker (development, CI without an engine).
 * Same contract as the Docker driver, but its servers live and die with this process, so it
 * suits a single gateway, not a fleet.
 */
export class ProcessDriver implements ContainerDriver {
  readonly kind = "process" as const;
  readonly #children = new Map<string, Child>();
  readonly #options: Required<Omit<ProcessDriverOptions, "log">> & Pick<ProcessDriverOptions, "log">;

  constructor(options: ProcessDriverOptions) {
    if (options.command.length === 0) throw new Error("ProcessDriver needs a command");
    this.#options = {
      portEnv: "PORT",
      path: DRIVER_DEFAULTS.path,
      keyEnv: DRIVER_DEFAULTS.keyEnv,
      env: {},
      host: "127.0.0.1",
      readinessTimeoutMs: DRIVER_DEFAULTS.readinessTimeoutMs,
      ...options,
    };
  }

  async ping(): Promise<void> {}

  ensure(request: EnsureRequest): Promise<Backend> {
    const existing = [...this.#children.values()].find((child) => child.userId === request.userId);
    if (existing && (!existing.process || existing.process.exitCode === null)) return existing.ready;
    return this.#spawn(request);
  }

  async #spawn({ userId, apiKey }: EnsureRequest): Promise<Backend> {
    const o = this.#options;
    // Reserve the map slot synchronously so concurrent ensure calls share one start.
    const placeholder = { userId } as Child;
    const id = `pending:${userId}`;
    this.#children.set(id, placeholder);
    const ready = (async (): Promise<Backend> => {
      const port = await freePort(o.host);
      const [command, ...args] = o.command as [string, ...string[]];
      const child = spawn(command, args, {
        env: { ...o.env, [o.portEnv]: String(port), HOST: o.host, ...(apiKey ? { [o.keyEnv]: apiKey } : {}) },
        stdio: ["ignore", "ignore", "pipe"],
      });
      let stderr = "";
      child.stderr?.on("data", (chunk: Buffer) => {
        stderr = (stderr + chunk.toString()).slice(-2000);
      });
      const containerId = `process:${child.pid}`;
      Object.assign(placeholder, {
        process: child,
        endpoint: `http://${o.host}:${port}${o.path}`,
        createdAt: Date.now(),
      });
      this.#children.delete(id);
      this.#children.set(containerId, placeholder);
      child.once("exit", () => this.#children.delete(containerId));

      const started = await waitUntilReady(placeholder.endpoint, {
        timeoutMs: o.readinessTimeoutMs,
        checkAlive: async () => {
          if (child.exitCode !== null) {
            const output = redactKey(stderr, apiKey).trim().slice(-500);
            throw new ContainerStartError(containerId, `exited with code ${child.exitCode}; last output: ${output}`);
          }
        },
      });
      if (!started) {
        await this.remove(containerId);
        throw new ContainerStartTimeoutError(containerId, o.readinessTimeoutMs);
      }
      o.log?.("info", "backend process ready", { containerId, port });
      return { containerId, endpoint: placeholder.endpoint };
    })();
    placeholder.ready = ready;
    ready.catch(() => {
      this.#children.delete(id);
    });
    return ready;
  }

  async stop(containerId: string): Promise<void> {
    await this.remove(containerId);
  }

  async remove(containerId: string): Promise<void> {
    const child = this.#children.get(containerId)?.process;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  }

  async listManaged(): Promise<ManagedContainer[]> {
    return [...this.#children.entries()]
      .filter(([id]) => id.startsWith("process:"))
      .map(([id, child]) => ({
        id,
        userId: child.userId,
        name: id,
        running: child.process.exitCode === null,
        createdAt: child.createdAt,
      }));
  }

  async inspect(containerId: string): Promise<ManagedContainer | null> {
    return (await this.listManaged()).find((container) => container.id === containerId) ?? null;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#children.keys()].map((id) => this.remove(id)));
  }
}

import { EventEmitter } from "node:events";
import { ConfigError } from "./config.js";
import { runService, type ServiceLogger, type ServiceProcess } from "./run-service.js";

/** A logger that keeps its lines, and a process whose signals the test sends and whose exit it records. */
function harness() {
  const lines: Array<{ level: string; message: string; fields: Record<string, unknown> }> = [];
  const logger: ServiceLogger = {
    info: (fields, message) => lines.push({ level: "info", message, fields }),
    error: (fields, message) => lines.push({ level: "error", message, fields }),
    fatal: (fields, message) => lines.push({ level: "fatal", message, fields }),
    flush: (callback) => setImmediate(callback),
  };
  const exits: number[] = [];
  let exited: (code: number) => void = () => {};
  const host = Object.assign(new EventEmitter(), {
    exit(code: number) {
      exits.push(code);
      exited(code);
    },
  }) satisfies ServiceProcess;
  const exit = new Promise<number>((resolve) => {
    exited = resolve;
  });
  return { lines, logger, host, exits, exited: exit };
}

describe("runService", () => {
  it("exits 2 naming every problem when the configuration is refused, without starting", async () => {
    const { lines, logger, host, exited } = harness();
    const start = jest.fn();
    const result = await runService(
      {
        env: {},
        loadConfig: () => {
          throw new ConfigError(["PORT: bad", "SECRET: missing"]);
        },
        bootLogger: logger,
        logger: () => logger,
        start,
        stopping: () => ({ message: "stopping" }),
      },
      host,
    );
    expect(result).toBeUndefined();
    expect(await exited).toBe(2);
    expect(start).not.toHaveBeenCalled();
    expect(lines).toEqual([
      { level: "fatal", message: "invalid configuration", fields: { problems: ["PORT: bad", "SECRET: missing"] } },
    ]);
  });

  it("on SIGTERM closes once, even if SIGINT follows, and exits 0 after the logs", async () => {
    const { lines, logger, host, exits, exited } = harness();
    const close = jest.fn(async () => {});
    await runService(
      {
        env: { NAME: "svc" },
        loadConfig: (env) => ({ name: env.NAME }),
        bootLogger: logger,
        logger: () => logger,
        start: async () => ({ close, busy: 3 }),
        stopping: (service) => ({ message: "finishing work", fields: { busy: service.busy } }),
      },
      host,
    );
    host.emit("SIGTERM");
    host.emit("SIGINT");
    expect(await exited).toBe(0);
    expect(close).toHaveBeenCalledTimes(1);
    expect(exits).toEqual([0]);
    expect(lines.map((line) => line.message)).toEqual(["finishing work", "stopped"]);
    expect(lines[0]?.fields).toEqual({ signal: "SIGTERM", busy: 3 });
  });

  it("exits 1 when closing fails, saying why", async () => {
    const { lines, logger, host, exited } = harness();
    await runService(
      {
        env: {},
        loadConfig: () => ({}),
        bootLogger: logger,
        logger: () => logger,
        start: async () => ({ close: () => Promise.reject(new Error("socket stuck")) }),
        stopping: () => ({ message: "stopping" }),
      },
      host,
    );
    host.emit("SIGINT");
    expect(await exited).toBe(1);
    expect(lines.at(-1)).toMatchObject({ level: "error", message: "shutdown failed" });
  });

  it("lets other errors from loading the configuration propagate", async () => {
    const { logger, host } = harness();
    const definition = {
      env: {},
      loadConfig: (): never => {
        throw new TypeError("bug");
      },
      bootLogger: logger,
      logger: () => logger,
      start: async () => ({ close: async () => {} }),
      stopping: () => ({ message: "stopping" }),
    };
    await expect(runService(definition, host)).rejects.toThrow("bug");
  });
});

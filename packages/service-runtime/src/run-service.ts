import { ConfigError } from "./config.js";

/** What the runtime logs through (pino's `Logger` fits; so does a few lines over `console`). */
export interface ServiceLogger {
  info(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
  fatal(fields: Record<string, unknown>, message: string): void;
  /** Buffered loggers (pino's asynchronous destination) write what they hold, then call back. */
  flush?(callback: () => void): void;
}

/** A started service: `close` lets in-flight work finish, then releases every resource. */
export interface Closable {
  close(): Promise<void>;
}

/** The parts of `process` the runtime uses; tests pass an EventEmitter with an `exit` spy. */
export interface ServiceProcess {
  once(signal: "SIGTERM" | "SIGINT", listener: () => void): unknown;
  exit(code: number): void;
}

export interface ServiceDefinition<Config, Logger extends ServiceLogger, Service extends Closable> {
  /** The environment to read; main passes `process.env`, nothing below it reads one. */
  env: NodeJS.ProcessEnv;
  /** The app's `loadConfig`: a ConfigError from it ends the process with code 2. */
  loadConfig(env: NodeJS.ProcessEnv): Config;
  /** Logs until the configuration is known; the fatal line for a bad one goes here. */
  bootLogger: ServiceLogger;
  /** The service's own logger, from its configuration (level, destination). */
  logger(config: Config): Logger;
  /** Starts everything and logs where it listens; resolves once the service is up. */
  start(config: Config, logger: Logger): Promise<Service>;
  /** The line logged when a stop signal arrives: what the shutdown is waiting for. */
  stopping(service: Service): { message: string; fields?: Record<string, unknown> };
}

/** 2 tells an operator (and test/e2e's shutdown test) that the configuration was refused, not that the service crashed. */
const EXIT = { stopped: 0, failed: 1, badConfig: 2 } as const;

/**
 * A service's whole process life: read the configuration (exit 2 naming every bad variable),
 * start, and on SIGTERM or SIGINT close once, then exit 0 after the logs are written.
 * Resolves with the running service, or undefined when the configuration was refused.
 */
export async function runService<Config, Logger extends ServiceLogger, Service extends Closable>(
  definition: ServiceDefinition<Config, Logger, Service>,
  host: ServiceProcess = process,
): Promise<Service | undefined> {
  let config: Config;
  try {
    config = definition.loadConfig(definition.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    definition.bootLogger.fatal({ problems: error.problems }, "invalid configuration");
    exitAfterFlush(definition.bootLogger, EXIT.badConfig, host);
    return undefined;
  }
  const logger = definition.logger(config);
  const service = await definition.start(config, logger);

  let stopping = false;
  const stop = async (signal: string) => {
    // A second signal while closing (SIGINT after SIGTERM) must not start a second close.
    if (stopping) return;
    stopping = true;
    const { message, fields } = definition.stopping(service);
    logger.info({ signal, ...fields }, message);
    try {
      await service.close();
      logger.info({}, "stopped");
      exitAfterFlush(logger, EXIT.stopped, host);
    } catch (error) {
      logger.error({ err: error }, "shutdown failed");
      exitAfterFlush(logger, EXIT.failed, host);
    }
  };
  for (const signal of ["SIGTERM", "SIGINT"] as const) host.once(signal, () => void stop(signal));
  return service;
}

function exitAfterFlush(logger: ServiceLogger, code: number, host: ServiceProcess): void {
  if (logger.flush) logger.flush(() => host.exit(code));
  else host.exit(code);
}

#!/usr/bin/env node
import { ConfigError, redisTarget } from "@mcp-broker/service-runtime";
import { createRedisClient, redisOptions, SessionStore } from "@mcp-broker/session-store";
import { Queue } from "bullmq";
import { loadConfig } from "./config.js";
import { reaperDriver } from "./driver.js";
import {
  findUser,
  gatherOverview,
  listPool,
  listServers,
  type OperatorSources,
  shortUser,
  stopServer,
} from "./operator/overview.js";
import { poolText, sessionsText, statusText, usersText } from "./operator/text.js";
import { QUEUE_NAME } from "./reaper.js";

const USAGE = `usage: mcp-broker <command>
  status                     users with a server, the last hour's recoveries, the last sweeps
  users                      users with a server
  pool                       the warm pool: ready spares and starts in flight
  sessions <user-id-prefix>  one user's live sessions
  stop <user-id-prefix>      remove one user's server; their next call starts a new one
Reads the reaper's variables: REDIS_URL, REDIS_PREFIX, BACKEND_DRIVER, DEPLOYMENT_NAME, DOCKER_HOST…`;

/** Runs one command against the same Redis and engine as the reaper; the answer is the output. */
async function run(command: string | undefined, arg: string | undefined, sources: OperatorSources): Promise<string> {
  switch (command) {
    case "status":
      return statusText(await gatherOverview(sources));
    case "users":
      return usersText(await listServers(sources));
    case "pool":
      return poolText(await listPool(sources));
    case "sessions": {
      const userId = await findUser(sources.store, arg ?? "");
      return sessionsText(userId, await sources.store.sessionsOfUser(userId));
    }
    case "stop": {
      const route = await stopServer(sources, arg ?? "");
      return `stopped ${route.containerId.slice(0, 12)} of user ${shortUser(route.userId)}; their next call starts a new server`;
    }
    default:
      throw new UsageError(USAGE);
  }
}

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const [command, arg] = argv;
  if (command === undefined || command === "help" || command === "--help") {
    console.log(USAGE);
    return command === undefined ? 2 : 0;
  }
  const config = loadConfig(process.env);
  const store = SessionStore.connect(redisTarget(config), {
    prefix: config.REDIS_PREFIX,
    sessionIdleTtlSeconds: config.SESSION_IDLE_TTL_SECONDS,
    commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS,
  });
  const connection = createRedisClient(redisTarget(config), redisOptions(config.REDIS_COMMAND_TIMEOUT_MS));
  connection.on("error", () => {}); // reported by the command that fails
  // Same name and prefix as the reaper's queue: only read here (completed and failed jobs).
  const queue = new Queue(QUEUE_NAME, { connection, prefix: `${config.REDIS_PREFIX}bull` });
  const driver = reaperDriver(config);
  try {
    console.log(await run(command, arg, { store, driver, queue }));
    return 0;
  } finally {
    await queue.close();
    connection.disconnect();
    await store.close();
    await driver.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError || error instanceof ConfigError) {
      console.error(error.message);
      process.exitCode = 2;
    } else {
      // OperatorError (unknown or ambiguous prefix), or Redis / the engine not answering.
      console.error(`mcp-broker: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 1;
    }
  },
);

import type { Duplex } from "node:stream";
import { closeBackendConnections, PER_USER_NETWORK } from "@mcp-broker/container-manager";
import { type Listening, listen } from "@mcp-broker/service-runtime";
import type { Logger } from "pino";
import { enginePolicyOf, type GuardConfig } from "./config.js";
import { Engine } from "./engine.js";
import { createGuard } from "./guard.js";

export interface RunningGuard {
  url: string;
  port: number;
  inFlight(): number;
  close(): Promise<void>;
}

const UPGRADE_REFUSED = JSON.stringify({ message: "refused by the engine guard: connection upgrades are not allowed" });

/**
 * Node hands requests that ask for a protocol upgrade (Docker's attach and exec hijack the
 * connection this way) to 'upgrade' listeners, not to the fetch handler: answer them here.
 */
function refuseUpgrade(socket: Duplex): void {
  socket.end(
    "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nConnection: close\r\n" +
      `Content-Length: ${Buffer.byteLength(UPGRADE_REFUSED)}\r\n\r\n${UPGRADE_REFUSED}`,
  );
}

/** Starts the guard on GUARD_HOST:GUARD_PORT in front of the engine socket; resolves once it listens. */
export async function startGuard(config: GuardConfig, logger: Logger): Promise<RunningGuard> {
  const engine = new Engine(config.GUARD_ENGINE_SOCKET);
  const guard = createGuard({ policy: enginePolicyOf(config), role: config.GUARD_ROLE, engine, log: logger });
  let listening: Listening;
  try {
    listening = await listen(guard, { port: config.GUARD_PORT, host: config.GUARD_HOST });
  } catch (error) {
    await engine.close();
    throw error;
  }
  // Backends have no route to the guard's network; should the host forward their packets anyway
  // (its isolation rules missing), the guard still serves no connection from the backend pool.
  if (config.GUARD_NETWORK === PER_USER_NETWORK) {
    listening.server.prependListener("connection", closeBackendConnections(config.GUARD_NETWORK_POOL));
  }
  listening.server.on("upgrade", (request, socket) => {
    logger.warn({ method: request.method, path: request.url?.split("?")[0] }, "connection upgrade refused");
    refuseUpgrade(socket);
  });
  return {
    url: listening.url,
    port: listening.port,
    inFlight: listening.inFlight,
    async close() {
      // Followed logs and pulls may stay open for long; give them a moment, then cut them.
      await listening.close(5000);
      await engine.close();
    },
  };
}

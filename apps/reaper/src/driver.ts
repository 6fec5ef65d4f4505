import type { ContainerDriver } from "@mcp-broker/container-manager";
import { DockerDriver, SwarmDriver } from "@mcp-broker/container-manager/docker";
import type { ReaperConfig } from "./config.js";

/**
 * The driver the reaper and the `mcp-broker` CLI use. They only list, inspect and remove
 * servers; image and limits are the gateway's concern.
 */
export function reaperDriver(
  config: Pick<ReaperConfig, "BACKEND_DRIVER" | "DEPLOYMENT_NAME"> &
    Partial<Pick<ReaperConfig, "BACKEND_NETWORK" | "BACKEND_PEER_CONTAINER">>,
): ContainerDriver {
  const deployment = config.DEPLOYMENT_NAME;
  if (config.BACKEND_DRIVER === "swarm") return new SwarmDriver({ deployment });
  // With per-user networks the reaper joins them (to end idle sessions) and prunes them; it creates none.
  const network = config.BACKEND_NETWORK ? { network: config.BACKEND_NETWORK } : {};
  const self = config.BACKEND_PEER_CONTAINER ? { self: config.BACKEND_PEER_CONTAINER } : {};
  return new DockerDriver({ deployment, ...network, ...self });
}

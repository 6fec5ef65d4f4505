import { type ContainerDriver, DockerDriver, SwarmDriver } from "@mcp-broker/container-manager";
import type { ReaperConfig } from "./config.js";

/**
 * The driver the reaper and the `mcp-broker` CLI use. They only list, inspect and remove
 * servers; image and limits are the gateway's concern.
 */
export function reaperDriver(config: Pick<ReaperConfig, "BACKEND_DRIVER" | "DEPLOYMENT_NAME">): ContainerDriver {
  const deployment = config.DEPLOYMENT_NAME;
  return config.BACKEND_DRIVER === "swarm" ? new SwarmDriver({ deployment }) : new DockerDriver({ deployment });
}

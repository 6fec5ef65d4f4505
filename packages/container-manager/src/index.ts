export { DockerDriver, type DockerDriverOptions, LABELS } from "./docker-driver.js";
export {
  type Backend,
  type ContainerDriver,
  DRIVER_DEFAULTS,
  type EnsureRequest,
  type ManagedContainer,
} from "./driver.js";
export {
  ContainerError,
  ContainerStartError,
  ContainerStartTimeoutError,
  DockerUnavailableError,
  ImageNotFoundError,
} from "./errors.js";
export {
  cancelMcpRequest,
  endMcpSession,
  initializeMcpSession,
  type McpEndpoint,
  UpstreamInitializeError,
} from "./mcp-client.js";
export { ProcessDriver, type ProcessDriverOptions } from "./process-driver.js";
export { answersMcp, waitUntilReady } from "./readiness.js";

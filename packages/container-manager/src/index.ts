// Everything but the Docker drivers, which load dockerode: `@mcp-broker/container-manager/docker`.
export {
  type BackendContainerSpec,
  backendCreateBody,
  brokerLabelFilter,
  HARDENING,
  LABELS,
} from "./backend-container.js";
export { isSpareUserId, spareUserId } from "./backend-identity.js";
export {
  candidateSubnets,
  closeBackendConnections,
  inCidr,
  isPoolSubnet,
  networkCreateBody,
  PEER_LABEL,
  PER_USER_NETWORK,
  parseCidr,
  SUBNET_POOL_DEFAULTS,
  type SubnetPool,
} from "./backend-network.js";
export {
  type Backend,
  type ContainerDriver,
  DRIVER_DEFAULTS,
  type DriverLog,
  type EnsureRequest,
  type ManagedContainer,
} from "./driver.js";
export {
  checkContainerName,
  checkCreate,
  type EnginePolicy,
  isAllowedImage,
  isBrokerContainer,
  normalizeImage,
} from "./engine-policy.js";
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
  type OpenedMcpSession,
  openMcpSession,
  readBodyCapped,
  requestMcp,
  UpstreamInitializeError,
} from "./mcp-client.js";
export { checkNetworkCreate, isBrokerNetwork, isPeerContainer, networkMember } from "./network-policy.js";
export { ProcessDriver, type ProcessDriverOptions } from "./process-driver.js";
export { answersMcp, waitUntilReady } from "./readiness.js";

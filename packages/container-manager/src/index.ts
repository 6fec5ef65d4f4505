export { DockerDriver, type DockerDriverOptions, LABELS } from "./docker-driver.js";
export type { Backend, ContainerDriver, EnsureRequest, ManagedContainer } from "./driver.js";
export {
  ContainerError,
  ContainerStartError,
  ContainerStartTimeoutError,
  DockerUnavailableError,
  ImageNotFoundError,
} from "./errors.js";
export { ProcessDriver, type ProcessDriverOptions } from "./process-driver.js";
export { answersMcp, waitUntilReady } from "./readiness.js";

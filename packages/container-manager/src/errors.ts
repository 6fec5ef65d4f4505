import { CodedError } from "@mcp-broker/service-runtime";

/** Every code a container error can carry: a closed set, so the gateway's `switch` over `code` is checked. */
export type ContainerErrorCode =
  | "DOCKER_UNAVAILABLE"
  | "IMAGE_NOT_FOUND"
  | "CONTAINER_START_TIMEOUT"
  | "CONTAINER_START_FAILED";

/** Base for the container manager's errors: callers branch on `code`, never on message text. */
export class ContainerError<Code extends ContainerErrorCode = ContainerErrorCode> extends CodedError<Code> {}

/** The Docker engine does not answer (socket missing, refused, timed out). Maps to 503. */
export class DockerUnavailableError extends ContainerError<"DOCKER_UNAVAILABLE"> {
  constructor(cause: unknown) {
    super("DOCKER_UNAVAILABLE", `Docker engine unavailable: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

/** The backend image is not present and could not be pulled. Maps to 503 naming the image. */
export class ImageNotFoundError extends ContainerError<"IMAGE_NOT_FOUND"> {
  constructor(
    readonly image: string,
    reason: string,
  ) {
    super("IMAGE_NOT_FOUND", `backend image ${image} is not available: ${reason}`);
  }
}

/** The server never answered on its MCP endpoint in time; it has been removed. Maps to 504. */
export class ContainerStartTimeoutError extends ContainerError<"CONTAINER_START_TIMEOUT"> {
  constructor(
    readonly target: string,
    readonly waitedMs: number,
  ) {
    super("CONTAINER_START_TIMEOUT", `${target} did not answer on its MCP endpoint within ${waitedMs} ms`);
  }
}

/** The server exited while starting; it has been removed. Maps to 502. */
export class ContainerStartError extends ContainerError<"CONTAINER_START_FAILED"> {
  constructor(
    readonly target: string,
    detail: string,
  ) {
    super("CONTAINER_START_FAILED", `${target} failed to start: ${detail}`);
  }
}

import type Docker from "dockerode";

/**
 * The labels that make a container this broker's: the reaper lists by them, and the engine
 * guard (apps/engine-guard) lets callers touch only containers that carry them.
 */
export const LABELS = {
  managed: "mcp-broker.managed",
  user: "mcp-broker.user",
  deployment: "mcp-broker.deployment",
} as const;

/** The label filter (Engine API `filters.label`) that selects one deployment's backends. */
export function brokerLabelFilter(deployment: string): string[] {
  return [`${LABELS.managed}=true`, `${LABELS.deployment}=${deployment}`];
}

/**
 * The isolation every backend gets, in the Engine API's own spelling. One definition for both
 * sides of the engine guard: `backendCreateBody` writes these, and `checkCreate`
 * (engine-policy.ts) refuses a create body that lacks or loosens any of them.
 */
export const HARDENING = Object.freeze({
  capDrop: Object.freeze(["ALL"]),
  securityOpt: Object.freeze(["no-new-privileges:true"]),
  /** A writable, non-executable /tmp for servers on a read-only root filesystem. */
  tmpfs: Object.freeze({ "/tmp": "rw,noexec,nosuid,size=64m" }),
  /** The broker restarts servers itself (on the next request); the engine must not. */
  restartPolicy: "no",
});

/** Everything that shapes one user's backend container. */
export interface BackendContainerSpec {
  image: string;
  userId: string;
  deployment: string;
  /** `NAME=value` entries, the user's key among them. */
  env: readonly string[];
  /** The port the MCP server listens on inside the container. */
  port: number;
  /** A network to attach to (addressed by name); without one the port is published on `publishHost`. */
  network?: string | undefined;
  publishHost: string;
  memoryBytes: number;
  nanoCpus: number;
  pidsLimit: number;
  /** `uid:gid`; "" keeps the image's own user (which the engine guard refuses). */
  user: string;
  readOnlyRootfs: boolean;
}

/** The `POST /containers/create` body of a backend (the name goes in the query): what the broker creates, defined once. */
export function backendCreateBody(spec: BackendContainerSpec): Docker.ContainerCreateOptions {
  const portKey = `${spec.port}/tcp`;
  return {
    Image: spec.image,
    Env: [...spec.env],
    Labels: { [LABELS.managed]: "true", [LABELS.user]: spec.userId, [LABELS.deployment]: spec.deployment },
    ExposedPorts: { [portKey]: {} },
    ...(spec.user ? { User: spec.user } : {}),
    HostConfig: {
      ...(spec.network
        ? { NetworkMode: spec.network }
        : { PortBindings: { [portKey]: [{ HostIp: spec.publishHost, HostPort: "" }] } }),
      Memory: spec.memoryBytes,
      NanoCpus: spec.nanoCpus,
      PidsLimit: spec.pidsLimit,
      CapDrop: [...HARDENING.capDrop],
      SecurityOpt: [...HARDENING.securityOpt],
      ReadonlyRootfs: spec.readOnlyRootfs,
      ...(spec.readOnlyRootfs ? { Tmpfs: { ...HARDENING.tmpfs } } : {}),
      RestartPolicy: { Name: HARDENING.restartPolicy },
    },
  };
}

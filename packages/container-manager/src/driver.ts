/** What a driver needs to give one user a running MCP server. */
export interface EnsureRequest {
  /** The broker's user id (an HMAC of the key): names and labels the server, never the key. */
  userId: string;
  /**
   * The user's API key, handed to the server only through its configured env variable; "" for
   * a spare of the warm pool, which learns each request's key from its key header.
   */
  apiKey: string;
}

/** A ready MCP server: where to send requests. */
export interface Backend {
  /** Docker container id, or `process:<pid>` for the process driver. */
  containerId: string;
  /** Full URL of the MCP endpoint, e.g. http://127.0.0.1:49153/mcp. */
  endpoint: string;
}

export interface ManagedContainer {
  id: string;
  userId: string;
  name: string;
  running: boolean;
  createdAt: number;
}

/**
 * Starts, finds, probes and stops per-user MCP servers. Implementations: DockerDriver
 * (one container per user), SwarmDriver (one Swarm service per user, across hosts) and
 * ProcessDriver (one local process per user, for hosts without Docker). `ensure` is
 * idempotent: concurrent calls for one user end with one server.
 */
/** How the drivers log (the gateway passes its pino logger through it). */
export type DriverLog = (level: "info" | "warn", message: string, fields?: Record<string, unknown>) => void;

export interface ContainerDriver {
  readonly kind: "docker" | "process" | "swarm";
  /** Creates or finds the user's server, starts it, and resolves once its MCP endpoint answers. */
  ensure(request: EnsureRequest): Promise<Backend>;
  /** Stops the server; a server already stopped or gone is not an error. */
  stop(containerId: string): Promise<void>;
  /** Removes the server (stopping it first); one already gone is not an error. */
  remove(containerId: string): Promise<void>;
  /** Every server this deployment manages, running or not. */
  listManaged(): Promise<ManagedContainer[]>;
  /** One server, or null when it does not exist. */
  inspect(containerId: string): Promise<ManagedContainer | null>;
  /** Start-up work before serving (DockerDriver `per-user`: join the backend networks that exist). */
  prepare?(): Promise<void>;
  /**
   * Makes this process able to reach `backend` if it could not (DockerDriver `per-user`: joins
   * the backend's network, which a replica misses when it was restarting as the network was
   * made); true when something changed, so a call that failed for it may go to the same server.
   */
  reach?(backend: Pick<Backend, "endpoint">): Promise<boolean>;
  /** Removes what backends leave behind besides themselves (DockerDriver `per-user`: their networks); the count removed. */
  pruneNetworks?(graceMs: number): Promise<number>;
  /** Resolves when the driver's engine answers (readiness checks). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

// Typed as plain strings and numbers (not `as const`): a driver's options replace any of them.
const defaults = {
  image: "ghcr.io/vortiago/mcp-outline:latest",
  port: 3000,
  path: "/mcp",
  keyEnv: "OUTLINE_API_KEY",
  deployment: "default",
  /** Container names are `<namePrefix>-<deployment>-<user id prefix>` (the engine guard checks it). */
  namePrefix: "mcpb",
  publishHost: "127.0.0.1",
  memoryBytes: 512 * 1024 * 1024,
  nanoCpus: 1_000_000_000,
  pidsLimit: 256,
  user: "1000:1000",
  readOnlyRootfs: false,
  pullMissing: true,
  readinessTimeoutMs: 30_000,
};
/**
 * The one home of the backend defaults: the drivers fall back to these, and the gateway's and
 * reaper's configuration schemas default their BACKEND_* and DEPLOYMENT_NAME variables to them.
 * Image, port, path and key variable are the Outline MCP server's; the limits suit one user.
 */
export const DRIVER_DEFAULTS: Readonly<typeof defaults> = Object.freeze(defaults);

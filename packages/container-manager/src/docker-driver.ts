import { inSpan } from "@mcp-broker/service-runtime";
import Docker from "dockerode";
import { backendCreateBody, brokerLabelFilter, LABELS } from "./backend-container.js";
import { backendEnv, backendName } from "./backend-identity.js";
import { PER_USER_NETWORK, SUBNET_POOL_DEFAULTS, type SubnetPool } from "./backend-network.js";
import { DockerNetworks } from "./docker-networks.js";
import {
  type Backend,
  type ContainerDriver,
  DRIVER_DEFAULTS,
  type DriverLog,
  type EnsureRequest,
  type ManagedContainer,
} from "./driver.js";
import { apiMessage, engine, logTail, pullImage, statusOf } from "./engine-api.js";
import { ContainerStartError, ContainerStartTimeoutError, ImageNotFoundError } from "./errors.js";
import { waitUntilReady } from "./readiness.js";

export { LABELS };

export interface DockerDriverOptions {
  docker?: Docker;
  /** The MCP server image (default: the Outline MCP server). */
  image?: string;
  /** Port and path the server's MCP endpoint listens on inside the container. */
  port?: number;
  path?: string;
  /** The env variable that carries the user's key into the server. */
  keyEnv?: string;
  /** Extra env for every server (e.g. OUTLINE_API_URL). */
  env?: Readonly<Record<string, string>>;
  /** Marks this deployment's containers, so two deployments on one engine never touch each other's. */
  deployment?: string;
  /** Container names are `<namePrefix>-<deployment>-<user id prefix>`: deterministic, so Docker refuses duplicates. */
  namePrefix?: string;
  /**
   * Attach servers to this network and address them by name (compose); else publish on
   * publishHost. `per-user`: each server on a network of its own (backend-network.ts), with a
   * subnet from `subnets`, and every peer container of the deployment connected to it.
   */
  network?: string;
  subnets?: SubnetPool;
  /** With `per-user`: this process's own container (its hostname in Docker), joined to backend networks. */
  self?: string;
  publishHost?: string;
  /** Hardening and limits; every one on by default. */
  memoryBytes?: number;
  nanoCpus?: number;
  pidsLimit?: number;
  /** `uid:gid` to run as; "" keeps the image's own user. */
  user?: string;
  readOnlyRootfs?: boolean;
  /** Pull a missing image (with progress logged); otherwise a missing image is an error at once. */
  pullMissing?: boolean;
  readinessTimeoutMs?: number;
  log?: DriverLog;
}

/** Backend networks younger than this are never pruned (`pruneNetworks`). */
const NETWORK_MIN_AGE_MS = 60_000;

/** One container per user, created on demand through the Docker Engine API (dockerode). */
export class DockerDriver implements ContainerDriver {
  readonly kind = "docker" as const;
  readonly docker: Docker;
  readonly #options: typeof DRIVER_DEFAULTS & DockerDriverOptions;
  /** Set with `network: per-user`. */
  readonly #networks: DockerNetworks | undefined;
  /** Settles once `prepare` has joined the existing backend networks (or failed to). */
  #joining: Promise<void> | undefined;

  constructor(options: DockerDriverOptions = {}) {
    this.#options = { ...DRIVER_DEFAULTS, ...options };
    this.docker = options.docker ?? new Docker();
    if (options.network === PER_USER_NETWORK) {
      this.#networks = new DockerNetworks(this.docker, {
        deployment: this.#options.deployment,
        subnets: options.subnets ?? SUBNET_POOL_DEFAULTS,
        self: options.self,
        log: options.log,
      });
    }
  }

  containerName(userId: string): string {
    return backendName(this.#options, userId);
  }

  async ping(): Promise<void> {
    await engine(() => this.docker.ping());
    // Not ready before joining the backend networks that exist (prepare): until then its calls
    // to those backends would fail to resolve them.
    await this.#joining;
  }

  async ensure({ userId, apiKey }: EnsureRequest): Promise<Backend> {
    const name = this.containerName(userId);
    await this.#networks?.ensure(name);
    const { container, info } = await inSpan("container create", () => this.#createStarted(name, userId, apiKey));
    const endpoint = this.#endpoint(info);
    const ready = await waitUntilReady(endpoint, {
      timeoutMs: this.#options.readinessTimeoutMs,
      checkAlive: async () => {
        const state = (await engine(() => container.inspect())).State;
        if (!state.Running && !state.Restarting) {
          const logs = await logTail(container, apiKey);
          await this.remove(container.id);
          throw new ContainerStartError(
            name,
            `exited with code ${state.ExitCode}${logs ? `; last output: ${logs}` : ""}`,
          );
        }
      },
    });
    if (!ready) {
      await this.remove(container.id);
      throw new ContainerStartTimeoutError(name, this.#options.readinessTimeoutMs);
    }
    return { containerId: info.Id, endpoint };
  }

  /** The user's container, found or created, and started. */
  async #createStarted(name: string, userId: string, apiKey: string) {
    const container = (await this.#find(name)) ?? (await this.#create(name, userId, apiKey));
    let info = await engine(() => container.inspect());
    if (!info.State.Running) {
      await engine(() => container.start()).catch((error) => {
        if (statusOf(error) !== 304) throw error; // 304: another caller started it first
      });
      info = await engine(() => container.inspect());
    }
    return { container, info };
  }

  async stop(containerId: string): Promise<void> {
    await engine(() => this.docker.getContainer(containerId).stop({ t: 5 })).catch((error) => {
      if (statusOf(error) !== 304 && statusOf(error) !== 404) throw error;
    });
  }

  async remove(containerId: string): Promise<void> {
    await engine(() => this.docker.getContainer(containerId).remove({ force: true })).catch((error) => {
      // 404: already gone; 409: removal already in progress elsewhere.
      if (statusOf(error) !== 404 && statusOf(error) !== 409) throw error;
    });
  }

  async listManaged(): Promise<ManagedContainer[]> {
    const list = await engine(() =>
      this.docker.listContainers({
        all: true,
        filters: { label: brokerLabelFilter(this.#options.deployment) },
      }),
    );
    return list.map((info) => ({
      id: info.Id,
      userId: info.Labels[LABELS.user] ?? "",
      name: (info.Names[0] ?? "").replace(/^\//, ""),
      running: info.State === "running",
      createdAt: info.Created * 1000,
    }));
  }

  async inspect(containerId: string): Promise<ManagedContainer | null> {
    try {
      const info = await engine(() => this.docker.getContainer(containerId).inspect());
      return {
        id: info.Id,
        userId: info.Config.Labels[LABELS.user] ?? "",
        name: info.Name.replace(/^\//, ""),
        running: info.State.Running,
        createdAt: Date.parse(info.Created),
      };
    } catch (error) {
      if (statusOf(error) === 404) return null;
      throw error;
    }
  }

  /** With `per-user`: joins this process to the backend networks that exist already (start-up). */
  async prepare(): Promise<void> {
    if (!this.#networks) return;
    const started = performance.now();
    const joining = this.#networks.join();
    // `ping` waits for it; a failure is reported here, once, and does not keep `ping` failing.
    this.#joining = joining.then(
      () => {},
      () => {},
    );
    const joined = await joining.finally(() => {
      this.#joining = undefined;
    });
    const ms = Math.round(performance.now() - started);
    if (joined) this.#options.log?.("info", "joined backend networks", { networks: joined, ms });
  }

  /** With `per-user`: joins the network of the backend at `endpoint` (named as the backend, its host). */
  async reach(backend: Pick<Backend, "endpoint">): Promise<boolean> {
    const host = new URL(backend.endpoint).hostname;
    // Only this deployment's backends have networks of their own (spares too: named alike).
    if (!this.#networks || !host.startsWith(backendName(this.#options, ""))) return false;
    return this.#networks.joinOne(host);
  }

  /**
   * With `per-user`: removes backend networks whose backend is gone (the reaper's sweep), none
   * younger than a minute whatever `graceMs` says: a network is made just before its container,
   * so a younger one may be a start under way (seen with ORPHAN_GRACE_SECONDS=0: a spare's
   * network pruned between the two steps).
   */
  async pruneNetworks(graceMs: number): Promise<number> {
    if (!this.#networks) return 0;
    const live = new Set((await this.listManaged()).map((container) => container.name));
    return this.#networks.prune(live, Math.max(graceMs, NETWORK_MIN_AGE_MS));
  }

  async close(): Promise<void> {}

  async #find(name: string): Promise<Docker.Container | null> {
    const container = this.docker.getContainer(name);
    try {
      const info = await engine(() => container.inspect());
      if (info.State.Dead || info.State.Status === "removing") {
        await this.remove(info.Id);
        return null;
      }
      return container;
    } catch (error) {
      if (statusOf(error) === 404) return null;
      throw error;
    }
  }

  async #create(
    name: string,
    userId: string,
    apiKey: string,
    pulled = false,
    retried = false,
  ): Promise<Docker.Container> {
    const o = this.#options;
    const body = backendCreateBody({
      image: o.image,
      userId,
      deployment: o.deployment,
      env: backendEnv(o.keyEnv, apiKey, o.env),
      port: o.port,
      network: o.network === PER_USER_NETWORK ? name : o.network,
      publishHost: o.publishHost,
      memoryBytes: o.memoryBytes,
      nanoCpus: o.nanoCpus,
      pidsLimit: o.pidsLimit,
      user: o.user,
      readOnlyRootfs: o.readOnlyRootfs,
    });
    try {
      // dockerode copies create options into the query string too, which would put the key in
      // every URL log between here and the engine; `_query`/`_body` (docker-modem) keep it in the body.
      const options = { _query: { name }, _body: body } as unknown as Docker.ContainerCreateOptions;
      return await engine(() => this.docker.createContainer(options));
    } catch (error) {
      const status = statusOf(error);
      if (status === 409) {
        // Another caller (this replica or another) created it first: Docker names are unique.
        const existing = await this.#find(name);
        if (existing) return existing;
        return this.#create(name, userId, apiKey, pulled, retried);
      }
      // The network was pruned between `ensure` and this create (a reaper sweep): make it again, once.
      if (status === 404 && this.#networks && /network/i.test(apiMessage(error)) && !retried) {
        await this.#networks.ensure(name);
        return this.#create(name, userId, apiKey, pulled, true);
      }
      if (status === 404 && !pulled) {
        await this.#pull();
        return this.#create(name, userId, apiKey, true, retried);
      }
      if (status === 404) throw new ImageNotFoundError(o.image, "not present after pulling");
      throw error;
    }
  }

  async #pull(): Promise<void> {
    const { image, pullMissing, log } = this.#options;
    if (!pullMissing) throw new ImageNotFoundError(image, "not present and pulling is off (BACKEND_PULL=false)");
    await pullImage(this.docker, image, log);
  }

  #endpoint(info: Docker.ContainerInspectInfo): string {
    const { port, path, network } = this.#options;
    if (network) return `http://${info.Name.replace(/^\//, "")}:${port}${path}`;
    const binding = info.NetworkSettings.Ports[`${port}/tcp`]?.[0];
    if (!binding?.HostPort) throw new ContainerStartError(info.Name, `port ${port} is not published`);
    const host = binding.HostIp && binding.HostIp !== "0.0.0.0" ? binding.HostIp : "127.0.0.1";
    return `http://${host}:${binding.HostPort}${path}`;
  }
}

import type Docker from "dockerode";
import { brokerLabelFilter } from "./backend-container.js";
import { candidateSubnets, networkCreateBody, PEER_LABEL, type SubnetPool } from "./backend-network.js";
import type { DriverLog } from "./driver.js";
import { apiMessage, engine, statusOf } from "./engine-api.js";
import { ContainerStartError } from "./errors.js";

export interface DockerNetworksOptions {
  deployment: string;
  subnets: SubnetPool;
  /** This process's own container (a gateway or the reaper), connected to every backend network it needs. */
  self?: string | undefined;
  log?: DriverLog | undefined;
}

/** How many connects or removals run at once when joining or pruning many networks. */
const PARALLEL = 8;

/**
 * The per-user backend networks of one deployment (backend-network.ts): each created with a
 * subnet of the pool, its peers connected, and removed once its backend is gone.
 */
export class DockerNetworks {
  constructor(
    private readonly docker: Docker,
    private readonly options: DockerNetworksOptions,
  ) {}

  /**
   * The backend network `name` exists and the peers are on it. A new network gets every peer
   * (the replicas running now; one that starts later joins by itself, `join`); an existing one
   * gets this process at least, which heals a replica that missed it.
   */
  async ensure(name: string): Promise<void> {
    if (await this.#create(name)) {
      const peers = await engine(() =>
        this.docker.listContainers({ filters: { label: [`${PEER_LABEL}=${this.options.deployment}`] } }),
      );
      const others = peers.map((peer) => peer.Id).filter((id) => !this.#isSelf(id));
      // Another replica that cannot be connected (stopping, restarting) heals itself later.
      await Promise.all(
        others.map((id) =>
          this.#connect(name, id).catch((error) =>
            this.options.log?.("warn", "peer not connected to backend network", {
              network: name,
              peer: id.slice(0, 12),
              err: apiMessage(error),
            }),
          ),
        ),
      );
    }
    if (this.options.self) await this.#connect(name, this.options.self);
  }

  /**
   * Connects this process to the backend network `name` if it is not on it yet: true when it
   * was not (a replica that missed the network's creation), false when it was, or when the
   * network is gone or this process has no container.
   */
  async joinOne(name: string): Promise<boolean> {
    const { self } = this.options;
    if (!self) return false;
    try {
      return await this.#connect(name, self);
    } catch (error) {
      if (statusOf(error) === 404) return false;
      throw error;
    }
  }

  /** Connects this process's container to every backend network (a replica that starts after backends did). */
  async join(): Promise<number> {
    const { self } = this.options;
    if (!self) return 0;
    const networks = await this.#list();
    await eachLimited(networks, PARALLEL, (network) => this.#connect(network.Name, self));
    return networks.length;
  }

  /**
   * Removes the backend networks whose backend is not among `live` (container names) and that
   * are older than `graceMs` (a gateway may be creating the backend right now): peers are
   * disconnected first, as the engine refuses to remove a network with endpoints.
   */
  async prune(live: ReadonlySet<string>, graceMs: number, now = Date.now()): Promise<number> {
    const stale = (await this.#list()).filter(
      (network) => !live.has(network.Name) && now - Date.parse(network.Created) >= graceMs,
    );
    let removed = 0;
    await eachLimited(stale, PARALLEL, async (entry) => {
      const network = this.docker.getNetwork(entry.Id);
      try {
        const info = await engine(() => network.inspect());
        const members = Object.keys((info as { Containers?: Record<string, unknown> }).Containers ?? {});
        await Promise.all(members.map((id) => engine(() => network.disconnect({ Container: id, Force: true }))));
        await engine(() => network.remove());
        removed++;
      } catch (error) {
        // 404: gone already; 403/409: a backend joined it meanwhile. Either way, not ours to remove now.
        if (![403, 404, 409].includes(statusOf(error) ?? 0)) throw error;
      }
    });
    return removed;
  }

  /** True when the network was created now, false when it existed. */
  async #create(name: string): Promise<boolean> {
    const { deployment, subnets } = this.options;
    for (const subnet of candidateSubnets(name, subnets)) {
      try {
        await engine(() => this.docker.createNetwork(networkCreateBody(name, deployment, subnet)));
        return true;
      } catch (error) {
        if (statusOf(error) === 409) return false; // "already exists": created before, or by another replica
        // "Pool overlaps with other one on this address space": that subnet is taken; try the next.
        if (statusOf(error) === 403 && /overlap/i.test(apiMessage(error))) continue;
        throw error;
      }
    }
    throw new ContainerStartError(name, `no free /${subnets.prefixLength} subnet left in ${subnets.pool}`);
  }

  /** True when connected now, false when it was connected before. */
  async #connect(network: string, container: string): Promise<boolean> {
    try {
      await engine(() => this.docker.getNetwork(network).connect({ Container: container }));
      return true;
    } catch (error) {
      // "endpoint with name ... already exists in network": connected before.
      if (statusOf(error) === 403 && /already exists/i.test(apiMessage(error))) return false;
      throw error;
    }
  }

  async #list(): Promise<Docker.NetworkInspectInfo[]> {
    return engine(() => this.docker.listNetworks({ filters: { label: brokerLabelFilter(this.options.deployment) } }));
  }

  #isSelf(id: string): boolean {
    const { self } = this.options;
    return self !== undefined && self.length >= 12 && id.startsWith(self);
  }
}

async function eachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

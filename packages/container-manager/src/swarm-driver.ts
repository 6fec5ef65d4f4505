import { setTimeout as sleep } from "node:timers/promises";
import Docker from "dockerode";
import { brokerLabelFilter, LABELS } from "./backend-container.js";
import { backendEnv, backendName, brokerLabels } from "./backend-identity.js";
import type { DockerDriverOptions } from "./docker-driver.js";
import {
  type Backend,
  type ContainerDriver,
  DRIVER_DEFAULTS,
  type EnsureRequest,
  type ManagedContainer,
} from "./driver.js";
import { apiMessage, engine, lastOutput, statusOf } from "./engine-api.js";
import { ContainerStartError, ContainerStartTimeoutError, ImageNotFoundError } from "./errors.js";
import { waitUntilReady } from "./readiness.js";
import { backendServiceSpec, isRunning, judgeTasks, lingers, type SwarmTask } from "./swarm-service.js";

/** The Docker driver's options (image, limits, user…), less those Swarm decides itself. */
export interface SwarmDriverOptions extends Omit<DockerDriverOptions, "network" | "publishHost" | "pullMissing"> {
  /** A client of a Swarm manager's engine. */
  docker?: Docker;
  /**
   * The attachable overlay network the gateways share: servers join it and are addressed by
   * name. Needed to start servers (the gateway's config insists); a reaper only lists and removes.
   */
  network?: string;
  /** What a node must have free to take a server (the limits are what it may use). */
  reserveMemoryBytes?: number;
  reserveNanoCpus?: number;
  /** Restarts Swarm makes after a crash (at least 1: Swarm reads 0 as "no limit"); then ensure starts it again. */
  restartAttempts?: number;
}

const SWARM_DEFAULTS = {
  ...DRIVER_DEFAULTS,
  reserveMemoryBytes: 64 * 1024 * 1024,
  reserveNanoCpus: 50_000_000,
  restartAttempts: 3,
};

/** A Swarm service name is one DNS label: at most 63 characters, no dots. */
const SERVICE_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$/;

type ServiceInfo = Docker.Service & { Spec: Docker.ServiceSpec & { TaskTemplate: Docker.ContainerTaskSpec } };

/**
 * One Swarm service per user, for a fleet of hosts (docs/architecture.md#swarm-and-sentinel).
 * The service keeps one replica of the user's MCP server somewhere in the swarm; the gateways
 * reach it by its name on an overlay network they share. A backend's id is its service id.
 */
export class SwarmDriver implements ContainerDriver {
  readonly kind = "swarm" as const;
  readonly docker: Docker;
  readonly #options: typeof SWARM_DEFAULTS & SwarmDriverOptions;

  constructor(options: SwarmDriverOptions) {
    this.#options = { ...SWARM_DEFAULTS, ...options };
    this.docker = options.docker ?? new Docker();
    const longest = this.serviceName("f".repeat(24));
    if (!SERVICE_NAME.test(longest)) throw new Error(`Swarm service names like ${longest} are not DNS labels`);
  }

  /** The Docker driver's container name, with dots (allowed in deployment names) made dashes. */
  serviceName(userId: string): string {
    return backendName(this.#options, userId).replaceAll(".", "-");
  }

  /** A manager-only call: an engine outside a swarm, or a worker, answers 503 (not ready). */
  async ping(): Promise<void> {
    await engine(() => this.docker.swarmInspect());
  }

  async ensure({ userId, apiKey }: EnsureRequest): Promise<Backend> {
    const name = this.serviceName(userId);
    let service = (await this.#find(name)) ?? (await this.#create(name, userId, apiKey));
    const tasks = await this.#tasks(service.ID);
    const replicas = service.Spec.Mode?.Replicated?.Replicas;
    if (replicas !== 1 || judgeTasks(tasks, this.#generation(service)).state === "failed") {
      service = await this.#restart(service, 1);
    }
    const endpoint = `http://${name}:${this.#options.port}${this.#options.path}`;
    const { readinessTimeoutMs } = this.#options;
    const deadline = Date.now() + readinessTimeoutMs;
    const ready =
      (await this.#untilRunning(service, apiKey, deadline)) &&
      (await waitUntilReady(endpoint, {
        timeoutMs: deadline - Date.now(),
        checkAlive: async () => void (await this.#failIfEnded(service, apiKey)),
      }));
    if (!ready) {
      await this.remove(service.ID);
      throw new ContainerStartTimeoutError(name, readinessTimeoutMs);
    }
    return { containerId: service.ID, endpoint };
  }

  /** Scales the service to zero: its task ends, the service (and its name) stays for ensure. */
  async stop(containerId: string): Promise<void> {
    const service = await this.#inspectService(containerId);
    if (service && service.Spec.Mode?.Replicated?.Replicas !== 0) await this.#restart(service, 0);
  }

  async remove(containerId: string): Promise<void> {
    await engine(() => this.docker.getService(containerId).remove()).catch((error) => {
      if (statusOf(error) !== 404) throw error;
    });
  }

  async listManaged(): Promise<ManagedContainer[]> {
    const [services, tasks] = await Promise.all([
      engine(() => this.docker.listServices({ filters: { label: brokerLabelFilter(this.#options.deployment) } })),
      // One call for every service's tasks (not one per service): the running ones say which run.
      engine(() => this.docker.listTasks({ filters: { "desired-state": ["running"] } }) as Promise<SwarmTask[]>),
    ]);
    const running = new Set(tasks.filter(isRunning).map((task) => task.ServiceID));
    return services.map((service) => this.#managed(service as ServiceInfo, running.has(service.ID)));
  }

  async inspect(containerId: string): Promise<ManagedContainer | null> {
    const service = await this.#inspectService(containerId);
    if (!service) return null;
    return this.#managed(service, (await this.#tasks(service.ID)).some(isRunning));
  }

  async close(): Promise<void> {}

  #managed(service: ServiceInfo, running: boolean): ManagedContainer {
    return {
      id: service.ID,
      userId: service.Spec.Labels?.[LABELS.user] ?? "",
      name: service.Spec.Name ?? "",
      running,
      createdAt: Date.parse(service.CreatedAt ?? ""),
    };
  }

  async #inspectService(idOrName: string): Promise<ServiceInfo | null> {
    try {
      return (await engine(() => this.docker.getService(idOrName).inspect())) as ServiceInfo;
    } catch (error) {
      if (statusOf(error) === 404) return null;
      throw error;
    }
  }

  async #find(name: string): Promise<ServiceInfo | null> {
    const service = await this.#inspectService(name);
    // Only this deployment's: a name is derived from the user id, but a foreign service may hold it.
    if (service && service.Spec.Labels?.[LABELS.deployment] !== this.#options.deployment) {
      throw new ContainerStartError(name, "a service of that name exists but is not this deployment's");
    }
    return service;
  }

  async #create(name: string, userId: string, apiKey: string): Promise<ServiceInfo> {
    const o = this.#options;
    if (!o.network) throw new ContainerStartError(name, "no overlay network to attach it to (BACKEND_NETWORK)");
    const body = backendServiceSpec({
      name,
      image: o.image,
      labels: brokerLabels(o.deployment, userId),
      env: backendEnv(o.keyEnv, apiKey, o.env),
      network: o.network,
      memoryBytes: o.memoryBytes,
      nanoCpus: o.nanoCpus,
      pidsLimit: o.pidsLimit,
      reserveMemoryBytes: o.reserveMemoryBytes,
      reserveNanoCpus: o.reserveNanoCpus,
      user: o.user,
      readOnlyRootfs: o.readOnlyRootfs,
      restartAttempts: o.restartAttempts,
    });
    try {
      // POST /services/create sends no query string, so the key in Env stays in the body.
      await engine(() => this.docker.createService(body));
      o.log?.("info", "backend service created", { service: name });
    } catch (error) {
      const status = statusOf(error);
      // 409: another caller (this gateway or another) created it first; names are unique in a swarm.
      if (status === 409) {
        const existing = await this.#find(name);
        if (existing) return existing;
        return this.#create(name, userId, apiKey);
      }
      // The engine checks the network, not the image, when a service is created.
      if (status === 404) throw new ContainerStartError(name, `network ${o.network}: ${apiMessage(error)}`);
      throw error;
    }
    const created = await this.#find(name);
    if (!created) return this.#create(name, userId, apiKey); // removed in between (a reaper)
    return created;
  }

  /**
   * Sets the replica count and starts a new generation of tasks (ForceUpdate + 1): for a stopped
   * service, or one whose restarts Swarm gave up on. A concurrent update of the same version loses
   * with "update out of sequence"; the winner did what this call would have, so it reads the result.
   */
  async #restart(service: ServiceInfo, replicas: number): Promise<ServiceInfo> {
    const spec = structuredClone(service.Spec);
    spec.Mode = { Replicated: { Replicas: replicas } };
    if (replicas > 0) spec.TaskTemplate.ForceUpdate = this.#generation(service) + 1;
    try {
      // `_query`/`_body` (docker-modem): dockerode would otherwise copy the spec, key and all,
      // into the URL of POST /services/{id}/update.
      const options = { _query: { version: service.Version?.Index }, _body: spec };
      await engine(() => this.docker.getService(service.ID).update(options));
    } catch (error) {
      if (!/out of sequence/i.test(apiMessage(error))) throw error;
    }
    const updated = await this.#inspectService(service.ID);
    if (!updated) throw new ContainerStartError(service.Spec.Name ?? service.ID, "removed while starting");
    return updated;
  }

  #generation(service: ServiceInfo): number {
    return service.Spec.TaskTemplate.ForceUpdate ?? 0;
  }

  async #tasks(serviceId: string): Promise<SwarmTask[]> {
    return engine(() => this.docker.listTasks({ filters: { service: [serviceId] } }) as Promise<SwarmTask[]>);
  }

  /**
   * Waits, before the first probe, for a task of this generation to run and for every task on
   * its way out under the same name to stop (`lingers`), so the name means this task alone.
   * Probing earlier would also be slow: an unknown name goes from Docker's DNS to the host's
   * resolvers. False when the deadline passes first.
   */
  async #untilRunning(service: ServiceInfo, apiKey: string, deadline: number): Promise<boolean> {
    const name = service.Spec.Name ?? service.ID;
    while (Date.now() < deadline) {
      // The name filter matches task names (`<service>.<slot>.<id>`) by prefix, removed services' too.
      const named = await engine(() => this.docker.listTasks({ filters: { name: [name] } }) as Promise<SwarmTask[]>);
      const own = named.filter((task) => task.ServiceID === service.ID);
      const state = await this.#failIfEnded(service, apiKey, own);
      if (state === "live" && !lingers(named, service.ID, this.#generation(service))) return true;
      await sleep(Math.min(200, Math.max(0, deadline - Date.now())));
    }
    return false;
  }

  /** A generation whose every task ended will not answer: say why, and remove it. */
  async #failIfEnded(service: ServiceInfo, apiKey: string, tasks?: SwarmTask[]): Promise<"live" | "starting"> {
    const verdict = judgeTasks(tasks ?? (await this.#tasks(service.ID)), this.#generation(service));
    if (verdict.state !== "failed") return verdict.state;
    const name = service.Spec.Name ?? service.ID;
    const output = verdict.imageMissing ? "" : await this.#logTail(service.ID, apiKey);
    await this.remove(service.ID);
    if (verdict.imageMissing) throw new ImageNotFoundError(this.#options.image, verdict.reason);
    throw new ContainerStartError(name, `${verdict.reason}${output ? `; last output: ${output}` : ""}`);
  }

  async #logTail(serviceId: string, secret: string): Promise<string> {
    try {
      const logs = await this.docker.getService(serviceId).logs({ stdout: true, stderr: true, tail: 5 });
      return lastOutput(logs as unknown as Buffer, secret);
    } catch (error) {
      this.#options.log?.("warn", "reading a failed backend's logs failed", { reason: apiMessage(error) });
      return "";
    }
  }
}

import type Docker from "dockerode";
import { HARDENING } from "./backend-container.js";

/** Everything that shapes one user's backend as a Swarm service. */
export interface BackendServiceSpec {
  name: string;
  image: string;
  labels: Record<string, string>;
  /** `NAME=value` entries, the user's key among them. */
  env: readonly string[];
  /** The overlay network the gateways share; the service is reached by name on it. */
  network: string;
  memoryBytes: number;
  nanoCpus: number;
  pidsLimit: number;
  /** What the scheduler must find free on a node: a fraction of the limits, so a node holds many idle users. */
  reserveMemoryBytes: number;
  reserveNanoCpus: number;
  /** `uid:gid`; "" keeps the image's own user. */
  user: string;
  readOnlyRootfs: boolean;
  /** Restarts Swarm makes after a crash before it gives up (ensure then starts it again). */
  restartAttempts: number;
}

const SECOND_NS = 1_000_000_000;
/** The 64 MiB of HARDENING.tmpfs; mode 1777 like any /tmp. */
const TMP = { SizeBytes: 64 * 1024 * 1024, Mode: 0o1777 };

/**
 * The `POST /services/create` body of a backend (Engine API 1.41, Docker 20.10).
 *
 * Hardening, against HARDENING (backend-container.ts) for containers:
 * - CapDrop ALL → `CapabilityDrop` (API ≥ 1.41): the bounding set is empty in the task.
 * - `User`, `ReadOnly`, memory, CPU and pids limits (`Limits.Pids`, API ≥ 1.41): as for containers.
 * - tmpfs /tmp: a `tmpfs` mount; 1.41 has only size and mode, and the engine mounts tmpfs
 *   `nosuid,nodev,noexec` by itself (checked in swarm-driver.test.ts).
 * - no-new-privileges: not in 1.41's ContainerSpec (`Privileges.NoNewPrivileges` came with
 *   API 1.46), and the engine drops the field. The empty bounding set keeps a setuid binary
 *   from gaining capabilities; what remains (becoming uid 0 inside the container) is closed by
 *   `"no-new-privileges": true` in each node's daemon.json
 *   (docs/architecture.md#swarm-and-sentinel).
 * - Restart policy: on-failure, a few attempts. Unlike a lone container, a service that
 *   stops is replaced by Swarm anyway, so a crash is retried there, and ensure takes over after.
 */
export function backendServiceSpec(spec: BackendServiceSpec): Docker.CreateServiceOptions {
  return {
    Name: spec.name,
    Labels: { ...spec.labels },
    TaskTemplate: {
      ContainerSpec: {
        Image: spec.image,
        Env: [...spec.env],
        ...(spec.user ? { User: spec.user } : {}),
        ReadOnly: spec.readOnlyRootfs,
        CapabilityDrop: [...HARDENING.capDrop],
        ...(spec.readOnlyRootfs ? { Mounts: [{ Type: "tmpfs", Target: "/tmp", Source: "", TmpfsOptions: TMP }] } : {}),
        StopGracePeriod: 5 * SECOND_NS,
      },
      Resources: {
        Limits: { MemoryBytes: spec.memoryBytes, NanoCPUs: spec.nanoCpus, Pids: spec.pidsLimit },
        Reservations: { MemoryBytes: spec.reserveMemoryBytes, NanoCPUs: spec.reserveNanoCpus },
      },
      // dockerode's type for this field is wrong (it has ConfigName only); these are the API's names.
      RestartPolicy: {
        Condition: "on-failure",
        Delay: SECOND_NS,
        MaxAttempts: Math.max(1, spec.restartAttempts), // 0 would mean "restart forever"
        Window: 60 * SECOND_NS,
      } as Docker.TaskRestartPolicy,
      Networks: [{ Target: spec.network }],
    },
    Mode: { Replicated: { Replicas: 1 } },
    // dnsrr: the service name resolves to its task's address. The default (a virtual IP through
    // IPVS) needs kernel support some hosts lack, where it answers "No route to host".
    EndpointSpec: { Mode: "dnsrr" },
  };
}

/** The fields of a task (`GET /tasks`) the driver reads. */
export interface SwarmTask {
  ServiceID: string;
  CreatedAt: string;
  DesiredState: string;
  Spec?: { ForceUpdate?: number };
  Status?: { State?: string; Err?: string; ContainerStatus?: { ContainerID?: string; ExitCode?: number } };
}

/** Swarm's task states up to and including running; after these a task never runs again. */
const LIVE_STATES = new Set([
  "new",
  "allocated",
  "pending",
  "assigned",
  "accepted",
  "preparing",
  "ready",
  "starting",
  "running",
]);

/** A task that runs or will: "ready" is the desired state of a restart waiting out its delay. */
export const isLive = (task: SwarmTask) =>
  LIVE_STATES.has(task.Status?.State ?? "") && (task.DesiredState === "running" || task.DesiredState === "ready");

export const isRunning = (task: SwarmTask) => task.Status?.State === "running" && task.DesiredState === "running";

/**
 * Whether a task on its way out still runs under the service's name, so the name may resolve to
 * it too (dnsrr answers with every task attached): one of an older generation of this service
 * (before a stop or a forced restart), or of a removed service of the same name, which Swarm
 * stops only after the removal returned. Until it has stopped, a client could reach either.
 */
export function lingers(tasks: readonly SwarmTask[], serviceId: string, generation: number): boolean {
  return tasks.some(
    (task) =>
      task.Status?.State === "running" &&
      (task.ServiceID === serviceId ? (task.Spec?.ForceUpdate ?? 0) !== generation : task.DesiredState === "remove"),
  );
}

/** Engine messages for a task that could not get its image (`docker service ps` shows them as "No such image: …"). */
const IMAGE_MISSING = /no such image|pull access denied|manifest unknown|repository does not exist/i;

export type TaskVerdict =
  | { state: "starting" | "live" }
  | { state: "failed"; reason: string; imageMissing: boolean; containerId?: string };

/**
 * Whether Swarm still means this task, or the one it will put in its place, to run. An ended task
 * keeps the desired state "running" until the restart supervisor has dealt with it: in one
 * transaction it sets "shutdown" and either creates the replacement or, out of attempts, gives up.
 */
const intended = (task: SwarmTask) => task.DesiredState === "running" || task.DesiredState === "ready";

/**
 * Judges a service's current generation of tasks (those started since its last forced update,
 * so failures ensure already handled do not count again): live while any task runs; starting
 * while one will, or while Swarm has yet to decide on an ended one (a killed task is "failed"
 * a moment before its replacement exists); failed once every one has ended and Swarm let it
 * be, which with on-failure restarts means Swarm gave up.
 */
export function judgeTasks(tasks: readonly SwarmTask[], generation: number): TaskVerdict {
  const current = tasks
    .filter((task) => (task.Spec?.ForceUpdate ?? 0) === generation)
    .sort((a, b) => Date.parse(b.CreatedAt) - Date.parse(a.CreatedAt));
  const rejected = current.find((task) => IMAGE_MISSING.test(task.Status?.Err ?? ""));
  if (rejected) return failure(rejected, true);
  if (current.some(isRunning)) return { state: "live" };
  if (current.length === 0 || current.some(intended)) return { state: "starting" };
  return failure(current[0] as SwarmTask, false);
}

function failure(task: SwarmTask, imageMissing: boolean): TaskVerdict {
  const status = task.Status;
  const exit = status?.ContainerStatus?.ExitCode;
  const reason = status?.Err ?? `task ${status?.State ?? "ended"}${exit === undefined ? "" : ` with code ${exit}`}`;
  const containerId = status?.ContainerStatus?.ContainerID;
  return { state: "failed", reason, imageMissing, ...(containerId ? { containerId } : {}) };
}

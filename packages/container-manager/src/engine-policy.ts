import { HARDENING, LABELS } from "./backend-container.js";
import { PER_USER_NETWORK, type SubnetPool } from "./backend-network.js";

/**
 * What a guarded Docker engine lets the broker create and touch: one deployment's backends,
 * shaped as `backendCreateBody` shapes them. The engine guard (apps/engine-guard) enforces it.
 */
export interface EnginePolicy {
  /** Images a backend may run, as the driver names them (`repo:tag` or `repo@digest`). */
  images: readonly string[];
  deployment: string;
  /** Container names must start with `<namePrefix>-<deployment>-` (the driver's names). */
  namePrefix: string;
  /** The MCP server's port inside the container: the only one exposed or published. */
  port: number;
  /**
   * "" means ports are published on `publishHost`; `per-user` (PER_USER_NETWORK): each backend
   * joins the network of its own name (backend-network.ts); otherwise backends join this network only.
   */
  network: string;
  /** With `per-user`: the subnets backend networks may take (default SUBNET_POOL_DEFAULTS). */
  subnets?: SubnetPool;
  publishHost: string;
  maxMemoryBytes: number;
  maxNanoCpus: number;
  maxPidsLimit: number;
}

type Check = (value: unknown, policy: EnginePolicy) => string | readonly string[] | undefined;

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);
const isStringArray = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every((item) => typeof item === "string");
const show = (value: unknown) => JSON.stringify(value)?.slice(0, 80) ?? String(value);

/** `repo` and `repo:latest` are one image to the engine; a digest reference stays as it is. */
export function normalizeImage(reference: string): string {
  if (reference.includes("@")) return reference;
  const lastSegment = reference.slice(reference.lastIndexOf("/") + 1);
  return lastSegment.includes(":") ? reference : `${reference}:latest`;
}

export function isAllowedImage(reference: string, policy: EnginePolicy): boolean {
  const wanted = normalizeImage(reference);
  return policy.images.some((image) => normalizeImage(image) === wanted);
}

/** Labelled as a backend of this deployment: the only containers a guarded caller may touch. */
export function isBrokerContainer(labels: unknown, policy: EnginePolicy): boolean {
  return isRecord(labels) && labels[LABELS.managed] === "true" && labels[LABELS.deployment] === policy.deployment;
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** A create's `name`: the driver's `<prefix>-<deployment>-<user id prefix>`, so no caller squats other names. */
export function checkContainerName(name: string, policy: EnginePolicy): string | undefined {
  const pattern = new RegExp(
    `^${escapeRegExp(`${policy.namePrefix}-${policy.deployment}-`)}[A-Za-z0-9][A-Za-z0-9_.-]*$`,
  );
  return pattern.test(name) ? undefined : `name ${show(name)} is not ${policy.namePrefix}-${policy.deployment}-<user>`;
}

/** Why the dangerous fields are refused, for the refusal message; every other unknown field is refused too. */
const FORBIDDEN: Readonly<Record<string, string>> = {
  Privileged: "a privileged container is root on the host",
  Binds: "host paths must not be mounted",
  Mounts: "host paths and volumes must not be mounted",
  Volumes: "volumes must not be mounted",
  VolumesFrom: "another container's mounts must not be shared",
  Devices: "host devices must not be exposed",
  DeviceRequests: "host devices must not be exposed",
  DeviceCgroupRules: "host devices must not be exposed",
  CapAdd: "no capability may be added",
  PidMode: "host namespaces must not be shared",
  IpcMode: "host namespaces must not be shared",
  UTSMode: "host namespaces must not be shared",
  UsernsMode: "host namespaces must not be shared",
  CgroupnsMode: "host namespaces must not be shared",
  Cgroup: "host namespaces must not be shared",
  CgroupParent: "the cgroup must be the engine's",
  Sysctls: "kernel parameters must not be changed",
  Runtime: "the container runtime must not be overridden",
  Isolation: "the isolation technology must not be overridden",
  OomKillDisable: "the memory limit must be enforced",
  MemorySwap: "the memory limit must be enforced",
  Ulimits: "the process limits must be the engine's",
  ExtraHosts: "name resolution must not be redirected",
  Links: "other containers must not be linked",
  NetworkingConfig: "a backend joins the configured network only",
  PublishAllPorts: "only the MCP port may be published",
  Entrypoint: "the image's command must not be replaced",
  Cmd: "the image's command must not be replaced",
};

/** Go's JSON decoder matches field names case-insensitively: `privileged` is Privileged to the engine. */
function checkFields(
  value: unknown,
  where: string,
  fields: Readonly<Record<string, Check>>,
  required: readonly string[],
  policy: EnginePolicy,
): string[] {
  if (!isRecord(value)) return [`${where || "body"} must be a JSON object`];
  const problems: string[] = [];
  for (const key of Object.keys(value)) {
    const check = Object.hasOwn(fields, key) ? fields[key] : undefined;
    if (!check) {
      const why =
        FORBIDDEN[key] ?? Object.entries(FORBIDDEN).find(([name]) => name.toLowerCase() === key.toLowerCase())?.[1];
      problems.push(`${where}${key} is not allowed${why ? `: ${why}` : " (not a field the broker sets)"}`);
      continue;
    }
    const found = check(value[key], policy);
    if (typeof found === "string") problems.push(`${where}${key}: ${found}`);
    else if (found) problems.push(...found);
  }
  for (const key of required) {
    if (!Object.hasOwn(value, key)) problems.push(`${where}${key} is required`);
  }
  return problems;
}

const limit =
  (max: (policy: EnginePolicy) => number): Check =>
  (value, policy) =>
    Number.isInteger(value) && (value as number) > 0 && (value as number) <= max(policy)
      ? undefined
      : `must be a whole number from 1 to ${max(policy)}, not ${show(value)}`;

const NO_NEW_PRIVILEGES = new Set(["no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"]);

const HOST_CONFIG: Readonly<Record<string, Check>> = {
  NetworkMode: (value, policy) => {
    const { network } = policy;
    // The guard also checks that it is the container's own name (guard.ts).
    if (network === PER_USER_NETWORK)
      return typeof value === "string" && !checkContainerName(value, policy)
        ? undefined
        : `must be the backend's own network, not ${show(value)}`;
    if (network) return value === network ? undefined : `must be ${show(network)}, not ${show(value)}`;
    return value === "default" || value === "bridge" ? undefined : `must be the default bridge, not ${show(value)}`;
  },
  PortBindings: (value, { network, port, publishHost }) => {
    if (network) return "ports are not published: backends are reached on the network";
    const bindings = isRecord(value) ? Object.entries(value) : [];
    const exact = bindings.every(
      ([key, list]) =>
        key === `${port}/tcp` &&
        Array.isArray(list) &&
        list.length === 1 &&
        isRecord(list[0]) &&
        Object.keys(list[0]).every((field) => field === "HostIp" || field === "HostPort") &&
        list[0].HostIp === publishHost &&
        (list[0].HostPort ?? "") === "",
    );
    return isRecord(value) && exact
      ? undefined
      : `only ${port}/tcp, on ${publishHost}, on a port the engine picks; not ${show(value)}`;
  },
  Memory: limit((policy) => policy.maxMemoryBytes),
  NanoCpus: limit((policy) => policy.maxNanoCpus),
  PidsLimit: limit((policy) => policy.maxPidsLimit),
  CapDrop: (value) =>
    isStringArray(value) && value.some((cap) => cap.toUpperCase() === "ALL") ? undefined : "must drop ALL",
  SecurityOpt: (value) =>
    isStringArray(value) && value.length > 0 && value.every((option) => NO_NEW_PRIVILEGES.has(option))
      ? undefined
      : `must be no-new-privileges and nothing else (no seccomp or AppArmor overrides), not ${show(value)}`,
  ReadonlyRootfs: (value) => (typeof value === "boolean" ? undefined : "must be true or false"),
  Tmpfs: (value) =>
    isRecord(value) &&
    Object.keys(value).length === Object.keys(HARDENING.tmpfs).length &&
    Object.entries(HARDENING.tmpfs).every(([path, options]) => value[path] === options)
      ? undefined
      : `only ${show(HARDENING.tmpfs)}`,
  RestartPolicy: (value) =>
    isRecord(value) &&
    Object.keys(value).every((key) => key === "Name" || key === "MaximumRetryCount") &&
    (value.Name === HARDENING.restartPolicy || value.Name === "") &&
    (value.MaximumRetryCount ?? 0) === 0
      ? undefined
      : `must be ${show({ Name: HARDENING.restartPolicy })}`,
};

function checkHostConfig(value: unknown, policy: EnginePolicy): string[] {
  const required = [
    "Memory",
    "NanoCpus",
    "PidsLimit",
    "CapDrop",
    "SecurityOpt",
    ...(policy.network ? ["NetworkMode"] : []),
  ];
  return checkFields(value, "HostConfig.", HOST_CONFIG, required, policy);
}

const CONFIG: Readonly<Record<string, Check>> = {
  // dockerode sends the name in the body too; the engine reads it from the query only.
  name: (value) => (typeof value === "string" ? undefined : "must be a string"),
  Image: (value, policy) =>
    typeof value === "string" && isAllowedImage(value, policy)
      ? undefined
      : `${show(value)} is not a backend image (${policy.images.join(", ")})`,
  Env: (value) =>
    isStringArray(value) && value.every((entry) => entry.includes("=")) ? undefined : "must be NAME=value strings",
  Labels: (value, policy) => {
    const user = isRecord(value) ? value[LABELS.user] : undefined;
    const exact =
      isRecord(value) &&
      Object.keys(value).length === 3 &&
      isBrokerContainer(value, policy) &&
      typeof user === "string" &&
      /^[A-Za-z0-9_-]{1,128}$/.test(user);
    return exact ? undefined : `must be exactly the broker's labels for deployment ${show(policy.deployment)}`;
  },
  ExposedPorts: (value, { port }) =>
    isRecord(value) &&
    Object.entries(value).every(
      ([key, spec]) => key === `${port}/tcp` && isRecord(spec) && Object.keys(spec).length === 0,
    )
      ? undefined
      : `only ${port}/tcp`,
  // A user name could be root inside the image (its /etc/passwd is the image author's): numbers only.
  User: (value) => {
    const match = typeof value === "string" ? /^(\d+)(?::(\d+))?$/.exec(value) : null;
    return match && Number(match[1]) !== 0 ? undefined : `must be a numeric non-root uid[:gid], not ${show(value)}`;
  },
  HostConfig: checkHostConfig,
};

/**
 * Every reason a `POST /containers/create` body is not one the broker would send; empty when
 * it is. An allow-list: any field the driver does not set is refused, whatever its value, so
 * a field added to the Engine API later cannot loosen isolation unnoticed.
 */
export function checkCreate(body: unknown, policy: EnginePolicy): string[] {
  return checkFields(body, "", CONFIG, ["Image", "Labels", "User", "HostConfig"], policy);
}

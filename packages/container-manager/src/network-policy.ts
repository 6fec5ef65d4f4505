import { LABELS } from "./backend-container.js";
import { isPoolSubnet, PEER_LABEL, SUBNET_POOL_DEFAULTS } from "./backend-network.js";
import { checkContainerName, type EnginePolicy } from "./engine-policy.js";

/**
 * What a guarded engine lets the broker do with networks under `BACKEND_NETWORK=per-user`:
 * create and remove the deployment's own backend networks, and connect only its peers (the
 * gateways, the reaper) to them. The engine guard (apps/engine-guard) enforces it.
 */

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);
const show = (value: unknown) => JSON.stringify(value)?.slice(0, 80) ?? String(value);

/** Labelled as a backend network of this deployment: the only networks a guarded caller may touch. */
export function isBrokerNetwork(labels: unknown, policy: EnginePolicy): boolean {
  return isRecord(labels) && labels[LABELS.managed] === "true" && labels[LABELS.deployment] === policy.deployment;
}

/** Labelled as one of this deployment's peers: the only containers that may join a backend network. */
export function isPeerContainer(labels: unknown, policy: EnginePolicy): boolean {
  return isRecord(labels) && labels[PEER_LABEL] === policy.deployment;
}

/** Fields of `networkCreateBody` (backend-network.ts) and what each must be; any other field is refused. */
function checkNetworkField(key: string, value: unknown, policy: EnginePolicy): string | undefined {
  const subnets = policy.subnets ?? SUBNET_POOL_DEFAULTS;
  switch (key) {
    case "Name":
      return typeof value === "string" ? checkContainerName(value, policy) : "must be a string";
    case "CheckDuplicate":
      return typeof value === "boolean" ? undefined : "must be true or false";
    case "Driver":
      return value === "bridge" ? undefined : `must be "bridge", not ${show(value)}`;
    case "Labels":
      return isRecord(value) && Object.keys(value).length === 2 && isBrokerNetwork(value, policy)
        ? undefined
        : `must be exactly the broker's labels for deployment ${show(policy.deployment)}`;
    case "IPAM": {
      const config = isRecord(value) ? value.Config : undefined;
      const exact =
        isRecord(value) &&
        Object.keys(value).every((field) => field === "Driver" || field === "Config") &&
        (value.Driver ?? "default") === "default" &&
        Array.isArray(config) &&
        config.length === 1 &&
        isRecord(config[0]) &&
        Object.keys(config[0]).length === 1 &&
        isPoolSubnet(config[0].Subnet, subnets);
      return exact ? undefined : `must be one /${subnets.prefixLength} subnet of ${subnets.pool}, not ${show(value)}`;
    }
    default:
      // Internal, Attachable, Ingress, Options (e.g. a bridge on a host interface), ConfigFrom...
      return "is not allowed (not a field the broker sets)";
  }
}

/** Every reason a `POST /networks/create` body is not a backend network the driver would create; empty when it is. */
export function checkNetworkCreate(body: unknown, policy: EnginePolicy): string[] {
  if (!isRecord(body)) return ["body must be a JSON object"];
  const problems = Object.entries(body).flatMap(([key, value]) => {
    const problem = checkNetworkField(key, value, policy);
    return problem ? [`${key}${problem.startsWith("is ") ? " " : ": "}${problem}`] : [];
  });
  for (const key of ["Name", "Driver", "Labels", "IPAM"]) {
    if (!Object.hasOwn(body, key)) problems.push(`${key} is required`);
  }
  return problems;
}

/**
 * A connect or disconnect body: `{ Container }` (and `Force` on disconnect), nothing else; an
 * `EndpointConfig` could pick addresses or aliases on the backend's network. The container
 * reference, or a reason.
 */
export function networkMember(
  body: unknown,
  action: "connect" | "disconnect",
): { ok: true; container: string; force: boolean } | { ok: false; reason: string } {
  const allowed = action === "connect" ? ["Container"] : ["Container", "Force"];
  if (!isRecord(body) || !Object.keys(body).every((key) => allowed.includes(key))) {
    return { ok: false, reason: `a ${action} body is ${allowed.join(" and ")} only` };
  }
  const { Container: container, Force: force = false } = body;
  if (typeof container !== "string" || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(container)) {
    return { ok: false, reason: "Container must be a container name or id" };
  }
  if (typeof force !== "boolean") return { ok: false, reason: "Force must be true or false" };
  return { ok: true, container, force };
}

import type { Socket } from "node:net";
import { LABELS } from "./backend-container.js";

/**
 * `BACKEND_NETWORK=per-user`: each backend alone on a bridge network of its own, named as the
 * container. Docker's isolation rules drop traffic between two bridge networks, so a backend
 * reaches neither another backend nor Redis nor the engine guard, while its bridge still routes
 * it out to its upstream (Outline). The broker's peers (the gateways, the reaper: containers
 * labelled `mcp-broker.peer=<deployment>`) are connected to each backend network.
 * docs/architecture.md#trust-boundaries.
 */
export const PER_USER_NETWORK = "per-user";

/** Marks the containers that are connected to every backend network of a deployment (compose sets it). */
export const PEER_LABEL = "mcp-broker.peer";

/**
 * Where backend subnets come from. Docker's default address pools hold about 31 bridge networks
 * (172.17–31/16 and 192.168/20 in /20s), so the driver names each subnet itself: a /27 (30
 * addresses: the backend, and up to 28 gateways and reapers) out of a /16 gives 2,048 networks.
 */
export interface SubnetPool {
  /** IPv4 CIDR, e.g. 10.213.0.0/16. */
  pool: string;
  /** Prefix length of each backend's subnet, e.g. 27. */
  prefixLength: number;
}

export const SUBNET_POOL_DEFAULTS: Readonly<SubnetPool> = Object.freeze({ pool: "10.213.0.0/16", prefixLength: 27 });

const toInt = (address: string): number | undefined => {
  const parts = address.split(".");
  if (parts.length !== 4 || !parts.every((part) => /^\d{1,3}$/.test(part) && Number(part) <= 255)) return undefined;
  return parts.reduce((value, part) => value * 256 + Number(part), 0);
};
const toAddress = (value: number) => [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join(".");

/** An IPv4 CIDR as its first address and size; undefined when it is not one (or not aligned). */
export function parseCidr(cidr: string): { base: number; bits: number } | undefined {
  const match = /^([\d.]+)\/(\d{1,2})$/.exec(cidr);
  const base = match ? toInt(match[1] as string) : undefined;
  const bits = Number(match?.[2]);
  if (base === undefined || !(bits >= 8 && bits <= 30) || base % 2 ** (32 - bits) !== 0) return undefined;
  return { base, bits };
}

/** Whether `address` (IPv4, or IPv4-mapped IPv6 as Node reports it) lies in `cidr`. */
export function inCidr(address: string, cidr: string): boolean {
  const range = parseCidr(cidr);
  const value = toInt(address.replace(/^::ffff:/, ""));
  return (
    range !== undefined &&
    value !== undefined &&
    Math.floor(value / 2 ** (32 - range.bits)) === Math.floor(range.base / 2 ** (32 - range.bits))
  );
}

/** Whether `subnet` is one of the pool's subnets: the right size, aligned, inside the pool. */
export function isPoolSubnet(subnet: unknown, { pool, prefixLength }: SubnetPool): boolean {
  const parsed = typeof subnet === "string" ? parseCidr(subnet) : undefined;
  return parsed?.bits === prefixLength && inCidr(toAddress(parsed.base), pool);
}

/**
 * The pool's subnets to try for one network, the first derived from its name (so replicas
 * starting different users rarely pick the same one); the engine refuses a subnet already in
 * use ("Pool overlaps"), and the driver takes the next.
 */
export function candidateSubnets(name: string, { pool, prefixLength }: SubnetPool, count = 64): string[] {
  const range = parseCidr(pool);
  if (!range || prefixLength < range.bits || prefixLength > 30)
    throw new Error(`bad subnet pool ${pool} /${prefixLength}`);
  const size = 2 ** (32 - prefixLength);
  const total = 2 ** (prefixLength - range.bits);
  let hash = 0;
  for (const char of name) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return Array.from(
    { length: Math.min(count, total) },
    (_, i) => `${toAddress(range.base + ((hash + i) % total) * size)}/${prefixLength}`,
  );
}

/** The labels of a backend network: the deployment's, so the guard and the reaper know it as the broker's. */
export function networkLabels(deployment: string): Record<string, string> {
  return { [LABELS.managed]: "true", [LABELS.deployment]: deployment };
}

/** The `POST /networks/create` body of a backend network: defined once, checked by the guard (network-policy.ts). */
export function networkCreateBody(name: string, deployment: string, subnet: string) {
  return {
    Name: name,
    CheckDuplicate: true,
    Driver: "bridge",
    Labels: networkLabels(deployment),
    IPAM: { Driver: "default", Config: [{ Subnet: subnet }] },
  };
}

/**
 * A `connection` listener for the servers of a peer (the gateway's port, the reaper's dashboard).
 * A peer sits on every backend's network, so a backend could open a connection to it there; and
 * to the peer's other addresses too, whenever the host forwards a packet between bridges that
 * Docker's isolation rules should have dropped (the peer then answers straight back over the
 * backend's network). No client of a peer comes from the pool, so a connection from a pool
 * address or to one is closed before a byte of it is read. Register it first (`prependListener`).
 */
export function closeBackendConnections(pool: string): (socket: Socket) => void {
  return (socket) => {
    if (inCidr(socket.localAddress ?? "", pool) || inCidr(socket.remoteAddress ?? "", pool)) socket.destroy();
  };
}

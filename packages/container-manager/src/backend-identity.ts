import { randomBytes } from "node:crypto";
import { LABELS } from "./backend-container.js";

/**
 * What makes a backend one user's, the same for a container (DockerDriver) and a Swarm service
 * (SwarmDriver): its name, its labels and its environment.
 */
export interface BackendIdentity {
  namePrefix: string;
  deployment: string;
}

/**
 * `<namePrefix>-<deployment>-<user id prefix>`: derived from the user id, so the engine (or the
 * Swarm manager) refuses a second backend of that name and concurrent starts end with one.
 * 24 hex characters of the HMAC are 96 bits: no two users meet.
 */
export function backendName({ namePrefix, deployment }: BackendIdentity, userId: string): string {
  return `${namePrefix}-${deployment}-${userId.slice(0, 24)}`;
}

/** The labels the reaper lists by and the engine guard checks (backend-container.ts `LABELS`). */
export function brokerLabels(deployment: string, userId: string): Record<string, string> {
  return { [LABELS.managed]: "true", [LABELS.user]: userId, [LABELS.deployment]: deployment };
}

/**
 * `NAME=value` entries: the user's key in `keyEnv` (none for a spare, whose key is ""), then the
 * operator's passthrough variables.
 */
export function backendEnv(keyEnv: string, apiKey: string, env: Readonly<Record<string, string>> = {}): string[] {
  const key = apiKey ? [`${keyEnv}=${apiKey}`] : [];
  return [...key, ...Object.entries(env).map(([name, value]) => `${name}=${value}`)];
}

/**
 * Spares of the warm pool are labelled and named as the user `spare-<random>`: the engine guard
 * accepts them as any backend, and no broker user id (lower-case hex) starts with it. Which
 * user a claimed spare serves lives in Redis (labels of a running container cannot change).
 */
const SPARE_PREFIX = "spare-";

export function spareUserId(): string {
  return `${SPARE_PREFIX}${randomBytes(9).toString("hex")}`;
}

export function isSpareUserId(userId: string): boolean {
  return userId.startsWith(SPARE_PREFIX);
}

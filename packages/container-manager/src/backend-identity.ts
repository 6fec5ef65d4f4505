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

/** `NAME=value` entries: the user's key in `keyEnv`, then the operator's passthrough variables. */
export function backendEnv(keyEnv: string, apiKey: string, env: Readonly<Record<string, string>> = {}): string[] {
  return [`${keyEnv}=${apiKey}`, ...Object.entries(env).map(([name, value]) => `${name}=${value}`)];
}

import type { BrokerSession, Route } from "./types.js";

/**
 * How a session and a route are stored as Redis hashes, both ways. The Lua scripts read and
 * write the same field names (`upstream`, `proto`, `lastUsed`, `containerId`, `state`).
 */

const toNumber = (value: string | undefined) => Number(value ?? 0);

/** A Redis flat field/value list (HGETALL inside Lua) as a record. */
export function fieldsOf(flat: string[]): Record<string, string> {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i] as string] = flat[i + 1] as string;
  return fields;
}

export function sessionHash(session: BrokerSession) {
  return {
    upstream: session.upstreamSessionId,
    // Absent when the client's token carries them: a live session then costs Redis less.
    ...(session.initializeParams == null ? {} : { init: JSON.stringify(session.initializeParams) }),
    proto: session.protocolVersion,
    created: session.createdAt,
    lastUsed: session.lastUsedAt,
  };
}

/** The session a hash holds, or null for an empty (missing) hash. */
export function sessionFrom(userId: string, id: string, fields: Record<string, string>): BrokerSession | null {
  if (!fields.upstream) return null;
  return {
    id,
    userId,
    upstreamSessionId: fields.upstream,
    initializeParams: JSON.parse(fields.init ?? "null"),
    protocolVersion: fields.proto ?? "",
    createdAt: toNumber(fields.created),
    lastUsedAt: toNumber(fields.lastUsed),
  };
}

export function routeHash(route: Route) {
  return {
    containerId: route.containerId,
    endpoint: route.endpoint,
    state: route.state,
    created: route.createdAt,
    lastUsed: route.lastUsedAt,
    ...(route.coldStartMs === undefined ? {} : { coldMs: Math.round(route.coldStartMs) }),
  };
}

/** The route a hash holds, or null for an empty (missing) hash. */
export function routeFrom(userId: string, fields: Record<string, string>): Route | null {
  if (!fields.containerId || !fields.endpoint) return null;
  return {
    userId,
    containerId: fields.containerId,
    endpoint: fields.endpoint,
    state: fields.state === "stopping" ? "stopping" : "ready",
    createdAt: toNumber(fields.created),
    lastUsedAt: toNumber(fields.lastUsed),
    ...(fields.coldMs === undefined ? {} : { coldStartMs: toNumber(fields.coldMs) }),
  };
}

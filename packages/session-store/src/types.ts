/** A session the broker issued to a client, mapped to the upstream server's session. */
export interface BrokerSession {
  id: string;
  userId: string;
  upstreamSessionId: string;
  /** The client's `initialize` params, replayed when the upstream session must be re-created. */
  initializeParams: unknown;
  protocolVersion: string;
  createdAt: number;
  lastUsedAt: number;
}

export type RouteState = "ready" | "stopping";

/** Where a user's MCP server runs. */
export interface Route {
  userId: string;
  containerId: string;
  endpoint: string;
  state: RouteState;
  createdAt: number;
  lastUsedAt: number;
  /** How long the gateway took to get this server ready (ms), when it recorded it. */
  coldStartMs?: number;
}

export interface ClaimedSession {
  userId: string;
  sessionId: string;
  /** Empty when the session's key had already expired by TTL. */
  upstreamSessionId: string;
  protocolVersion: string;
}

/** A managed container sweeps found without a route: since when, and in how many sweeps. */
export interface UnroutedMark {
  firstSeenAt: number;
  sweeps: number;
}

/** A route claimed for removal; its user's lock is held with `lockToken` until `finishRouteRemoval`. */
export interface ClaimedRoute {
  userId: string;
  containerId: string;
  endpoint: string;
  lockToken: string;
}

export type RateLimitVerdict = { allowed: true; remaining: number } | { allowed: false; retryAfterMs: number };

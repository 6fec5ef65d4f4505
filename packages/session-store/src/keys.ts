const part = {
  session: "s:",
  tombstone: "t:",
  pooled: "pool",
  route: "route",
  lock: "lock",
  auth: "auth",
  safeTools: "safe-tools",
  userSessions: "sessions",
  relayEvents: "ev:",
  relayState: "evs:",
  relayLease: "evl:",
} as const;
/** Joins user and session in a sessions index member; scripts split at the first one, and user ids are hex. */
const memberSeparator = ":";

/**
 * The Redis key layout; no other module and no Lua script spells a key. Every key of one user
 * carries the hash tag `{u:<user>}`, so a user's keys share one Redis Cluster slot; the idle
 * indexes are global.
 */
export function keyspace(prefix: string) {
  const userHead = `${prefix}{u:`;
  const userTail = "}:";
  const user = (userId: string) => `${userHead}${userId}${userTail}`;
  return {
    session: (userId: string, sessionId: string) => `${user(userId)}${part.session}${sessionId}`,
    /** Left by a client's DELETE, so the session's token is never revived (docs/architecture.md#sessions). */
    tombstone: (userId: string, sessionId: string) => `${user(userId)}${part.tombstone}${sessionId}`,
    pooled: (userId: string) => `${user(userId)}${part.pooled}`,
    /** The user's tools whose last `tools/list` annotations say a repeat is harmless. */
    safeTools: (userId: string) => `${user(userId)}${part.safeTools}`,
    route: (userId: string) => `${user(userId)}${part.route}`,
    lock: (userId: string) => `${user(userId)}${part.lock}`,
    auth: (userId: string) => `${user(userId)}${part.auth}`,
    /** The user's client sessions by creation time, for MAX_SESSIONS_PER_USER (oldest released first). */
    userSessions: (userId: string) => `${user(userId)}${part.userSessions}`,
    /** A session's server-to-client events, relayed from its upstream GET stream (a Redis Stream, bounded). */
    relayEvents: (userId: string, sessionId: string) => `${user(userId)}${part.relayEvents}${sessionId}`,
    /** The relay's bookkeeping: bytes held, last delivered entry, upstream session and event id, refusal. */
    relayState: (userId: string, sessionId: string) => `${user(userId)}${part.relayState}${sessionId}`,
    /** Which replica holds the session's upstream GET stream (owner token, expiry). */
    relayLease: (userId: string, sessionId: string) => `${user(userId)}${part.relayLease}${sessionId}`,
    rateLimitPrefix: `${prefix}rl`,
    sessionsIndex: `${prefix}idx:sessions`,
    routesIndex: `${prefix}idx:routes`,
    /** Backends being started, scored by when the reservation lapses: counted with the routes by MAX_BACKENDS. */
    backendStarts: `${prefix}idx:starting`,
    /** The MCP era a backend image speaks, and a legacy one's `initialize` result (BackendEras). */
    backendEra: (image: string) => `${prefix}era:${image}`,
    /**
     * The warm pool (docs/architecture.md#warm-pool): ready keyless spares, a list of
     * "<container id> <created ms> <endpoint>" entries taken from the head by a claim.
     */
    spares: `${prefix}pool:spares`,
    /** Spares being started, scored by when the reservation lapses: with `spares`, never above WARM_POOL_SIZE. */
    spareStarts: `${prefix}pool:starting`,
    /** Claimed spares: container id -> the user it now serves (its labels name the spare, not the user). */
    spareOwners: `${prefix}pool:owners`,
    /**
     * Ready spares' warm sessions: container id -> "<session id> <protocol version>", the
     * session the warm-up opened, which the claimant adopts as its pooled session.
     */
    spareSessions: `${prefix}pool:sessions`,
    /** Users with a request or stream in flight on some replica, scored by when the mark lapses: never reclaimed. */
    busyUsers: `${prefix}idx:busy`,
    /** Prefix of the per-client-IP limits (new-key starts, key verifications). */
    ipLimitPrefix: `${prefix}ip`,
    /**
     * Managed containers a sweep found without a route: container id -> "<first seen ms>:<sweeps>".
     * Bounded: the reaper drops the marks of containers the engine no longer lists.
     */
    unrouted: `${prefix}unrouted`,
    lockReleased: `${prefix}lock-released`,
    /** Recovery, revival and refusal counts of one minute (ms since epoch / 60000): event -> count, with a TTL. */
    events: (minute: number) => `${prefix}events:${minute}`,
    /** The sessions index member for a session. */
    sessionMember: (userId: string, sessionId: string) => `${userId}${memberSeparator}${sessionId}`,
    /**
     * The layout as trailing script arguments, for scripts that derive the keys of users they
     * find in an index; `lua/includes/keyLayout.lua` reads them in this order.
     */
    layout: [userHead, userTail, part.session, part.pooled, part.route, part.lock, memberSeparator] as const,
  };
}

export type Keyspace = ReturnType<typeof keyspace>;

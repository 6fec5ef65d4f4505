/**
 * The Redis key layout; no other module spells a key. Every key of one user carries the hash
 * tag `{u:<user>}`, so a user's keys share one Redis Cluster slot; the idle indexes are global.
 */
export function keyspace(prefix: string) {
  const user = (userId: string) => `${prefix}{u:${userId}}:`;
  return {
    prefix,
    /** Every key of one user starts with this (used by scripts that derive a user's keys). */
    user,
    session: (userId: string, sessionId: string) => `${user(userId)}s:${sessionId}`,
    pooled: (userId: string) => `${user(userId)}pool`,
    route: (userId: string) => `${user(userId)}route`,
    lock: (userId: string) => `${user(userId)}lock`,
    auth: (userId: string) => `${user(userId)}auth`,
    rateLimitPrefix: `${prefix}rl`,
    sessionsIndex: `${prefix}idx:sessions`,
    routesIndex: `${prefix}idx:routes`,
    lockReleased: `${prefix}lock-released`,
    /** The sessions index member for a session. */
    sessionMember: (userId: string, sessionId: string) => `${userId}:${sessionId}`,
  };
}

export type Keyspace = ReturnType<typeof keyspace>;

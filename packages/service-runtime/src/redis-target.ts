/** A sentinel's address, as `REDIS_SENTINELS` lists them. */
export interface SentinelAddress {
  host: string;
  port: number;
}

/**
 * Where the Redis every service shares is: one server at `url`, or, when `sentinels` is not
 * empty, whichever server those sentinels name as the master of `masterName` right now (the
 * URL then still gives the password, database and TLS, not the host).
 */
export interface RedisTarget {
  url: string;
  sentinels: readonly SentinelAddress[];
  masterName: string;
  sentinelPassword?: string;
}

/** The redis variables of a parsed configuration (`envFields.redis`). */
export interface RedisVariables {
  REDIS_URL: string;
  REDIS_SENTINELS: readonly SentinelAddress[];
  REDIS_MASTER_NAME: string;
  REDIS_SENTINEL_PASSWORD?: string | undefined;
}

/** Reads the redis variables every service's schema shares into one target. */
export function redisTarget(config: RedisVariables): RedisTarget {
  return {
    url: config.REDIS_URL,
    sentinels: config.REDIS_SENTINELS,
    masterName: config.REDIS_MASTER_NAME,
    ...(config.REDIS_SENTINEL_PASSWORD ? { sentinelPassword: config.REDIS_SENTINEL_PASSWORD } : {}),
  };
}

/** `host:port` or `[ipv6]:port`. */
const ADDRESS = /^(?:\[([^\]]+)\]|([^\s:[\]]+)):(\d{1,5})$/;

/** Parses one `host:port` entry; null when it is not one. */
export function parseSentinel(entry: string): SentinelAddress | null {
  const match = ADDRESS.exec(entry);
  const port = Number(match?.[3]);
  if (!match || port < 1 || port > 65535) return null;
  return { host: (match[1] ?? match[2]) as string, port };
}

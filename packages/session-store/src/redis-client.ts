import type { RedisTarget } from "@mcp-broker/service-runtime";
import { Redis, type RedisOptions } from "ioredis";

/**
 * A client of the shared Redis: the server at the target's URL, or, with sentinels, whichever
 * server they name as master. Every client the services make (the store's, the reaper's BullMQ
 * connections, their duplicates) comes from here, so each follows a failover the same way.
 */
// Without `replyMapping`: ioredis's constructor types it narrower than RedisOptions does, which
// exactOptionalPropertyTypes refuses; nothing here sets it.
type ClientOptions = Omit<RedisOptions, "replyMapping">;

export function createRedisClient(target: string | RedisTarget, options: ClientOptions): Redis {
  if (typeof target === "string" || target.sentinels.length === 0) {
    return new Redis(typeof target === "string" ? target : target.url, options);
  }
  // The URL still gives the password, database and TLS of the data nodes; its host is ignored.
  return new Redis(target.url, {
    ...options,
    sentinels: target.sentinels.map(({ host, port }) => ({ host, port })),
    name: target.masterName,
    ...(target.sentinelPassword ? { sentinelPassword: target.sentinelPassword } : {}),
    // Subscribes to the sentinels' +switch-master: a master that was demoted while still
    // reachable (a partition healing) is left at once, not after its first READONLY answer.
    failoverDetector: true,
  });
}

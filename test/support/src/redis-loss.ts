import { Redis } from "ioredis";

/**
 * Makes Redis lose its data, as a `FLUSHALL` or a failover that drops writes would: everything
 * (`FLUSHALL`, for a server of the test's own), or every key under `prefix` (a server other test
 * files share). Resolves to the number of keys removed under `prefix`, or 0 after a FLUSHALL.
 */
export async function loseRedisData(url: string, prefix?: string): Promise<number> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    if (prefix === undefined) {
      await redis.flushall();
      return 0;
    }
    let removed = 0;
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) removed += await redis.del(...keys);
    } while (cursor !== "0");
    return removed;
  } finally {
    redis.disconnect();
  }
}

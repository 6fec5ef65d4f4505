import { Redis } from "ioredis";
import { startRedis, type TestRedis } from "./redis.js";

describe("startRedis", () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis.stop();
  });

  it("gives a real Redis server that stores and expires keys", async () => {
    const client = new Redis(redis.url);
    try {
      await client.set(`${redis.prefix}k`, "v", "PX", 300);
      expect(await client.get(`${redis.prefix}k`)).toBe("v");
      const ttl = await client.pttl(`${redis.prefix}k`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(300);
      expect(await client.info("server")).toMatch(/redis_version:\d+/);
    } finally {
      client.disconnect();
    }
  });
});

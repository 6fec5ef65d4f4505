import { z } from "zod";
import { ConfigError, envFields, parseEnv } from "./config.js";
import { redisTarget } from "./redis-target.js";

const schema = z.object({ ...envFields.redis(2000) });

describe("the shared redis variables", () => {
  it("target REDIS_URL's server when no sentinels are set", () => {
    const config = parseEnv(schema, { REDIS_URL: "redis://cache:6379" });
    expect(redisTarget(config)).toEqual({ url: "redis://cache:6379", sentinels: [], masterName: "mymaster" });
  });

  it("read REDIS_SENTINELS as host:port entries, IPv6 in brackets, with the master name and password", () => {
    const config = parseEnv(schema, {
      REDIS_SENTINELS: "sentinel-1:26379, 10.0.0.2:26380,[::1]:26381",
      REDIS_MASTER_NAME: "broker",
      REDIS_SENTINEL_PASSWORD: "s3cret",
    });
    expect(redisTarget(config)).toEqual({
      url: "redis://127.0.0.1:6379",
      sentinels: [
        { host: "sentinel-1", port: 26379 },
        { host: "10.0.0.2", port: 26380 },
        { host: "::1", port: 26381 },
      ],
      masterName: "broker",
      sentinelPassword: "s3cret",
    });
  });

  it("name every entry of REDIS_SENTINELS that is not host:port", () => {
    const failure = (() => {
      try {
        parseEnv(schema, { REDIS_SENTINELS: "sentinel-1, good:26379, bad:99999" });
      } catch (error) {
        return error as ConfigError;
      }
    })();
    expect(failure).toBeInstanceOf(ConfigError);
    expect(failure?.problems).toEqual([
      'REDIS_SENTINELS: "sentinel-1" is not host:port',
      'REDIS_SENTINELS: "bad:99999" is not host:port',
    ]);
  });
});

import { ConfigError, loadConfig } from "./config.js";

const BASE = { KEY_HASH_SECRET: "key-hash-secret-0123456789", AUTH_VERIFY: "off" };

describe("session token configuration", () => {
  it("derives one session secret from KEY_HASH_SECRET when SESSION_SECRET is unset", () => {
    const config = loadConfig(BASE);
    expect(config.sessionSecrets).toHaveLength(1);
    expect(config.sessionSecrets[0]).not.toBe(BASE.KEY_HASH_SECRET);
    expect(loadConfig(BASE).sessionSecrets).toEqual(config.sessionSecrets); // stable across restarts and replicas
    expect(loadConfig({ ...BASE, KEY_HASH_SECRET: "another-secret-0123456789" }).sessionSecrets).not.toEqual(
      config.sessionSecrets,
    );
    expect(config.SESSION_MAX_AGE_SECONDS).toBe(30 * 24 * 3600);
  });

  it("takes SESSION_SECRET as a list, newest first, and refuses a short one", () => {
    const config = loadConfig({ ...BASE, SESSION_SECRET: "new-secret-0123456789, old-secret-0123456789" });
    expect(config.sessionSecrets).toEqual(["new-secret-0123456789", "old-secret-0123456789"]);
    expect(() => loadConfig({ ...BASE, SESSION_SECRET: "new-secret-0123456789,short" })).toThrow(ConfigError);
  });
});

describe("safe defaults", () => {
  const problems = (env: Record<string, string>) => {
    try {
      loadConfig(env);
      return [];
    } catch (error) {
      return (error as ConfigError).problems;
    }
  };

  it("needs AUTH_VERIFY_URL unless AUTH_VERIFY=off is chosen", () => {
    expect(problems({ KEY_HASH_SECRET: BASE.KEY_HASH_SECRET })).toEqual([
      "AUTH_VERIFY_URL: is required (or set AUTH_VERIFY=off to accept every well-formed key)",
    ]);
    expect(problems({ KEY_HASH_SECRET: BASE.KEY_HASH_SECRET, AUTH_VERIFY_URL: "http://auth/api/auth.info" })).toEqual(
      [],
    );
  });

  it("refuses demo secrets in production, naming each", () => {
    const demo = { ...BASE, NODE_ENV: "production", KEY_HASH_SECRET: "change-me-please-0123456789" };
    expect(problems({ ...demo, SESSION_SECRET: "example-secret-0123456789" })).toEqual([
      "KEY_HASH_SECRET: is a demo value; NODE_ENV=production needs a secret of your own",
      "SESSION_SECRET: is a demo value; NODE_ENV=production needs a secret of your own",
    ]);
    expect(problems({ ...demo, NODE_ENV: "development" })).toEqual([]);
  });
});

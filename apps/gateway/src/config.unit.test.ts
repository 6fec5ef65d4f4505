import { ConfigError, loadConfig } from "./config.js";

const BASE = { KEY_HASH_SECRET: "key-hash-secret-0123456789" };

describe("session token configuration", () => {
  it("derives one session secret from KEY_HASH_SECRET when SESSION_SECRET is unset", () => {
    const config = loadConfig(BASE);
    expect(config.sessionSecrets).toHaveLength(1);
    expect(config.sessionSecrets[0]).not.toBe(BASE.KEY_HASH_SECRET);
    expect(loadConfig(BASE).sessionSecrets).toEqual(config.sessionSecrets); // stable across restarts and replicas
    expect(loadConfig({ KEY_HASH_SECRET: "another-secret-0123456789" }).sessionSecrets).not.toEqual(
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

import { readKey, userIdFor } from "./auth.js";

const config = {
  KEY_HASH_SECRET: "s".repeat(16),
  API_KEY_HEADER: "X-Outline-API-Key",
  API_KEY_PATTERN: /^[A-Za-z0-9_.~+/=-]{8,512}$/,
  RATE_LIMIT_PER_MINUTE: 0,
};

describe("API key reading and hashing", () => {
  const headers = (values: Record<string, string>) => (name: string) =>
    Object.entries(values).find(([key]) => key.toLowerCase() === name.toLowerCase())?.[1];

  it("reads the configured header first, then Authorization: Bearer", () => {
    expect(readKey(config, headers({ "x-outline-api-key": "ol_api_a" }))).toBe("ol_api_a");
    expect(readKey(config, headers({ authorization: "Bearer ol_api_b" }))).toBe("ol_api_b");
    expect(readKey(config, headers({ "X-Outline-API-Key": "ol_api_a", authorization: "Bearer b" }))).toBe("ol_api_a");
    expect(readKey(config, headers({ authorization: "Basic abc" }))).toBeUndefined();
    expect(readKey(config, headers({}))).toBeUndefined();
  });

  it("hashes keys with the secret: stable, distinct per key and per secret, never the key", () => {
    const id = userIdFor(config.KEY_HASH_SECRET, "ol_api_key_1");
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect(userIdFor(config.KEY_HASH_SECRET, "ol_api_key_1")).toBe(id);
    expect(userIdFor(config.KEY_HASH_SECRET, "ol_api_key_2")).not.toBe(id);
    expect(userIdFor("another-secret-value", "ol_api_key_1")).not.toBe(id);
    expect(id).not.toContain("ol_api_key_1");
  });
});

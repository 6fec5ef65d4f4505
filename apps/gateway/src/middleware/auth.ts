import { createHmac } from "node:crypto";
import type { SessionStore } from "@mcp-broker/session-store";
import type { MiddlewareHandler } from "hono";
import { request } from "undici";
import type { GatewayConfig } from "../config.js";
import { type GatewayEnv, requestHeader, type User } from "../env.js";
import { GatewayError } from "../errors.js";

export type AuthConfig = Pick<
  GatewayConfig,
  "KEY_HASH_SECRET" | "API_KEY_HEADER" | "API_KEY_PATTERN" | "AUTH_VERIFY_URL" | "RATE_LIMIT_PER_MINUTE"
>;

export function userIdFor(secret: string, key: string): string {
  return createHmac("sha256", secret).update(key).digest("hex");
}

/** Reads the key from the configured header, else `Authorization: Bearer`. */
export function readKey(config: AuthConfig, header: (name: string) => string | undefined): string | undefined {
  const direct = header(config.API_KEY_HEADER)?.trim();
  if (direct) return direct;
  const bearer = /^Bearer[ \t]+(.+)$/i.exec(header("authorization") ?? "")?.[1]?.trim();
  return bearer || undefined;
}

/** Asks the upstream service (Outline `POST /api/auth.info`) whether the key is valid. */
async function verifyUpstream(url: string, key: string): Promise<boolean> {
  try {
    const response = await request(url, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json", accept: "application/json" },
      body: "{}",
      headersTimeout: 5000,
      bodyTimeout: 5000,
    });
    await response.body.dump();
    if (response.statusCode >= 200 && response.statusCode < 300) return true;
    if (response.statusCode === 401 || response.statusCode === 403) return false;
    throw new Error(`status ${response.statusCode}`);
  } catch (error) {
    throw new GatewayError("AUTH_UNAVAILABLE", (error as Error).message, { cause: error });
  }
}

/**
 * Authenticates every /mcp request: key present and well-formed, optionally verified upstream
 * (verdict cached in Redis), then rate-limited per key. Sets `user` for the routes.
 */
export function authenticate(config: AuthConfig, store: SessionStore): MiddlewareHandler<GatewayEnv> {
  return async (c, next) => {
    const key = readKey(config, (name) => requestHeader(c, name));
    if (!key) throw new GatewayError("UNAUTHORIZED_MISSING", config.API_KEY_HEADER);
    if (!config.API_KEY_PATTERN.test(key)) throw new GatewayError("UNAUTHORIZED_MALFORMED", config.API_KEY_HEADER);

    const id = userIdFor(config.KEY_HASH_SECRET, key);
    const user: User = { id, key, tag: id.slice(0, 12) };
    c.set("user", user);
    c.set("log", c.get("log").child({ user: user.tag }));

    if (config.AUTH_VERIFY_URL) {
      let valid = await store.getAuthVerdict(id);
      if (valid === null) {
        valid = await verifyUpstream(config.AUTH_VERIFY_URL, key);
        await store.setAuthVerdict(id, valid);
      }
      if (!valid) throw new GatewayError("UNAUTHORIZED_REJECTED");
    }

    if (config.RATE_LIMIT_PER_MINUTE > 0) {
      const verdict = await store.consumeRateLimit(id);
      if (!verdict.allowed) {
        const retryAfter = Math.max(1, Math.ceil(verdict.retryAfterMs / 1000));
        throw new GatewayError("RATE_LIMITED", String(retryAfter));
      }
    }
    await next();
  };
}

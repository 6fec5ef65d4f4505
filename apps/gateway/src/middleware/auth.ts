import { createHmac } from "node:crypto";
import type { SessionStore } from "@mcp-broker/session-store";
import type { MiddlewareHandler } from "hono";
import type { GatewayConfig } from "../config.js";
import { type GatewayEnv, requestHeader, type User } from "../env.js";
import { GatewayError } from "../errors.js";
import { lazyChild } from "../request-log.js";
import { clientIp } from "./client-ip.js";
import { KeyVerifier, type VerifierConfig } from "./key-verifier.js";

export type AuthConfig = Pick<
  GatewayConfig,
  "KEY_HASH_SECRET" | "API_KEY_HEADER" | "API_KEY_PATTERN" | "RATE_LIMIT_PER_MINUTE" | "TRUST_PROXY"
> &
  VerifierConfig;

export function userIdFor(secret: string, key: string): string {
  return createHmac("sha256", secret).update(key).digest("hex");
}

/** Reads the key from the configured header, else `Authorization: Bearer`. */
export function readKey(
  config: Pick<AuthConfig, "API_KEY_HEADER">,
  header: (name: string) => string | undefined,
): string | undefined {
  const direct = header(config.API_KEY_HEADER)?.trim();
  if (direct) return direct;
  const bearer = /^Bearer[ \t]+(.+)$/i.exec(header("authorization") ?? "")?.[1]?.trim();
  return bearer || undefined;
}

/**
 * The user ids of the keys this replica saw lately: an HMAC per request was about 7% of the
 * gateway's CPU on the warm path (bench/src/profile.mjs). Bounded; cleared whole when full. The
 * keys stay in this process's memory only, where every request's headers carry them anyway.
 */
function userIdCache(secret: string, max = 10_000): (key: string) => string {
  const ids = new Map<string, string>();
  return (key) => {
    let id = ids.get(key);
    if (id === undefined) {
      if (ids.size >= max) ids.clear();
      id = userIdFor(secret, key);
      ids.set(key, id);
    }
    return id;
  };
}

/** Charges `count` requests against the user's per-minute budget (a batch: one per message). */
export async function chargeRequests(
  config: Pick<GatewayConfig, "RATE_LIMIT_PER_MINUTE">,
  store: SessionStore,
  user: User,
  count: number,
): Promise<void> {
  if (config.RATE_LIMIT_PER_MINUTE <= 0 || count <= 0) return;
  const verdict = await store.consumeRateLimit(user.id, count);
  if (!verdict.allowed)
    throw new GatewayError("RATE_LIMITED", String(Math.max(1, Math.ceil(verdict.retryAfterMs / 1000))));
}

/**
 * Authenticates every /mcp request: key present and well-formed, verified upstream unless
 * AUTH_VERIFY=off (verdict cached in Redis, one call per new key, a per-IP budget in front),
 * then rate-limited per key. Sets `user` for the routes.
 */
export function authenticate(config: AuthConfig, store: SessionStore): MiddlewareHandler<GatewayEnv> {
  const verifier = new KeyVerifier(config, store);
  const idOf = userIdCache(config.KEY_HASH_SECRET);
  return async (c, next) => {
    const key = readKey(config, (name) => requestHeader(c, name));
    if (!key) throw new GatewayError("UNAUTHORIZED_MISSING", config.API_KEY_HEADER);
    if (!config.API_KEY_PATTERN.test(key)) throw new GatewayError("UNAUTHORIZED_MALFORMED", config.API_KEY_HEADER);

    const id = idOf(key);
    const user: User = { id, key, tag: id.slice(0, 12), ip: clientIp(c.env.incoming, config.TRUST_PROXY) };
    c.set("user", user);
    const requestLog = c.get("log");
    c.set(
      "log",
      lazyChild(requestLog, () => ({ user: user.tag })),
    );

    // The key's own budget first: a flood with one key costs one Redis call per request, not a verification.
    await chargeRequests(config, store, user, 1);
    await verifier.check(user);
    await next();
  };
}

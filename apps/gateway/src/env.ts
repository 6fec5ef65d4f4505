import type { HttpBindings } from "@hono/node-server";
import type { Logger } from "pino";

/** Who made the request: set by the auth middleware. The key itself is only ever forwarded. */
export interface User {
  /** HMAC-SHA256(KEY_HASH_SECRET, key), hex: the only identity Redis and the logs see. */
  id: string;
  key: string;
  /** A short prefix of `id` for log lines. */
  tag: string;
  /** The client's address (per-IP limits): the socket's, or the first X-Forwarded-For hop with TRUST_PROXY. */
  ip: string;
}

/** Hono's context variables for the gateway's routes. */
export interface GatewayEnv {
  /** @hono/node-server passes the Node request and response: the gateway watches the socket. */
  Bindings: HttpBindings;
  Variables: {
    user: User;
    log: Logger;
    requestId: string;
  };
}

/**
 * A request header read straight from Node's parsed headers. Hono's `c.req.header()` goes
 * through a web `Request`, which @hono/node-server builds lazily; the gateway never needs one.
 */
export function requestHeader(c: { env: HttpBindings }, name: string): string | undefined {
  const value = c.env.incoming.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

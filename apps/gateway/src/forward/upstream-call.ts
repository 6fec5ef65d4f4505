import type { IncomingHttpHeaders } from "node:http";
import { readBodyCapped as readCapped } from "@mcp-broker/container-manager";
import { Agent, buildConnector, type Dispatcher, request } from "undici";
import { GatewayError } from "../errors.js";
import type { ClientGone } from "./client-request.js";

/** Hosts this replica made sure it can reach (`beforeConnect` resolved), at most this many remembered. */
const REACHED_HOSTS = 10_000;

/**
 * One pool per upstream origin, kept alive: a warm request costs no TCP handshake.
 * `beforeConnect` runs once per host before this replica's first connection to it (the driver's
 * `reach`: with per-user networks, joining the backend's network when this replica missed it),
 * so a missed network costs one engine call instead of a failed name lookup, which without an
 * upstream DNS server took 40 s here before it failed.
 */
export function createDispatcher(beforeConnect?: (hostname: string) => Promise<unknown>): Agent {
  const options = { keepAliveTimeout: 30_000, keepAliveMaxTimeout: 120_000, connections: 256 };
  if (!beforeConnect) return new Agent(options);
  const connector = buildConnector({});
  const reached = new Set<string>();
  const connect: buildConnector.connector = (connectOptions, callback) => {
    const { hostname } = connectOptions;
    if (reached.has(hostname)) return connector(connectOptions, callback);
    beforeConnect(hostname).then(
      () => {
        if (reached.size >= REACHED_HOSTS) reached.clear();
        reached.add(hostname);
        connector(connectOptions, callback);
      },
      // Not fatal: the connection is tried anyway, and fails or succeeds on its own.
      () => connector(connectOptions, callback),
    );
  };
  return new Agent({ ...options, connect });
}

export interface UpstreamRequest {
  endpoint: string;
  method: "GET" | "POST" | "DELETE";
  headers: Record<string, string>;
  body?: string;
  signal?: ClientGone;
  /** Longest wait for response headers, and for each next chunk of the body (0: forever). */
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  /** MAX_UPSTREAM_BODY_BYTES: the most of an answer the gateway reads into memory. */
  maxBodyBytes: number;
}

/** An upstream answer; `body` is a string once the gateway had to read it (to classify or rewrite it). */
export interface UpstreamAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Dispatcher.ResponseData["body"] | string;
}

/**
 * One request to the user's server through the shared keep-alive pool. A throw means no
 * answer came; forward/failures.ts says what kind of "no answer" it was.
 */
export function callUpstream(dispatcher: Dispatcher, call: UpstreamRequest): Promise<Dispatcher.ResponseData> {
  return request(call.endpoint, {
    dispatcher,
    method: call.method,
    headers: call.headers,
    body: call.body ?? null,
    signal: call.signal ?? null,
    headersTimeout: call.headersTimeoutMs,
    bodyTimeout: call.bodyTimeoutMs,
  });
}

/**
 * An upstream body read whole (to classify a failure or restore ids), refused past `limit`
 * bytes: a server answering without end must not exhaust the gateway's memory.
 */
export const readBodyCapped = (body: Dispatcher.ResponseData["body"], limit: number): Promise<string> =>
  readCapped(body, limit, () => new GatewayError("UPSTREAM_TOO_LARGE", String(limit)));

import type { IncomingHttpHeaders } from "node:http";
import { readBodyCapped as readCapped } from "@mcp-broker/container-manager";
import { Agent, type Dispatcher, request } from "undici";
import { GatewayError } from "../errors.js";
import type { ClientGone } from "./client-request.js";

export function createDispatcher(): Agent {
  // One pool per upstream origin, kept alive: a warm request costs no TCP handshake.
  return new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 120_000, connections: 256 });
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

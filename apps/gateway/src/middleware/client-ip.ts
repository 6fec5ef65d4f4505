import type { IncomingMessage } from "node:http";

/**
 * The address per-IP limits count against: the socket's peer, or, behind a balancer that sets
 * it (TRUST_PROXY=true), the first X-Forwarded-For hop. Never trusted otherwise: any client can
 * send the header, and would pick a fresh address per request.
 */
export function clientIp(incoming: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const header = incoming.headers["x-forwarded-for"];
    const first = (Array.isArray(header) ? header[0] : header)?.split(",")[0]?.trim();
    if (first) return first;
  }
  return incoming.socket.remoteAddress ?? "unknown";
}

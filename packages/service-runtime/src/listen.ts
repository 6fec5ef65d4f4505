import type { Server } from "node:http";
import { serve } from "@hono/node-server";

/** A fetch handler, as `Hono#fetch` is; @hono/node-server passes the Node request and response as its env. */
export type FetchHandler = Parameters<typeof serve>[0]["fetch"];

export interface Listening {
  /** `http://host:port` with a wildcard host replaced by 127.0.0.1, for links and tests. */
  url: string;
  port: number;
  server: Server;
  /** Responses not yet finished; a streamed answer counts until its last byte. */
  inFlight(): number;
  /**
   * Stops accepting, closes idle keep-alive connections, lets in-flight responses finish until
   * `timeoutMs` has passed, then closes every connection left. Resolves once the server closed.
   */
  close(timeoutMs?: number): Promise<void>;
}

/** Serves `fetch` on a port (0 = any free one); resolves once it listens, rejects if it cannot. */
export async function listen(fetch: FetchHandler, options: { port: number; host: string }): Promise<Listening> {
  const server = await new Promise<Server>((resolve, reject) => {
    const started = serve({ fetch, port: options.port, hostname: options.host }, () => {
      started.off("error", reject);
      resolve(started as Server);
    });
    // EADDRINUSE and the like: a rejected start, not an uncaught exception.
    started.once("error", reject);
  });
  // Behind a load balancer that keeps idle connections to us (HAProxy purges its idle pool every
  // 5 s, Node's default keep-alive is also 5 s), the balancer must be the one that closes: a POST
  // it sends on a connection we close at that same moment fails and, not being idempotent, is
  // not retried. So our idle limit outlasts any balancer's (ALB 60 s, HAProxy 5 s, nginx 60 s).
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  let active = 0;
  server.on("request", (_request, response) => {
    active++;
    response.once("close", () => active--);
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  const host = options.host === "0.0.0.0" ? "127.0.0.1" : options.host;

  const close = async (timeoutMs = 0) => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const deadline = Date.now() + timeoutMs;
    while (active > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    server.closeAllConnections();
    await closed;
  };
  return { url: `http://${host}:${port}`, port, server, inFlight: () => active, close };
}

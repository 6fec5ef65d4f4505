import { createServer } from "node:net";

/**
 * A TCP port free on `host` right now (the OS picks it). Another process may take it before the
 * caller binds it; callers that can listen on port 0 should do that instead.
 */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

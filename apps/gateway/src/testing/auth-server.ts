import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeAuthServer {
  /** The `POST /api/auth.info` URL, for AUTH_VERIFY_URL. */
  url: string;
  /** Verifications asked of it. */
  calls: number;
  close(): Promise<void>;
}

/** Outline's `POST /api/auth.info` in a few lines: 200 for the keys `accept` allows, else 401. */
export async function startFakeAuth(accept: (key: string) => boolean, delayMs = 0): Promise<FakeAuthServer> {
  const state = { calls: 0 };
  const server = createServer((request, response) => {
    state.calls++;
    const key = /^Bearer (.+)$/.exec(request.headers.authorization ?? "")?.[1] ?? "";
    setTimeout(() => {
      response.writeHead(accept(key) ? 200 : 401, { "content-type": "application/json" });
      response.end(JSON.stringify({ ok: accept(key) }));
    }, delayMs);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}/api/auth.info`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}

import { type ServerType, serve } from "@hono/node-server";
import { createStub, type Stub } from "./app.js";
import { DocumentStore } from "./documents.js";

export interface RunningStub extends Stub {
  server: ServerType;
  port: number;
  url: string;
  close(): Promise<void>;
}

const SEED = [
  { title: "Welcome", text: "This workspace is served by the outline-stub MCP server." },
  { title: "On-call handbook", text: "Page the on-call engineer for incidents of severity two or above." },
];

/** Start the stub on a port (0 = any free one); resolves once it listens. */
export function startStub(options: {
  apiKey: string;
  allowedKeys?: readonly string[];
  port?: number;
  host?: string;
}): Promise<RunningStub> {
  const stub = createStub({
    apiKey: options.apiKey,
    allowedKeys: options.allowedKeys ?? [],
    documents: new DocumentStore(SEED),
  });
  return new Promise((resolve) => {
    const server = serve(
      { fetch: stub.app.fetch, port: options.port ?? 0, hostname: options.host ?? "127.0.0.1" },
      (info) => {
        const host = options.host && options.host !== "0.0.0.0" ? options.host : "127.0.0.1";
        resolve({
          ...stub,
          server,
          port: info.port,
          url: `http://${host}:${info.port}/mcp`,
          async close() {
            await stub.closeAll();
            await new Promise<void>((done) => {
              server.close(() => done());
              if ("closeAllConnections" in server) server.closeAllConnections();
            });
          },
        });
      },
    );
  });
}

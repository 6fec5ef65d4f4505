import type { ServerType } from "@hono/node-server";
import { listen } from "@mcp-broker/service-runtime";
import { createStub, type Stub, type StubTools } from "./app.js";
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
export async function startStub(options: {
  apiKey: string;
  allowedKeys?: readonly string[];
  allowedKeyPattern?: RegExp | undefined;
  port?: number;
  host?: string;
  tools?: StubTools | undefined;
}): Promise<RunningStub> {
  const stub = createStub({
    apiKey: options.apiKey,
    allowedKeys: options.allowedKeys ?? [],
    allowedKeyPattern: options.allowedKeyPattern,
    documents: new DocumentStore(SEED),
    tools: options.tools,
  });
  const server = await listen(stub.app.fetch, { port: options.port ?? 0, host: options.host ?? "127.0.0.1" });
  return {
    ...stub,
    server: server.server,
    port: server.port,
    url: `${server.url}/mcp`,
    async close() {
      // Ending the sessions ends their open GET streams, so no response is left to wait for.
      await stub.closeAll();
      await server.close(0);
    },
  };
}

import type { Client } from "@modelcontextprotocol/sdk/client/index.js";

/** A real MCP SDK client connected over Streamable HTTP, with extra headers (an API key). */
export async function connectClient(url: string, headers: Record<string, string> = {}): Promise<Client> {
  // Loaded on first use: most files that import this package never open an SDK client, and
  // jest loads every module again for each test file (the SDK and zod: about 0.2 s of CPU).
  const [{ Client }, { StreamableHTTPClientTransport }] = await Promise.all([
    import("@modelcontextprotocol/sdk/client/index.js"),
    import("@modelcontextprotocol/sdk/client/streamableHttp.js"),
  ]);
  const client = new Client({ name: "mcp-broker-test", version: "0.1.0" });
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  await client.connect(transport);
  return client;
}

/** The text of a tool result's first content block. */
export function resultText(result: unknown): string {
  const content = (result as { content?: Array<{ type: string; text?: string }> }).content;
  const first = content?.[0];
  if (first?.type !== "text" || first.text === undefined) {
    throw new Error(`tool result has no text: ${JSON.stringify(result)}`);
  }
  return first.text;
}

/** Headers a Streamable HTTP client sends with each POST. */
export const MCP_POST_HEADERS = {
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
} as const;

export const INITIALIZE = {
  jsonrpc: "2.0",
  id: 0,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "curl", version: "1" } },
} as const;

/** Reads the last JSON-RPC message from a JSON or SSE response body. */
export function parseRpcBody(contentType: string | null, body: string): unknown {
  if (contentType?.includes("text/event-stream")) {
    const data = body
      .split("\n")
      .filter((line) => line.startsWith("data:"))
      .map((line) => line.slice(5).trim())
      .filter(Boolean);
    const last = data.at(-1);
    if (last === undefined) throw new Error(`no data event in SSE body: ${body}`);
    return JSON.parse(last);
  }
  return JSON.parse(body);
}

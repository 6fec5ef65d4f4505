import { INITIALIZE, MCP_POST_HEADERS, parseRpcBody } from "@mcp-broker/test-support";

export interface RpcResult {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: test assertions walk arbitrary JSON-RPC answers
  body: any;
}

/** POSTs one JSON-RPC message (or raw text) as curl would, and reads the answer (JSON or SSE). */
export async function post(url: string, message: unknown, headers: Record<string, string> = {}): Promise<RpcResult> {
  const response = await fetch(url, {
    method: "POST",
    headers: { ...MCP_POST_HEADERS, ...headers },
    body: typeof message === "string" ? message : JSON.stringify(message),
    // A mixed-up or lost answer shows as a hang; fail it well before jest's own timeout.
    signal: AbortSignal.timeout(20_000),
  });
  const text = await response.text();
  let body: unknown = text;
  if (text) {
    try {
      body = parseRpcBody(response.headers.get("content-type"), text);
    } catch {}
  }
  return { status: response.status, headers: response.headers, body };
}

export const call = (id: number | string, name: string, args: Record<string, unknown> = {}) => ({
  jsonrpc: "2.0",
  id,
  method: "tools/call",
  params: { name, arguments: args },
});

export const list = (id: number | string = 1) => ({ jsonrpc: "2.0", id, method: "tools/list" });

export { INITIALIZE };

/** The JSON a tool returned as its first text block. */
export const toolJson = (result: RpcResult) => JSON.parse(result.body.result.content[0].text);

/** The id Redis keys a broker session by: its token's nonce (sessions/token.ts). */
export const nonceOf = (sessionId: string) => sessionId.split(".")[2] as string;

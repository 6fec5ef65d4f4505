import { GatewayError } from "../errors.js";
import type { JsonRpcMessage } from "../rpc-ids.js";

/** The methods whose `Mcp-Name` header mirrors `params.name` or `params.uri` (MCP 2026-07-28). */
const NAMED: Record<string, "name" | "uri"> = { "tools/call": "name", "prompts/get": "name", "resources/read": "uri" };
/** `=?base64?<value>?=`: how a client sends a name that is not plain ASCII (Value Encoding). */
const BASE64_SENTINEL = /^=\?base64\?([A-Za-z0-9+/]*={0,2})\?=$/;

function decodeName(header: string): string {
  const encoded = BASE64_SENTINEL.exec(header)?.[1];
  return encoded === undefined ? header : Buffer.from(encoded, "base64").toString("utf8");
}

/**
 * MCP 2026-07-28 (transports, Request Metadata and Server Validation): a request of that
 * revision mirrors its body into headers, and whoever processes the body MUST reject a
 * mismatch with 400 and JSON-RPC `-32020` HeaderMismatch, so a balancer routing on the header
 * and a server acting on the body can never disagree. Checked for requests that carry
 * `Mcp-Method`: one JSON-RPC message, `Mcp-Method` = `method`, `Mcp-Name` = `params.name`
 * (`params.uri` for resources/read) where the method names something.
 */
export function checkRequestMetadata(
  headers: { mcpMethod: string; mcpName: string | undefined; protocolVersion: string | undefined },
  messages: readonly JsonRpcMessage[],
  batch: boolean,
): void {
  const message = messages[0];
  if (batch || messages.length !== 1 || !message) {
    throw new GatewayError("HEADER_MISMATCH", "a request with Mcp-Method carries exactly one JSON-RPC message");
  }
  if (!headers.protocolVersion) throw new GatewayError("HEADER_MISMATCH", "MCP-Protocol-Version header missing");
  const meta = ((message.params ?? {}) as { _meta?: Record<string, unknown> })._meta;
  const bodyVersion = meta?.["io.modelcontextprotocol/protocolVersion"];
  if (bodyVersion !== undefined && bodyVersion !== headers.protocolVersion) {
    throw new GatewayError(
      "HEADER_MISMATCH",
      `MCP-Protocol-Version header value '${headers.protocolVersion}' does not match body value '${String(bodyVersion)}'`,
    );
  }
  if (message.method !== headers.mcpMethod) {
    throw new GatewayError(
      "HEADER_MISMATCH",
      `Mcp-Method header value '${headers.mcpMethod}' does not match body value '${message.method ?? ""}'`,
    );
  }
  const field = NAMED[headers.mcpMethod];
  if (!field) return;
  const params = (message.params ?? {}) as Record<string, unknown>;
  const body = params[field];
  if (headers.mcpName === undefined) throw new GatewayError("HEADER_MISMATCH", "Mcp-Name header missing");
  const name = decodeName(headers.mcpName);
  if (name !== body) {
    throw new GatewayError(
      "HEADER_MISMATCH",
      `Mcp-Name header value '${name}' does not match body value '${String(body ?? "")}'`,
    );
  }
}

import type { Answer } from "../forward/reply.js";
import { MODERN_PROTOCOL_VERSION } from "../protocol-eras.js";
import type { JsonRpcId } from "../rpc-ids.js";

/**
 * The `server/discover` result (MCP 2026-07-28) for a legacy server, from its `initialize`
 * result: the same capabilities and instructions, its serverInfo under `_meta`, and the one
 * revision the broker bridges it to.
 */
export function discoverAnswer(id: JsonRpcId, initializeResult: Record<string, unknown>): Answer {
  const { capabilities, serverInfo, instructions } = initializeResult;
  const result = {
    resultType: "complete",
    supportedVersions: [MODERN_PROTOCOL_VERSION],
    capabilities: capabilities ?? {},
    ...(typeof instructions === "string" ? { instructions } : {}),
    _meta: serverInfo ? { "io.modelcontextprotocol/serverInfo": serverInfo } : {},
  };
  return {
    status: 200,
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id, result }),
  };
}

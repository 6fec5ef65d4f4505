/** Image names shared by tests, benchmarks and scripts/images.sh. */
export const images = {
  redis: process.env.REDIS_IMAGE ?? "mcp-broker/redis:local",
  stub: process.env.STUB_IMAGE ?? "mcp-broker/outline-stub:local",
  /** outline-stub serving the MCP conformance suite's server (`STUB_TOOLS=conformance`). */
  conformance: process.env.CONFORMANCE_IMAGE ?? "mcp-broker/conformance-backend:local",
} as const;

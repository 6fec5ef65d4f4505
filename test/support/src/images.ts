/** Image names shared by tests, benchmarks and scripts/images.sh. */
export const images = {
  redis: process.env.REDIS_IMAGE ?? "mcp-broker/redis:local",
  stub: process.env.STUB_IMAGE ?? "mcp-broker/outline-stub:local",
} as const;

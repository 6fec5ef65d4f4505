// Moved to test-support so the reaper's in-process tests use the same throwaway redis-server.
export { type LocalRedis, startLocalRedis } from "@mcp-broker/test-support";

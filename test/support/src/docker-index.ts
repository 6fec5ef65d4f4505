// `@mcp-broker/test-support/docker`: the helpers that need a Docker engine. They load dockerode
// and testcontainers (about 0.4 s of CPU in every jest test file that imports them), so they stay
// out of the main entry, which the in-process tests import.
export { docker, removeLabelled, requireDocker } from "./docker.js";
export { startRedis, type TestRedis } from "./redis.js";
export { startStubContainer } from "./stub-container.js";
export { startTestSwarm, type TestSwarm } from "./swarm.js";

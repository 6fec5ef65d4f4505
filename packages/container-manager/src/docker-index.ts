// `@mcp-broker/container-manager/docker`: the drivers that talk to a Docker engine. Apart from the
// main entry, so a gateway or a test that never talks to an engine does not load dockerode.
export { DockerDriver, type DockerDriverOptions } from "./docker-driver.js";
export { SwarmDriver, type SwarmDriverOptions } from "./swarm-driver.js";

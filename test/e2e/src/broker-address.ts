import { docker } from "@mcp-broker/test-support";

/**
 * A Compose replica's address on the project's `broker` network, where its /metrics answers:
 * a gateway also sits on every user's backend network, and closes what arrives there
 * (docs/architecture.md#trust-boundaries).
 */
export async function brokerAddress(containerId: string, project: string): Promise<string> {
  const networks = (await docker.getContainer(containerId).inspect()).NetworkSettings.Networks;
  const address = networks[`${project}_broker`]?.IPAddress;
  if (!address) throw new Error(`container ${containerId.slice(0, 12)} has no address on ${project}_broker`);
  return address;
}

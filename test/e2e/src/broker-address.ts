import { docker } from "@mcp-broker/test-support/docker";

/**
 * A Compose replica's address on the project's `broker` network, where the tests reach its
 * /metrics (a gateway is also on the backends' network, which the test host need not reach).
 */
export async function brokerAddress(containerId: string, project: string): Promise<string> {
  const networks = (await docker.getContainer(containerId).inspect()).NetworkSettings.Networks;
  const address = networks[`${project}_broker`]?.IPAddress;
  if (!address) throw new Error(`container ${containerId.slice(0, 12)} has no address on ${project}_broker`);
  return address;
}

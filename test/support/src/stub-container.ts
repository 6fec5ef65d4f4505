import { GenericContainer, type StartedTestContainer, Wait } from "testcontainers";
import { requireDocker } from "./docker.js";
import { images } from "./images.js";

/** An outline-stub container (or another image of it) for one key, its MCP endpoint published on 127.0.0.1. */
export async function startStubContainer(
  apiKey: string,
  image: string = images.stub,
): Promise<{ container: StartedTestContainer; url: string }> {
  await requireDocker(image);
  const container = await new GenericContainer(image)
    .withEnvironment({ OUTLINE_API_KEY: apiKey })
    .withExposedPorts(3000)
    .withWaitStrategy(Wait.forHttp("/health", 3000))
    .withLabels({ "mcp-broker.test": "stub" })
    .start();
  return { container, url: `http://127.0.0.1:${container.getMappedPort(3000)}/mcp` };
}

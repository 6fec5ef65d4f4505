import { randomUUID } from "node:crypto";
import { GenericContainer, type StartedTestContainer, Wait } from "testcontainers";
import { requireDocker } from "./docker.js";
import { images } from "./images.js";

export interface TestRedis {
  url: string;
  /** A key prefix unique to this test file, so files can share one server. */
  prefix: string;
  /** The container, when this helper started one (absent when REDIS_URL is set). */
  container?: StartedTestContainer;
  stop(): Promise<void>;
}

/**
 * Redis for an integration test: the server at REDIS_URL when set, else a fresh container
 * of REDIS_IMAGE started through testcontainers. `ownContainer` forces a container (for tests
 * that stop Redis); `hostPort` publishes on a fixed port so a stopped and restarted container
 * keeps its address and clients reconnect to it.
 */
export async function startRedis(options: { hostPort?: number; ownContainer?: boolean } = {}): Promise<TestRedis> {
  const prefix = `test:${randomUUID().slice(0, 8)}:`;
  const external = process.env.REDIS_URL;
  if (external && !options.ownContainer) {
    return { url: external, prefix, stop: async () => {} };
  }
  await requireDocker(images.redis);
  const container = await new GenericContainer(images.redis)
    .withCommand(["redis-server", "--protected-mode", "no", "--save", "", "--appendonly", "no"])
    .withExposedPorts(options.hostPort ? { container: 6379, host: options.hostPort } : 6379)
    .withWaitStrategy(Wait.forLogMessage(/Ready to accept connections/))
    .withLabels({ "mcp-broker.test": "redis" })
    .start();
  return {
    url: `redis://127.0.0.1:${container.getMappedPort(6379)}`,
    prefix,
    container,
    stop: async () => {
      await container.stop({ remove: true });
    },
  };
}

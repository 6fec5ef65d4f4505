import Docker from "dockerode";

/** A dockerode client for the engine tests run against (DOCKER_HOST or the local socket). */
export const docker = new Docker();

/**
 * Fails loudly, with the reason, when no Docker engine answers or an image is missing.
 * Tests that need Docker call this in beforeAll instead of being skipped.
 */
export async function requireDocker(...requiredImages: string[]): Promise<Docker> {
  try {
    await docker.ping();
  } catch (error) {
    throw new Error(
      `these tests need a Docker engine and none answers (${(error as Error).message}); ` +
        "start dockerd, or run `bash .ci/run`, which installs and starts it",
    );
  }
  for (const image of requiredImages) {
    try {
      await docker.getImage(image).inspect();
    } catch {
      throw new Error(`image ${image} is missing: build it with \`npm run images\``);
    }
  }
  return docker;
}

/** Removes every container carrying a label (for example the ones a test file started). */
export async function removeLabelled(label: string): Promise<number> {
  const containers = await docker.listContainers({ all: true, filters: { label: [label] } });
  await Promise.all(containers.map((info) => docker.getContainer(info.Id).remove({ force: true })));
  return containers.length;
}

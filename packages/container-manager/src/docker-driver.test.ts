import { randomUUID } from "node:crypto";
import { connectClient, images, resultText } from "@mcp-broker/test-support";
import { requireDocker } from "@mcp-broker/test-support/docker";
import Docker from "dockerode";
import { DockerDriver, type DockerDriverOptions, LABELS } from "./docker-driver.js";

const deployment = `test-${randomUUID().slice(0, 8)}`;
const userId = (n: number) => `${n.toString(16).padStart(4, "0")}${"ab".repeat(30)}`;

describe("DockerDriver on the real engine", () => {
  let docker: Docker;
  const driver = (options: DockerDriverOptions = {}) =>
    new DockerDriver({ image: images.stub, deployment, readinessTimeoutMs: 20_000, ...options });

  beforeAll(async () => {
    docker = await requireDocker(images.stub);
  });
  afterAll(async () => {
    const leftovers = await docker.listContainers({
      all: true,
      filters: { label: [`${LABELS.deployment}=${deployment}`] },
    });
    await Promise.all(leftovers.map((c) => docker.getContainer(c.Id).remove({ force: true })));
  });

  it("starts a hardened, labelled container whose MCP endpoint answers for the user's key", async () => {
    const d = driver();
    const key = "ol_api_driver_key_1";
    const backend = await d.ensure({ userId: userId(1), apiKey: key });
    expect(backend.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);

    const info = await docker.getContainer(backend.containerId).inspect();
    expect(info.Name).toBe(`/${d.containerName(userId(1))}`);
    expect(info.Config.Labels).toMatchObject({
      [LABELS.managed]: "true",
      [LABELS.user]: userId(1),
      [LABELS.deployment]: deployment,
    });
    expect(info.Config.Env).toContain(`OUTLINE_API_KEY=${key}`);
    expect(info.Config.User).toBe("1000:1000");
    expect(info.HostConfig.CapDrop).toEqual(["ALL"]);
    expect(info.HostConfig.SecurityOpt).toContain("no-new-privileges:true");
    expect(info.HostConfig.Memory).toBe(512 * 1024 * 1024);
    expect(info.HostConfig.NanoCpus).toBe(1_000_000_000);
    expect(info.HostConfig.PidsLimit).toBe(256);
    expect(info.HostConfig.PortBindings?.["3000/tcp"]?.[0]?.HostIp).toBe("127.0.0.1");

    const client = await connectClient(backend.endpoint);
    const whoami = JSON.parse(resultText(await client.callTool({ name: "whoami", arguments: {} })));
    await client.close();
    expect(whoami.key).toHaveLength(12);

    // Idempotent: the same container again; after a stop, the same container restarted.
    expect((await d.ensure({ userId: userId(1), apiKey: key })).containerId).toBe(backend.containerId);
    await d.stop(backend.containerId);
    expect((await d.inspect(backend.containerId))?.running).toBe(false);
    const restarted = await d.ensure({ userId: userId(1), apiKey: key });
    expect(restarted.containerId).toBe(backend.containerId);
    expect((await d.inspect(backend.containerId))?.running).toBe(true);

    await d.remove(backend.containerId);
    expect(await d.inspect(backend.containerId)).toBeNull();
    await d.remove(backend.containerId); // removing twice is fine
  });

  it("ends 20 concurrent ensure calls from separate engine clients with exactly one container", async () => {
    const drivers = Array.from({ length: 20 }, () => driver({ docker: new Docker() }));
    const backends = await Promise.all(drivers.map((d) => d.ensure({ userId: userId(2), apiKey: "ol_api_k2" })));
    expect(new Set(backends.map((b) => b.containerId)).size).toBe(1);
    expect(new Set(backends.map((b) => b.endpoint)).size).toBe(1);
    const containers = await docker.listContainers({ all: true, filters: { label: [`${LABELS.user}=${userId(2)}`] } });
    expect(containers).toHaveLength(1);
  });

  it("lists only this deployment's managed containers", async () => {
    const mine = await driver().listManaged();
    expect(mine.map((c) => c.userId)).toContain(userId(2));
    const other = await driver({ deployment: `${deployment}-other` }).listManaged();
    expect(other).toEqual([]);
  });

  it("removes a container whose endpoint never answers and reports the timeout", async () => {
    const d = driver({ port: 3999, readinessTimeoutMs: 1500 });
    await expect(d.ensure({ userId: userId(3), apiKey: "ol_api_k3" })).rejects.toMatchObject({
      code: "CONTAINER_START_TIMEOUT",
    });
    const containers = await docker.listContainers({ all: true, filters: { label: [`${LABELS.user}=${userId(3)}`] } });
    expect(containers).toEqual([]);
  });

  it("refuses a missing image with IMAGE_NOT_FOUND naming the image", async () => {
    const image = "mcp-broker/no-such-image:never";
    const failure = await driver({ image })
      .ensure({ userId: userId(4), apiKey: "ol_api_k4" })
      .catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: "IMAGE_NOT_FOUND", image });
    expect((failure as Error).message).toContain(image);
    const noPull = await driver({ image, pullMissing: false })
      .ensure({ userId: userId(4), apiKey: "ol_api_k4" })
      .catch((error: unknown) => error);
    expect(noPull).toMatchObject({ code: "IMAGE_NOT_FOUND" });
  });

  it("reports DOCKER_UNAVAILABLE when no engine answers", async () => {
    const d = driver({ docker: new Docker({ socketPath: "/nonexistent/docker.sock" }) });
    await expect(d.ping()).rejects.toMatchObject({ code: "DOCKER_UNAVAILABLE" });
    await expect(d.ensure({ userId: userId(5), apiKey: "ol_api_k5" })).rejects.toMatchObject({
      code: "DOCKER_UNAVAILABLE",
    });
  });
});

import { randomUUID } from "node:crypto";
import { connectClient, eventually, images, resultText } from "@mcp-broker/test-support";
import { requireDocker, startTestSwarm, type TestSwarm } from "@mcp-broker/test-support/docker";
import type Docker from "dockerode";
import { ProxyAgent, fetch as undiciFetch } from "undici";
import { LABELS } from "./backend-container.js";
import { SwarmDriver, type SwarmDriverOptions } from "./swarm-driver.js";
import { isLive, type SwarmTask } from "./swarm-service.js";

const deployment = `test-${randomUUID().slice(0, 8)}`;
const userId = (n: number) => `${n.toString(16).padStart(4, "0")}${"cd".repeat(30)}`;

/**
 * The driver's endpoints are service names on an overlay network, as a gateway in the stack
 * sees them. The test runs on the host, outside the overlay, so every fetch of this file (the
 * driver's readiness probes, the MCP client) goes through a proxy on the overlay rather than
 * through published ports: Swarm publishes a service port on every interface (no host address
 * in its port config) and its ingress mesh needs IPVS, and neither is the path a gateway takes.
 */
describe("SwarmDriver on a one-node swarm", () => {
  let docker: Docker;
  let swarm: TestSwarm;
  const globalFetch = globalThis.fetch;
  let proxy: ProxyAgent;
  const driver = (options: Partial<SwarmDriverOptions> = {}) =>
    new SwarmDriver({ image: images.stub, deployment, network: swarm.network, readinessTimeoutMs: 30_000, ...options });
  const tasksOf = async (serviceId: string) =>
    (await docker.listTasks({ filters: { service: [serviceId] } })) as SwarmTask[];
  const runningContainer = async (serviceId: string) => {
    const running = (await tasksOf(serviceId)).find((task) => task.Status?.State === "running");
    if (!running?.Status?.ContainerStatus?.ContainerID) throw new Error("no running task yet");
    return running.Status.ContainerStatus.ContainerID;
  };
  const whoami = async (endpoint: string) => {
    const client = await connectClient(endpoint);
    const answer = JSON.parse(resultText(await client.callTool({ name: "whoami", arguments: {} })));
    await client.close();
    return answer as { key: string; instance: string };
  };

  beforeAll(async () => {
    docker = await requireDocker(images.stub);
    swarm = await startTestSwarm(docker);
    // The proxy speaks CONNECT only; undici 8 forwards plain-http requests without a tunnel
    // unless asked.
    proxy = new ProxyAgent({ uri: swarm.proxyUrl, proxyTunnel: true });
    // Replaces fetch rather than setting undici's global dispatcher: Node's fetch reads that from
    // its own realm's globals, which are not the ones jest gives a test file.
    globalThis.fetch = ((input: string | URL, init?: RequestInit) =>
      undiciFetch(input, { ...(init as object), dispatcher: proxy })) as unknown as typeof fetch;
  }, 60_000);
  afterAll(async () => {
    globalThis.fetch = globalFetch;
    await proxy?.close();
    const services = await docker.listServices({ filters: { label: [`${LABELS.deployment}=${deployment}`] } });
    await Promise.all(services.map((service) => docker.getService(service.ID).remove()));
    await swarm?.stop();
  }, 60_000);

  it("starts a hardened, labelled service whose MCP endpoint answers on the overlay, by name", async () => {
    const d = driver({ readOnlyRootfs: true });
    const key = "ol_api_swarm_key_1";
    const backend = await d.ensure({ userId: userId(1), apiKey: key });
    expect(backend.endpoint).toBe(`http://${d.serviceName(userId(1))}:3000/mcp`);

    const service = await docker.getService(backend.containerId).inspect();
    expect(service.Spec.Labels).toEqual({
      [LABELS.managed]: "true",
      [LABELS.user]: userId(1),
      [LABELS.deployment]: deployment,
    });
    expect(service.Spec.EndpointSpec.Mode).toBe("dnsrr");
    expect(service.Spec.TaskTemplate.Resources.Limits).toEqual({
      MemoryBytes: 512 * 1024 * 1024,
      NanoCPUs: 1_000_000_000,
      Pids: 256,
    });
    expect(service.Spec.TaskTemplate.RestartPolicy).toMatchObject({ Condition: "on-failure", MaxAttempts: 3 });

    // What the task's container really got from the engine.
    const container = await docker
      .getContainer(await eventually(() => runningContainer(backend.containerId)))
      .inspect();
    expect(container.Config.Env).toContain(`OUTLINE_API_KEY=${key}`);
    expect(container.Config.User).toBe("1000:1000");
    expect(container.HostConfig.CapDrop).toEqual(["ALL"]);
    expect(container.HostConfig.PidsLimit).toBe(256);
    expect(container.HostConfig.ReadonlyRootfs).toBe(true);
    // Not expressible in API 1.41 (see swarm-service.ts): no SecurityOpt reaches the container.
    expect(container.HostConfig.SecurityOpt ?? []).not.toContain("no-new-privileges:true");
    const mounts = await execNode(
      docker,
      container.Id,
      "console.log(require('fs').readFileSync('/proc/mounts','utf8'))",
    );
    expect(mounts).toMatch(/ \/tmp tmpfs rw,nosuid,nodev,noexec/);

    expect((await whoami(backend.endpoint)).key).toHaveLength(12);
    await expect(d.ping()).resolves.toBeUndefined();
    expect(await d.ensure({ userId: userId(1), apiKey: key })).toEqual(backend);
    expect(await d.inspect(backend.containerId)).toMatchObject({ userId: userId(1), running: true });
  });

  it("gives two users two services", async () => {
    const d = driver();
    const [a, b] = await Promise.all([
      d.ensure({ userId: userId(2), apiKey: "ol_api_swarm_2" }),
      d.ensure({ userId: userId(3), apiKey: "ol_api_swarm_3" }),
    ]);
    expect(a.containerId).not.toBe(b.containerId);
    expect((await whoami(a.endpoint)).key).not.toBe((await whoami(b.endpoint)).key);
  });

  it("ends 10 concurrent ensure calls from separate engine clients with exactly one service", async () => {
    const Dockerode = (await import("dockerode")).default;
    const drivers = Array.from({ length: 10 }, () => driver({ docker: new Dockerode() }));
    const backends = await Promise.all(drivers.map((d) => d.ensure({ userId: userId(4), apiKey: "ol_api_swarm_4" })));
    expect(new Set(backends.map((b) => b.containerId)).size).toBe(1);
    const services = await docker.listServices({ filters: { label: [`${LABELS.user}=${userId(4)}`] } });
    expect(services).toHaveLength(1);
  });

  it("answers again after its task's container is killed: Swarm restarts it, ensure waits for it", async () => {
    // Four kills in a minute: enough restart attempts that Swarm never gives up (the next test does).
    const d = driver({ restartAttempts: 10 });
    const backend = await d.ensure({ userId: userId(5), apiKey: "ol_api_swarm_5" });
    const before = await whoami(backend.endpoint);
    await docker.getContainer(await runningContainer(backend.containerId)).kill();
    await eventually(async () => expect((await d.inspect(backend.containerId))?.running).toBe(false));

    expect(await d.ensure({ userId: userId(5), apiKey: "ol_api_swarm_5" })).toEqual(backend);
    const second = await whoami(backend.endpoint);
    expect(second.instance).not.toBe(before.instance);

    // Right after a kill (as a gateway whose call just failed): the killed task is briefly
    // "failed" with no replacement yet. That is Swarm deciding, not Swarm giving up.
    for (let kill = 0; kill < 3; kill++) {
      const running = await eventually(() => runningContainer(backend.containerId), { timeoutMs: 20_000 });
      await docker.getContainer(running).kill();
      expect(await d.ensure({ userId: userId(5), apiKey: "ol_api_swarm_5" })).toEqual(backend);
      await whoami(backend.endpoint);
    }
  }, 90_000);

  it("starts a new task once Swarm has given up restarting, and after a stop", async () => {
    const d = driver({ restartAttempts: 1 });
    const backend = await d.ensure({ userId: userId(6), apiKey: "ol_api_swarm_6" });
    let killed = "";
    for (let kill = 0; kill < 2; kill++) {
      // The killed task is listed as running a moment longer: wait for its replacement.
      const next = () => runningContainer(backend.containerId);
      killed = await eventually(next, { until: (id) => id !== killed, timeoutMs: 20_000 });
      await docker.getContainer(killed).kill();
    }
    // The second failure used up the one restart: no task runs, and none will.
    await eventually(async () => expect((await tasksOf(backend.containerId)).some(isLive)).toBe(false), {
      timeoutMs: 20_000,
    });
    expect(await d.ensure({ userId: userId(6), apiKey: "ol_api_swarm_6" })).toEqual(backend);
    await whoami(backend.endpoint);

    await d.stop(backend.containerId);
    await eventually(async () => expect((await d.inspect(backend.containerId))?.running).toBe(false));
    expect(await d.ensure({ userId: userId(6), apiKey: "ol_api_swarm_6" })).toEqual(backend);
    await whoami(backend.endpoint);
  });

  it("removes a service, twice without error, and starts it anew afterwards", async () => {
    const d = driver();
    const backend = await d.ensure({ userId: userId(7), apiKey: "ol_api_swarm_7" });
    await d.remove(backend.containerId);
    expect(await d.inspect(backend.containerId)).toBeNull();
    await d.remove(backend.containerId);
    const again = await d.ensure({ userId: userId(7), apiKey: "ol_api_swarm_7" });
    expect(again.containerId).not.toBe(backend.containerId);
    await whoami(again.endpoint);
  });

  it("lists only this deployment's labelled services", async () => {
    const plain = await docker.createService({
      Name: `plain-${deployment}`,
      TaskTemplate: { ContainerSpec: { Image: images.stub, Env: ["OUTLINE_API_KEY=x"] } },
      EndpointSpec: { Mode: "dnsrr" },
    });
    try {
      const mine = await driver().listManaged();
      expect(mine.map((s) => s.userId)).toEqual(expect.arrayContaining([userId(2), userId(3), userId(4)]));
      expect(mine.every((s) => s.name.startsWith(`mcpb-${deployment}-`))).toBe(true);
      expect(mine.find((s) => s.userId === userId(2))?.running).toBe(true);
      expect(await driver({ deployment: `${deployment}-other` }).listManaged()).toEqual([]);
    } finally {
      await plain.remove();
    }
  });

  it("removes a service whose endpoint never answers and reports the timeout", async () => {
    const d = driver({ port: 3999, readinessTimeoutMs: 3000 });
    await expect(d.ensure({ userId: userId(8), apiKey: "ol_api_swarm_8" })).rejects.toMatchObject({
      code: "CONTAINER_START_TIMEOUT",
    });
    expect(await docker.listServices({ filters: { label: [`${LABELS.user}=${userId(8)}`] } })).toEqual([]);
  });

  it("reports a server that keeps exiting at start, without its key in the message, and removes it", async () => {
    // The key handed over in a variable the stub validates (its tool set: outline|conformance):
    // its configuration is invalid, so it exits with code 2, and the key is in its environment.
    const d = driver({ keyEnv: "STUB_TOOLS", restartAttempts: 1 });
    const failure = await d.ensure({ userId: userId(9), apiKey: "ol_api_swarm_secret_9" }).catch((e: unknown) => e);
    expect(failure).toMatchObject({ code: "CONTAINER_START_FAILED" });
    expect((failure as Error).message).toContain("non-zero exit (2)");
    expect((failure as Error).message).not.toContain("ol_api_swarm_secret_9");
    expect(await docker.listServices({ filters: { label: [`${LABELS.user}=${userId(9)}`] } })).toEqual([]);
  });

  it("refuses a missing image with IMAGE_NOT_FOUND naming the image, and removes the service", async () => {
    const image = "mcp-broker/no-such-image:never";
    const failure = await driver({ image })
      .ensure({ userId: userId(10), apiKey: "ol_api_swarm_10" })
      .catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: "IMAGE_NOT_FOUND", image });
    expect(await docker.listServices({ filters: { label: [`${LABELS.user}=${userId(10)}`] } })).toEqual([]);
  });
});

/** Runs a Node one-liner in a container (the stub image has no shell) and returns its stdout. */
async function execNode(docker: Docker, containerId: string, script: string): Promise<string> {
  const exec = await docker.getContainer(containerId).exec({ Cmd: ["node", "-e", script], AttachStdout: true });
  const stream = await exec.start({ Detach: false, Tty: false });
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

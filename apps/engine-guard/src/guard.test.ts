import { randomUUID } from "node:crypto";
import { connect } from "node:net";
import { backendCreateBody, DRIVER_DEFAULTS, LABELS } from "@mcp-broker/container-manager";
import { DockerDriver, type DockerDriverOptions } from "@mcp-broker/container-manager/docker";
import { connectClient, images, resultText } from "@mcp-broker/test-support";
import { requireDocker } from "@mcp-broker/test-support/docker";
import type Docker from "dockerode";
import { pino } from "pino";
import { loadConfig } from "./config.js";
import { type RunningGuard, startGuard } from "./server.js";

// biome-ignore lint/suspicious/noExplicitAny: tests reach into and change any field of a create body
type CreateBody = Record<string, any>;

// Run under `flock /tmp/mcpb-test.lock`: this file starts and removes containers on the real engine.
const deployment = `guard-${randomUUID().slice(0, 8)}`;
const TEST_LABEL = "mcp-broker.guard-test";
const log = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
const key = "ol_api_guard_test_key_1";

/** The driver's real create body, then one change: each refusal is about that change alone. */
const driverBody = (change: (body: CreateBody) => void) => {
  const body = structuredClone(
    backendCreateBody({
      ...DRIVER_DEFAULTS,
      image: images.stub,
      userId: "ab".repeat(32),
      deployment,
      env: [`OUTLINE_API_KEY=${key}`],
    }),
  ) as CreateBody;
  change(body);
  return body;
};

/** A DockerDriver built exactly as the apps build theirs: dockerode reads DOCKER_HOST. */
function driverThrough(guard: RunningGuard, options: DockerDriverOptions = {}): DockerDriver {
  const saved = process.env.DOCKER_HOST;
  process.env.DOCKER_HOST = `tcp://127.0.0.1:${guard.port}`;
  try {
    return new DockerDriver({ image: images.stub, deployment, readinessTimeoutMs: 20_000, ...options });
  } finally {
    if (saved === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = saved;
  }
}

describe("the engine guard on the real engine", () => {
  let docker: Docker;
  let guard: RunningGuard;
  let reaperGuard: RunningGuard;
  let foreign: Docker.Container;
  let lookalike: Docker.Container;
  const through = (path: string, init: RequestInit = {}) => fetch(`${guard.url}${path}`, init);
  const backends = async () =>
    (await docker.listContainers({ all: true, filters: { label: [`${LABELS.deployment}=${deployment}`] } })).length;

  beforeAll(async () => {
    docker = await requireDocker(images.stub);
    const env = { GUARD_PORT: "0", GUARD_IMAGES: images.stub, DEPLOYMENT_NAME: deployment };
    guard = await startGuard(loadConfig(env), log);
    reaperGuard = await startGuard(loadConfig({ ...env, GUARD_ROLE: "reaper" }), log);
    // Another workload on the same engine, and one labelled as another deployment's backend.
    foreign = await docker.createContainer({
      name: `guard-foreign-${deployment}`,
      Image: images.stub,
      Env: ["OUTLINE_API_KEY=do-not-leak"],
      Labels: { [TEST_LABEL]: deployment },
    });
    lookalike = await docker.createContainer({
      name: `mcpb-other-${deployment}`,
      Image: images.stub,
      Labels: { [TEST_LABEL]: deployment, [LABELS.managed]: "true", [LABELS.deployment]: `other-${deployment}` },
    });
    await foreign.start();
  });
  afterAll(async () => {
    await Promise.all([guard?.close(), reaperGuard?.close()]);
    for (const label of [`${LABELS.deployment}=${deployment}`, `${TEST_LABEL}=${deployment}`]) {
      const left = await docker.listContainers({ all: true, filters: { label: [label] } });
      await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true })));
    }
  });

  describe("refuses creates the broker would never send, and nothing is created", () => {
    const cases: Array<[string, (body: CreateBody) => void]> = [
      ["Privileged", (b) => (b.HostConfig.Privileged = true)],
      ["privileged in lower case (the engine's decoder accepts it)", (b) => (b.HostConfig.privileged = true)],
      ["Binds of /", (b) => (b.HostConfig.Binds = ["/:/host"])],
      ["a bind Mount", (b) => (b.HostConfig.Mounts = [{ Type: "bind", Source: "/", Target: "/host" }])],
      ["Devices", (b) => (b.HostConfig.Devices = [{ PathOnHost: "/dev/mem", PathInContainer: "/dev/mem" }])],
      ["DeviceRequests", (b) => (b.HostConfig.DeviceRequests = [{ Driver: "nvidia", Count: -1 }])],
      ["CapAdd SYS_ADMIN", (b) => (b.HostConfig.CapAdd = ["SYS_ADMIN"])],
      ["NetworkMode host", (b) => (b.HostConfig.NetworkMode = "host")],
      ["PidMode host", (b) => (b.HostConfig.PidMode = "host")],
      ["IpcMode host", (b) => (b.HostConfig.IpcMode = "host")],
      ["UTSMode host", (b) => (b.HostConfig.UTSMode = "host")],
      ["UsernsMode host", (b) => (b.HostConfig.UsernsMode = "host")],
      ["CgroupnsMode host", (b) => (b.HostConfig.CgroupnsMode = "host")],
      ["VolumesFrom", (b) => (b.HostConfig.VolumesFrom = [`guard-foreign-${deployment}`])],
      ["Sysctls", (b) => (b.HostConfig.Sysctls = { "net.ipv4.ip_unprivileged_port_start": "0" })],
      ["seccomp=unconfined", (b) => b.HostConfig.SecurityOpt.push("seccomp=unconfined")],
      ["apparmor=unconfined", (b) => b.HostConfig.SecurityOpt.push("apparmor=unconfined")],
      ["a Runtime override", (b) => (b.HostConfig.Runtime = "runc")],
      ["publishing on 0.0.0.0", (b) => (b.HostConfig.PortBindings["3000/tcp"][0].HostIp = "0.0.0.0")],
      ["an extra network", (b) => (b.NetworkingConfig = { EndpointsConfig: { bridge: {} } })],
      ["another image", (b) => (b.Image = "mcp-broker/node-base:local")],
      ["running as root", (b) => (b.User = "0")],
      ["memory over the maximum", (b) => (b.HostConfig.Memory = 8 * 1024 * 1024 * 1024)],
      ["no broker labels", (b) => (b.Labels = {})],
    ];
    it.each(cases)("refuses %s with 403", async (_name, change) => {
      const name = `mcpb-${deployment}-refused`;
      const before = await backends();
      const response = await through(`/containers/create?name=${name}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(driverBody(change)),
      });
      expect(response.status).toBe(403);
      expect((await response.json()).message).toMatch(/^refused by the engine guard: /);
      await expect(docker.getContainer(name).inspect()).rejects.toMatchObject({ statusCode: 404 });
      expect(await backends()).toBe(before);
    });

    it("refuses the attack reported in issue 14 (privileged, / bound, host PID namespace)", async () => {
      const name = `mcpb-${deployment}-attack`;
      const body = { Image: images.stub, HostConfig: { Privileged: true, Binds: ["/:/host"], PidMode: "host" } };
      const response = await through(`/containers/create?name=${name}`, { method: "POST", body: JSON.stringify(body) });
      expect(response.status).toBe(403);
      await expect(docker.getContainer(name).inspect()).rejects.toMatchObject({ statusCode: 404 });
    });
  });

  describe("refuses calls on containers that are not this deployment's backends", () => {
    const stillRunning = async () => expect((await foreign.inspect()).State.Running).toBe(true);
    const cases: Array<[string, string, string]> = [
      ["inspect (its env holds secrets)", "GET", "/containers/{foreign}/json"],
      ["start", "POST", "/containers/{lookalike}/start"],
      ["stop", "POST", "/containers/{foreign}/stop?t=0"],
      ["kill", "POST", "/containers/{foreign}/kill"],
      ["wait", "POST", "/containers/{foreign}/wait"],
      ["logs", "GET", "/containers/{foreign}/logs?stdout=true"],
      ["remove", "DELETE", "/containers/{foreign}?force=true"],
      ["inspect of another deployment's backend", "GET", "/containers/{lookalike}/json"],
      ["exec", "POST", "/containers/{foreign}/exec"],
      ["archive (file copy)", "GET", "/containers/{foreign}/archive?path=/etc"],
      ["update", "POST", "/containers/{foreign}/update"],
      ["commit as the backend image", "POST", "/commit?container={foreign}&repo=mcp-broker/outline-stub&tag=local"],
      ["network connect", "POST", "/networks/bridge/connect"],
      ["image tag over the backend image", "POST", "/images/mcp-broker%2Fnode-base:local/tag?repo=x&tag=y"],
      ["pull of another image", "POST", "/images/create?fromImage=busybox&tag=latest"],
    ];
    it.each(cases)("refuses %s with 403 and the container is untouched", async (_name, method, template) => {
      const path = template.replace("{foreign}", foreign.id).replace("{lookalike}", lookalike.id);
      const response = await through(path, { method });
      expect(response.status).toBe(403);
      expect(await response.text()).not.toContain("do-not-leak");
      await stillRunning();
      expect((await lookalike.inspect()).State.Running).toBe(false);
    });

    it("refuses attach, which hijacks the connection, with 403", async () => {
      const socket = connect(guard.port, "127.0.0.1");
      socket.write(
        `POST /containers/${foreign.id}/attach?stream=1&stdin=1 HTTP/1.1\r\nHost: docker\r\n` +
          "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n",
      );
      let reply = "";
      for await (const chunk of socket) reply += chunk;
      expect(reply).toMatch(/^HTTP\/1\.1 403 /);
    });

    it("lists only this deployment's backends, whatever filter is asked for", async () => {
      const filters = encodeURIComponent(JSON.stringify({ label: [`${TEST_LABEL}=${deployment}`] }));
      const list = await (await through(`/containers/json?all=true&filters=${filters}`)).json();
      expect(list).toEqual([]);
    });
  });

  describe("allows what the broker does", () => {
    let containerId = "";

    it("lets the real DockerDriver start a backend that answers MCP; an inspect through the guard shows no key", async () => {
      const driver = driverThrough(guard);
      const backend = await driver.ensure({ userId: "ab".repeat(32), apiKey: key });
      containerId = backend.containerId;
      const client = await connectClient(backend.endpoint);
      expect(JSON.parse(resultText(await client.callTool({ name: "whoami", arguments: {} }))).key).toHaveLength(12);
      await client.close();

      expect((await docker.getContainer(containerId).inspect()).Config.Env).toContain(`OUTLINE_API_KEY=${key}`);
      const guarded = await (await through(`/containers/${containerId}/json`)).text();
      expect(guarded).not.toContain(key);
      expect(JSON.parse(guarded).Config.Env).toContain("OUTLINE_API_KEY=[redacted]");
      expect((await driver.listManaged()).map((c) => c.id)).toEqual([containerId]);
    });

    it("lets the driver stop the backend and start it again", async () => {
      const driver = driverThrough(guard);
      await driver.stop(containerId);
      expect((await driver.inspect(containerId))?.running).toBe(false);
      expect((await driver.ensure({ userId: "ab".repeat(32), apiKey: key })).containerId).toBe(containerId);
      expect((await driver.inspect(containerId))?.running).toBe(true);
    });

    it("lets the reaper's driver list, stop and remove the backend through a reaper-role guard, and start nothing", async () => {
      const reaper = driverThrough(reaperGuard);
      expect((await reaper.listManaged()).map((c) => c.id)).toEqual([containerId]);
      await reaper.stop(containerId);
      await reaper.remove(containerId);
      expect(await reaper.inspect(containerId)).toBeNull();
      await expect(reaper.ensure({ userId: "cd".repeat(32), apiKey: key })).rejects.toMatchObject({ statusCode: 403 });
      expect(await backends()).toBe(0);
    });
  });
});

import { type BackendContainerSpec, backendCreateBody, LABELS } from "./backend-container.js";
import { DRIVER_DEFAULTS } from "./driver.js";
import {
  checkContainerName,
  checkCreate,
  type EnginePolicy,
  isAllowedImage,
  isBrokerContainer,
} from "./engine-policy.js";

// biome-ignore lint/suspicious/noExplicitAny: tests reach into and change any field of a create body
type CreateBody = Record<string, any>;

const policy: EnginePolicy = {
  images: ["mcp-broker/outline-stub:local", "ghcr.io/vortiago/mcp-outline"],
  deployment: "prod",
  namePrefix: "mcpb",
  port: 3000,
  network: "",
  publishHost: "127.0.0.1",
  maxMemoryBytes: 512 * 1024 * 1024,
  maxNanoCpus: 1e9,
  maxPidsLimit: 256,
};
const spec: BackendContainerSpec = {
  image: "mcp-broker/outline-stub:local",
  userId: "ab".repeat(32),
  deployment: "prod",
  env: ["OUTLINE_API_KEY=ol_api_secret", "OUTLINE_API_URL=https://wiki.example/api"],
  port: 3000,
  publishHost: "127.0.0.1",
  memoryBytes: DRIVER_DEFAULTS.memoryBytes,
  nanoCpus: DRIVER_DEFAULTS.nanoCpus,
  pidsLimit: DRIVER_DEFAULTS.pidsLimit,
  user: DRIVER_DEFAULTS.user,
  readOnlyRootfs: false,
};
/** The driver's own body with one change: every refusal below is about that change alone. */
const driverBody = (change: (body: CreateBody) => void = () => {}) => {
  const body = structuredClone(backendCreateBody(spec)) as CreateBody;
  change(body);
  return body;
};

describe("checkCreate allows what the driver creates", () => {
  it("allows the driver's body with ports published on the publish host", () => {
    expect(checkCreate(driverBody(), policy)).toEqual([]);
  });

  it("allows the driver's body on the configured network, and a read-only root with its /tmp tmpfs", () => {
    const onNetwork = backendCreateBody({ ...spec, network: "mcp-broker-backends", readOnlyRootfs: true });
    expect(checkCreate(onNetwork, { ...policy, network: "mcp-broker-backends" })).toEqual([]);
  });

  it("allows an image named without a tag when the policy names it with :latest, or the reverse", () => {
    expect(isAllowedImage("ghcr.io/vortiago/mcp-outline:latest", policy)).toBe(true);
    expect(isAllowedImage("mcp-broker/outline-stub", policy)).toBe(false);
    expect(isAllowedImage("localhost:5000/mcp-broker/outline-stub:local", policy)).toBe(false);
  });
});

describe("checkCreate refuses anything else", () => {
  const refusals: Array<[string, (body: CreateBody) => void, RegExp]> = [
    ["Privileged", (b) => (b.HostConfig.Privileged = true), /Privileged is not allowed/],
    [
      "privileged spelled in lower case (Go matches it)",
      (b) => (b.HostConfig.privileged = true),
      /privileged is not allowed: a privileged/,
    ],
    ["Binds", (b) => (b.HostConfig.Binds = ["/:/host"]), /Binds/],
    ["Mounts", (b) => (b.HostConfig.Mounts = [{ Type: "bind", Source: "/", Target: "/host" }]), /Mounts/],
    ["a Tmpfs other than the driver's", (b) => (b.HostConfig.Tmpfs = { "/tmp": "rw,exec" }), /Tmpfs/],
    ["Devices", (b) => (b.HostConfig.Devices = [{ PathOnHost: "/dev/sda" }]), /Devices/],
    ["DeviceRequests", (b) => (b.HostConfig.DeviceRequests = [{ Count: -1 }]), /DeviceRequests/],
    ["CapAdd", (b) => (b.HostConfig.CapAdd = ["SYS_ADMIN"]), /CapAdd/],
    ["CapDrop without ALL", (b) => (b.HostConfig.CapDrop = ["NET_RAW"]), /CapDrop: must drop ALL/],
    ["a missing CapDrop", (b) => delete b.HostConfig.CapDrop, /CapDrop is required/],
    ["NetworkMode host", (b) => (b.HostConfig.NetworkMode = "host"), /NetworkMode/],
    ["NetworkMode container:<id>", (b) => (b.HostConfig.NetworkMode = "container:abc"), /NetworkMode/],
    ["PidMode host", (b) => (b.HostConfig.PidMode = "host"), /PidMode/],
    ["IpcMode host", (b) => (b.HostConfig.IpcMode = "host"), /IpcMode/],
    ["UTSMode host", (b) => (b.HostConfig.UTSMode = "host"), /UTSMode/],
    ["UsernsMode host", (b) => (b.HostConfig.UsernsMode = "host"), /UsernsMode/],
    ["CgroupnsMode host", (b) => (b.HostConfig.CgroupnsMode = "host"), /CgroupnsMode/],
    ["VolumesFrom", (b) => (b.HostConfig.VolumesFrom = ["other"]), /VolumesFrom/],
    ["Sysctls", (b) => (b.HostConfig.Sysctls = { "net.ipv4.ip_forward": "1" }), /Sysctls/],
    ["seccomp=unconfined", (b) => b.HostConfig.SecurityOpt.push("seccomp=unconfined"), /SecurityOpt/],
    ["apparmor=unconfined", (b) => (b.HostConfig.SecurityOpt = ["apparmor=unconfined"]), /SecurityOpt/],
    ["a missing no-new-privileges", (b) => delete b.HostConfig.SecurityOpt, /SecurityOpt is required/],
    ["Runtime", (b) => (b.HostConfig.Runtime = "runc-unsafe"), /Runtime/],
    ["an unknown HostConfig field", (b) => (b.HostConfig.ShmSize = 1 << 30), /ShmSize is not allowed/],
    [
      "a second published port",
      (b) => (b.HostConfig.PortBindings["22/tcp"] = [{ HostIp: "127.0.0.1" }]),
      /PortBindings/,
    ],
    [
      "publishing on every address",
      (b) => (b.HostConfig.PortBindings["3000/tcp"][0].HostIp = "0.0.0.0"),
      /PortBindings/,
    ],
    ["a fixed host port", (b) => (b.HostConfig.PortBindings["3000/tcp"][0].HostPort = "6379"), /PortBindings/],
    ["PublishAllPorts", (b) => (b.HostConfig.PublishAllPorts = true), /PublishAllPorts/],
    ["another network", (b) => (b.HostConfig.NetworkMode = "mcp-broker_broker"), /NetworkMode/],
    ["extra networks", (b) => (b.NetworkingConfig = { EndpointsConfig: { other: {} } }), /NetworkingConfig/],
    ["memory over the maximum", (b) => (b.HostConfig.Memory = 2 * 512 * 1024 * 1024), /Memory: must be/],
    ["no memory limit", (b) => delete b.HostConfig.Memory, /Memory is required/],
    ["CPUs over the maximum", (b) => (b.HostConfig.NanoCpus = 2e9), /NanoCpus/],
    ["unlimited processes", (b) => (b.HostConfig.PidsLimit = -1), /PidsLimit/],
    ["MemorySwap", (b) => (b.HostConfig.MemorySwap = -1), /MemorySwap/],
    ["a restart policy", (b) => (b.HostConfig.RestartPolicy = { Name: "always" }), /RestartPolicy/],
    ["another image", (b) => (b.Image = "mcp-broker/redis:local"), /Image/],
    ["root", (b) => (b.User = "0:0"), /User/],
    ["a user name", (b) => (b.User = "app"), /User/],
    ["no user", (b) => delete b.User, /User is required/],
    ["no labels", (b) => delete b.Labels, /Labels is required/],
    ["another deployment's labels", (b) => (b.Labels[LABELS.deployment] = "other"), /Labels/],
    ["an extra label", (b) => (b.Labels["com.example"] = "x"), /Labels/],
    ["another exposed port", (b) => (b.ExposedPorts["22/tcp"] = {}), /ExposedPorts/],
    ["a replaced command", (b) => (b.Cmd = ["sh", "-c", "id"]), /Cmd is not allowed/],
    ["anonymous volumes", (b) => (b.Volumes = { "/data": {} }), /Volumes is not allowed/],
    ["a HostConfig that is not an object", (b) => (b.HostConfig = "host"), /HostConfig. must be a JSON object/],
  ];
  it.each(refusals)("refuses %s", (_name, change, reason) => {
    const problems = checkCreate(driverBody(change), policy);
    expect(problems.join("\n")).toMatch(reason);
  });

  it("refuses a body that is not an object, and reports every problem at once", () => {
    expect(checkCreate([], policy)).toEqual(["body must be a JSON object"]);
    const problems = checkCreate(
      driverBody((b) => {
        b.HostConfig.Privileged = true;
        b.HostConfig.Binds = ["/:/host"];
        b.User = "root";
      }),
      policy,
    );
    expect(problems).toHaveLength(3);
  });

  it("refuses ports published when backends share a network", () => {
    const problems = checkCreate(driverBody(), { ...policy, network: "mcp-broker-backends" });
    expect(problems).toEqual([
      "HostConfig.PortBindings: ports are not published: backends are reached on the network",
      "HostConfig.NetworkMode is required",
    ]);
  });
});

describe("container names and labels", () => {
  it("accepts the driver's names for this deployment only", () => {
    expect(checkContainerName(`mcpb-prod-${"ab".repeat(12)}`, policy)).toBeUndefined();
    expect(checkContainerName("mcpb-other-abab", policy)).toMatch(/not mcpb-prod-<user>/);
    expect(checkContainerName("redis", policy)).toBeDefined();
  });

  it("knows this deployment's containers by their labels", () => {
    expect(isBrokerContainer(backendCreateBody(spec).Labels, policy)).toBe(true);
    expect(isBrokerContainer({ [LABELS.managed]: "true", [LABELS.deployment]: "other" }, policy)).toBe(false);
    expect(isBrokerContainer(null, policy)).toBe(false);
  });
});

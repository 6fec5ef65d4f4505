import type { Socket } from "node:net";
import { backendCreateBody, LABELS } from "./backend-container.js";
import {
  candidateSubnets,
  closeBackendConnections,
  inCidr,
  isPoolSubnet,
  networkCreateBody,
  PEER_LABEL,
  PER_USER_NETWORK,
} from "./backend-network.js";
import { DRIVER_DEFAULTS } from "./driver.js";
import { checkCreate, type EnginePolicy } from "./engine-policy.js";
import { checkNetworkCreate, isBrokerNetwork, isPeerContainer, networkMember } from "./network-policy.js";

// biome-ignore lint/suspicious/noExplicitAny: tests reach into and change any field of a body
type Body = Record<string, any>;

const policy: EnginePolicy = {
  images: ["mcp-broker/outline-stub:local"],
  deployment: "prod",
  namePrefix: "mcpb",
  port: 3000,
  network: PER_USER_NETWORK,
  publishHost: "127.0.0.1",
  maxMemoryBytes: 512 * 1024 * 1024,
  maxNanoCpus: 1e9,
  maxPidsLimit: 256,
  subnets: { pool: "10.213.0.0/16", prefixLength: 27 },
};
const name = `mcpb-prod-${"ab".repeat(12)}`;
const driverNetwork = (change: (body: Body) => void = () => {}) => {
  const body = structuredClone(networkCreateBody(name, "prod", "10.213.4.32/27")) as Body;
  change(body);
  return body;
};

describe("backend subnets", () => {
  it("offers aligned subnets of the pool's size, a different first one for different names", () => {
    const subnets = candidateSubnets(name, { pool: "10.213.0.0/16", prefixLength: 27 }, 4);
    expect(subnets).toHaveLength(4);
    for (const subnet of subnets) expect(isPoolSubnet(subnet, { pool: "10.213.0.0/16", prefixLength: 27 })).toBe(true);
    expect(candidateSubnets(`${name}x`, { pool: "10.213.0.0/16", prefixLength: 27 })[0]).not.toBe(subnets[0]);
    expect(candidateSubnets(name, { pool: "10.213.240.0/26", prefixLength: 27 }, 64)).toHaveLength(2);
  });

  it("knows which addresses and subnets are the pool's", () => {
    expect(inCidr("10.213.7.9", "10.213.0.0/16")).toBe(true);
    expect(inCidr("::ffff:10.213.7.9", "10.213.0.0/16")).toBe(true);
    expect(inCidr("10.214.0.1", "10.213.0.0/16")).toBe(false);
    expect(inCidr("::1", "10.213.0.0/16")).toBe(false);
    expect(isPoolSubnet("10.213.4.32/27", policy.subnets as never)).toBe(true);
    expect(isPoolSubnet("10.213.4.40/27", policy.subnets as never)).toBe(false); // not aligned
    expect(isPoolSubnet("10.213.4.0/24", policy.subnets as never)).toBe(false); // wider
    expect(isPoolSubnet("172.17.0.0/27", policy.subnets as never)).toBe(false); // outside
  });

  it("closes a connection that arrives on a backend network address or from one, and only those", () => {
    const close = closeBackendConnections("10.213.0.0/16");
    const socket = (localAddress: string, remoteAddress: string) => {
      let destroyed = false;
      close({ localAddress, remoteAddress, destroy: () => (destroyed = true) } as unknown as Socket);
      return destroyed;
    };
    expect(socket("::ffff:10.213.1.2", "::ffff:10.213.1.1")).toBe(true);
    // A backend's packet forwarded by the host to the peer's broker address keeps its source.
    expect(socket("::ffff:172.30.0.4", "::ffff:10.213.75.130")).toBe(true);
    expect(socket("172.20.0.5", "172.20.0.3")).toBe(false);
    expect(socket("127.0.0.1", "127.0.0.1")).toBe(false);
  });
});

describe("checkNetworkCreate", () => {
  it("allows the driver's network body", () => {
    expect(checkNetworkCreate(driverNetwork(), policy)).toEqual([]);
  });

  const refusals: Array<[string, (body: Body) => void, RegExp]> = [
    ["another deployment's name", (b) => (b.Name = "mcpb-other-abab"), /Name: name/],
    ["a compose network's name", (b) => (b.Name = "mcp-broker_broker"), /Name/],
    ["a subnet outside the pool", (b) => (b.IPAM.Config[0].Subnet = "172.17.0.0/27"), /IPAM/],
    ["a wider subnet", (b) => (b.IPAM.Config[0].Subnet = "10.213.0.0/16"), /IPAM/],
    ["a second subnet", (b) => b.IPAM.Config.push({ Subnet: "10.213.8.0/27" }), /IPAM/],
    ["a chosen gateway address", (b) => (b.IPAM.Config[0].Gateway = "10.213.4.33"), /IPAM/],
    ["another IPAM driver", (b) => (b.IPAM.Driver = "external"), /IPAM/],
    ["the host or macvlan driver", (b) => (b.Driver = "macvlan"), /Driver/],
    ["bridge options (a host interface)", (b) => (b.Options = { parent: "eth0" }), /Options is not allowed/],
    ["an internal flag", (b) => (b.Internal = true), /Internal is not allowed/],
    ["attachable", (b) => (b.Attachable = true), /Attachable is not allowed/],
    ["an extra label", (b) => (b.Labels.x = "y"), /Labels/],
    ["no labels", (b) => delete b.Labels, /Labels is required/],
  ];
  it.each(refusals)("refuses %s", (_name, change, reason) => {
    expect(checkNetworkCreate(driverNetwork(change), policy).join("\n")).toMatch(reason);
  });
});

describe("network members and labels", () => {
  it("takes a connect body of Container alone, and Force on disconnect", () => {
    expect(networkMember({ Container: "abc123" }, "connect")).toEqual({ ok: true, container: "abc123", force: false });
    expect(networkMember({ Container: "abc", Force: true }, "disconnect")).toMatchObject({ ok: true, force: true });
    expect(networkMember({ Container: "abc", EndpointConfig: { Aliases: ["redis"] } }, "connect").ok).toBe(false);
    expect(networkMember({ Container: "../containers/x" }, "connect").ok).toBe(false);
    expect(networkMember("abc", "connect").ok).toBe(false);
  });

  it("knows the deployment's networks and peers by their labels", () => {
    expect(isBrokerNetwork(networkCreateBody(name, "prod", "10.213.0.0/27").Labels, policy)).toBe(true);
    expect(isBrokerNetwork({ [LABELS.managed]: "true", [LABELS.deployment]: "other" }, policy)).toBe(false);
    expect(isPeerContainer({ [PEER_LABEL]: "prod" }, policy)).toBe(true);
    expect(isPeerContainer({ [LABELS.managed]: "true", [LABELS.deployment]: "prod" }, policy)).toBe(false);
  });

  it("lets a backend join only a network named as a backend, never a shared one", () => {
    const body = backendCreateBody({
      ...DRIVER_DEFAULTS,
      userId: "ab".repeat(32),
      image: "mcp-broker/outline-stub:local",
      deployment: "prod",
      env: [],
      network: name,
    });
    expect(checkCreate(body, policy)).toEqual([]);
    const shared = structuredClone(body) as Body;
    shared.HostConfig.NetworkMode = "mcp-broker_broker";
    expect(checkCreate(shared, policy).join()).toMatch(/NetworkMode: must be the backend's own network/);
  });
});

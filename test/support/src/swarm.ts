import { randomUUID } from "node:crypto";
import { connect } from "node:net";
import type Docker from "dockerode";
import { eventually } from "./eventually.js";
import { images } from "./images.js";

export interface TestSwarm {
  /** An attachable overlay network made for this test file, as the gateways of a stack share one. */
  network: string;
  /**
   * An HTTP CONNECT proxy on 127.0.0.1 whose other end is on `network`: through it the test
   * (on the host, outside any overlay) reaches services by name, resolved by Docker's DNS as
   * a gateway's would be.
   */
  proxyUrl: string;
  /** Removes the proxy and the network; leaves the swarm when this helper made the engine join one. */
  stop(): Promise<void>;
}

const GW_BRIDGE = "docker_gwbridge";

/** A CONNECT-only proxy in a dozen lines of Node, run by the outline-stub image (which has Node and no shell). */
const PROXY = `
const net = require("node:net");
require("node:http").createServer((_, res) => res.writeHead(405).end())
  .on("connect", (req, client, head) => {
    const [host, port] = req.url.split(":");
    const upstream = net.connect(Number(port), host, () => {
      client.write("HTTP/1.1 200 Connection Established\\r\\n\\r\\n");
      upstream.write(head);
      upstream.pipe(client).on("error", () => {});
      client.pipe(upstream);
    });
    upstream.on("error", () => client.destroy());
    client.on("error", () => upstream.destroy());
  })
  .listen(8080);
`;

/**
 * A one-node swarm for a test file: the engine's own swarm when it manages one, else one made
 * with `docker swarm init --advertise-addr 127.0.0.1` and left again in `stop`, so the engine
 * ends as it was found. Swarm's virtual IPs and ingress mesh need IPVS, which some kernels lack;
 * nothing here uses them (dnsrr services, a proxy published like any container).
 */
export async function startTestSwarm(docker: Docker): Promise<TestSwarm> {
  const info = await docker.info();
  const state: string = info.Swarm?.LocalNodeState ?? "inactive";
  let joined = false;
  // Joining creates the docker_gwbridge network and leaving keeps it: it goes too, if it was not there.
  let madeBridge = false;
  if (state === "inactive") {
    madeBridge = !(await docker.listNetworks({ filters: { name: [GW_BRIDGE] } })).some((n) => n.Name === GW_BRIDGE);
    await docker.swarmInit({ ListenAddr: "127.0.0.1:2377", AdvertiseAddr: "127.0.0.1" });
    joined = true;
  } else if (state !== "active" || !info.Swarm?.ControlAvailable) {
    throw new Error(`these tests need a swarm manager; this engine's swarm state is ${state}`);
  }
  const network = `mcpb-test-${randomUUID().slice(0, 8)}`;
  const labels = { "mcp-broker.test": "swarm" };
  let proxy: Docker.Container | undefined;
  const stop = async () => {
    await proxy?.remove({ force: true }).catch(() => {});
    // Tasks leave the network a moment after their service is removed.
    await eventually(() => docker.getNetwork(network).remove(), { timeoutMs: 20_000, intervalMs: 250 }).catch(() => {});
    if (joined) await docker.swarmLeave({ force: true });
    if (madeBridge)
      await docker
        .getNetwork(GW_BRIDGE)
        .remove()
        .catch(() => {});
  };
  try {
    await docker.createNetwork({ Name: network, Driver: "overlay", Attachable: true, Labels: labels });
    proxy = await docker.createContainer({
      Image: images.stub,
      Cmd: ["node", "-e", PROXY],
      User: "1000:1000",
      Labels: labels,
      ExposedPorts: { "8080/tcp": {} },
      HostConfig: { NetworkMode: network, PortBindings: { "8080/tcp": [{ HostIp: "127.0.0.1", HostPort: "" }] } },
    });
    await proxy.start();
    const port = (await proxy.inspect()).NetworkSettings.Ports["8080/tcp"]?.[0]?.HostPort;
    await eventually(() => accepts(Number(port)), { timeoutMs: 10_000 });
    return { network, proxyUrl: `http://127.0.0.1:${port}`, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

function accepts(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => {
      socket.end();
      resolve();
    });
    socket.on("error", reject);
  });
}

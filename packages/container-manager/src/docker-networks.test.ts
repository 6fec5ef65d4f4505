import { randomUUID } from "node:crypto";
import { images } from "@mcp-broker/test-support";
import { requireDocker } from "@mcp-broker/test-support/docker";
import type Docker from "dockerode";
import { brokerLabelFilter } from "./backend-container.js";
import { PEER_LABEL } from "./backend-network.js";
import { DockerNetworks } from "./docker-networks.js";

// Run under `flock /tmp/mcpb-test.lock`: this file creates containers and networks on the real engine.
const deployment = `nets-${randomUUID().slice(0, 8)}`;
const subnets = { pool: "10.219.0.0/16", prefixLength: 27 };
const name = (n: number) => `mcpb-${deployment}-${n.toString(16).padStart(4, "0")}`;
const mean = (values: number[]) => Math.round(values.reduce((sum, v) => sum + v, 0) / values.length);

describe("per-user backend networks on the real engine", () => {
  let docker: Docker;
  const peers: Docker.Container[] = [];

  /** A stand-in for a gateway replica: any running container labelled as a peer of the deployment. */
  const startPeer = async () => {
    const peer = await docker.createContainer({
      Image: images.stub,
      Env: ["OUTLINE_API_KEY=peer", "PORT=3000"],
      Labels: { [PEER_LABEL]: deployment },
    });
    await peer.start();
    peers.push(peer);
    return peer;
  };
  const members = async (network: string) =>
    Object.keys((await docker.getNetwork(network).inspect()).Containers ?? {}).sort();
  const networksOf = async () =>
    (await docker.listNetworks({ filters: { label: brokerLabelFilter(deployment) } })).map((n) => n.Name).sort();

  beforeAll(async () => {
    docker = await requireDocker(images.stub);
  });
  afterAll(async () => {
    await Promise.all(peers.map((peer) => peer.remove({ force: true }).catch(() => {})));
    for (const network of await networksOf())
      await docker
        .getNetwork(network)
        .remove()
        .catch(() => {});
  });

  it("creates each network with a pool subnet, connects every peer, and prints the cost", async () => {
    const [first, second] = [await startPeer(), await startPeer()];
    const networks = new DockerNetworks(docker, { deployment, subnets, self: first.id.slice(0, 12) });
    const withPeers: number[] = [];
    for (let n = 1; n <= 3; n++) {
      const started = performance.now();
      await networks.ensure(name(n));
      withPeers.push(performance.now() - started);
    }
    for (let n = 1; n <= 3; n++) {
      expect(await members(name(n))).toEqual([first.id, second.id].sort());
      const info = await docker.getNetwork(name(n)).inspect();
      expect(info.IPAM?.Config?.[0]?.Subnet).toMatch(/^10\.219\.\d+\.\d+\/27$/);
    }
    // Idempotent: a second ensure finds the network and its peers as they are.
    await networks.ensure(name(1));
    expect(await members(name(1))).toEqual([first.id, second.id].sort());

    // What one more replica costs per backend network: one connect.
    const third = await startPeer();
    const joiner = new DockerNetworks(docker, { deployment, subnets, self: third.id.slice(0, 12) });
    const started = performance.now();
    expect(await joiner.join()).toBe(3);
    const joinMs = performance.now() - started;
    for (let n = 1; n <= 3; n++) expect(await members(name(n))).toContain(third.id);

    const creates: number[] = [];
    for (let n = 10; n < 13; n++) {
      const t = performance.now();
      await docker.createNetwork({
        Name: name(n),
        Labels: { "mcp-broker.managed": "true", "mcp-broker.deployment": deployment },
        IPAM: { Config: [{ Subnet: `10.219.${200 + n}.0/27` }] },
      });
      creates.push(performance.now() - t);
    }
    console.log(
      `per-user network cost: create + connect 2 peers ${mean(withPeers)} ms per backend (of which the bare create ${mean(creates)} ms); ` +
        `each further replica joins at ${Math.round(joinMs / 3)} ms per backend network (3 joined in ${Math.round(joinMs)} ms, 8 at a time)`,
    );
  }, 60_000);

  it("joins a replica that missed a network once: true when it was not on it, false when it was or the network is gone", async () => {
    const creator = await startPeer();
    const networks = new DockerNetworks(docker, { deployment, subnets, self: creator.id.slice(0, 12) });
    await networks.ensure(name(5));
    // A replica that was restarting while the network was made: not connected by its creator.
    const missed = await docker.createContainer({ Image: images.stub, Env: ["OUTLINE_API_KEY=peer", "PORT=3000"] });
    await missed.start();
    peers.push(missed);
    expect(await members(name(5))).not.toContain(missed.id);
    const replica = new DockerNetworks(docker, { deployment, subnets, self: missed.id.slice(0, 12) });
    expect(await replica.joinOne(name(5))).toBe(true);
    expect(await members(name(5))).toContain(missed.id);
    expect(await replica.joinOne(name(5))).toBe(false);
    expect(await replica.joinOne(name(99))).toBe(false); // no such network
  }, 60_000);

  it("prunes networks whose backend is gone, disconnecting the peers first, and keeps the live ones", async () => {
    const networks = new DockerNetworks(docker, { deployment, subnets });
    const live = new Set([name(1)]);
    expect(await networks.prune(live, 60_000)).toBe(0); // all younger than the grace period
    const started = performance.now();
    const removed = await networks.prune(live, 0);
    const ms = performance.now() - started;
    expect(removed).toBeGreaterThanOrEqual(5);
    expect(await networksOf()).toEqual([name(1)]);
    console.log(`pruned ${removed} backend networks (3 peers each on 2 of them) in ${Math.round(ms)} ms`);
  }, 60_000);

  it("takes the next pool subnet when the first choice is in use", async () => {
    const tiny = { pool: "10.219.240.0/26", prefixLength: 27 }; // two subnets only
    const networks = new DockerNetworks(docker, { deployment, subnets: tiny });
    await networks.ensure(name(20));
    await networks.ensure(name(21));
    const used = await Promise.all(
      [name(20), name(21)].map(async (n) => (await docker.getNetwork(n).inspect()).IPAM?.Config?.[0]?.Subnet),
    );
    expect(used.sort()).toEqual(["10.219.240.0/27", "10.219.240.32/27"]);
    await expect(networks.ensure(name(22))).rejects.toMatchObject({ code: "CONTAINER_START_FAILED" });
  }, 60_000);
});

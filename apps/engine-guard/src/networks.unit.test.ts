import { backendCreateBody, networkCreateBody } from "@mcp-broker/container-manager";
import { pino } from "pino";
import { loadConfig } from "./config.js";
import { type RunningGuard, startGuard } from "./server.js";
import { FAKE_CONTAINERS, FAKE_NETWORKS, type FakeEngine, startFakeEngine } from "./testing/fake-engine.js";

const log = pino({ level: "silent" });
const config = (socketPath: string, role: string, network = "per-user") =>
  loadConfig({
    GUARD_PORT: "0",
    GUARD_ENGINE_SOCKET: socketPath,
    GUARD_ROLE: role,
    GUARD_IMAGES: "mcp-broker/outline-stub:local",
    GUARD_NETWORK: network,
    GUARD_NETWORK_POOL: "10.213.0.0/16",
    GUARD_NETWORK_PREFIX: "27",
    DEPLOYMENT_NAME: "prod",
  });
const networkBody = networkCreateBody("mcpb-prod-abab", "prod", "10.213.0.32/27");
const post = (body: unknown): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

describe("the engine guard's per-user network calls, in front of a fake engine", () => {
  let engine: FakeEngine;
  let guard: RunningGuard;
  let reaperGuard: RunningGuard;
  const call = (path: string, init: RequestInit = {}, via = guard) => fetch(`${via.url}${path}`, init);
  const sent = (pattern: RegExp) => engine.calls.filter((c) => pattern.test(`${c.method} ${c.url}`));

  beforeAll(async () => {
    engine = await startFakeEngine();
    guard = await startGuard(config(engine.socketPath, "gateway"), log);
    reaperGuard = await startGuard(config(engine.socketPath, "reaper"), log);
  });
  afterAll(async () => {
    await guard.close();
    await reaperGuard.close();
    await engine.close();
  });
  beforeEach(() => engine.calls.splice(0));

  it("forwards the driver's network create, re-serialised", async () => {
    const response = await call("/v1.41/networks/create?Name=x", post(networkBody));
    expect(response.status).toBe(201);
    expect(sent(/networks\/create/)).toEqual([
      { method: "POST", url: "/v1.41/networks/create", body: JSON.stringify(networkBody) },
    ]);
  });

  it.each([
    ["a subnet outside the pool", { ...networkBody, IPAM: { Config: [{ Subnet: "172.17.0.0/27" }] } }, /IPAM/],
    ["a bridge on a host interface", { ...networkBody, Options: { parent: "eth0" } }, /Options/],
    ["a network named like the compose ones", { ...networkBody, Name: "compose_broker" }, /Name/],
  ])("refuses a network create with %s before the engine hears of it", async (_name, body, reason) => {
    const response = await call("/networks/create", post(body));
    expect(response.status).toBe(403);
    expect((await response.json()).message).toMatch(reason);
    expect(engine.calls).toEqual([]);
  });

  it("connects a peer to a backend network, by resolved ids and with nothing but the container", async () => {
    const response = await call("/networks/mcpb-prod-abab/connect", post({ Container: "compose_gateway_1" }));
    expect(response.status).toBe(200);
    expect(sent(/connect/)).toEqual([
      {
        method: "POST",
        url: `/networks/${FAKE_NETWORKS.backend.Id}/connect`,
        body: JSON.stringify({ Container: FAKE_CONTAINERS.peer.Id }),
      },
    ]);
  });

  it("refuses to connect a backend or any other container: only peers join backend networks", async () => {
    for (const container of ["mcpb-prod-abab", "postgres"]) {
      const response = await call("/networks/mcpb-prod-abab/connect", post({ Container: container }));
      expect(response.status).toBe(403);
      expect((await response.json()).message).toMatch(/not a peer of deployment prod/);
    }
    expect(sent(/connect/)).toEqual([]);
  });

  it("refuses endpoint settings (aliases, fixed addresses) on a connect", async () => {
    const body = { Container: "compose_gateway_1", EndpointConfig: { Aliases: ["redis"] } };
    expect((await call("/networks/mcpb-prod-abab/connect", post(body))).status).toBe(403);
    expect(sent(/connect/)).toEqual([]);
  });

  it("refuses to connect anything to, inspect, or remove a network that is not a backend's", async () => {
    const connect = await call("/networks/compose_broker/connect", post({ Container: "compose_gateway_1" }));
    expect(connect.status).toBe(403);
    expect((await call("/networks/compose_broker")).status).toBe(403);
    expect((await call("/networks/compose_broker", { method: "DELETE" })).status).toBe(403);
    expect(sent(/connect|DELETE/)).toEqual([]);
  });

  it("lists only backend networks, with the deployment's label filter", async () => {
    const list = await (await call("/networks")).json();
    expect(list.map((n: { Name: string }) => n.Name)).toEqual([FAKE_NETWORKS.backend.Name]);
    const url = new URL(sent(/GET \/networks/)[0]?.url as string, "http://engine");
    expect(JSON.parse(url.searchParams.get("filters") as string).label).toEqual([
      "mcp-broker.managed=true",
      "mcp-broker.deployment=prod",
    ]);
  });

  it("lists the deployment's peers when asked for them, and nothing else", async () => {
    const filters = JSON.stringify({ label: ["mcp-broker.peer=prod"] });
    const list = await (await call(`/containers/json?filters=${encodeURIComponent(filters)}`)).json();
    expect(list.map((c: { Id: string }) => c.Id)).toEqual([FAKE_CONTAINERS.backend.Id, FAKE_CONTAINERS.peer.Id]);
    const url = new URL(sent(/containers\/json/)[0]?.url as string, "http://engine");
    expect(JSON.parse(url.searchParams.get("filters") as string).label).toEqual(["mcp-broker.peer=prod"]);
  });

  it("lets the reaper disconnect and remove a backend network, but not create one", async () => {
    const disconnect = await call(
      "/networks/mcpb-prod-abab/disconnect",
      post({ Container: "compose_gateway_1", Force: true }),
      reaperGuard,
    );
    expect(disconnect.status).toBe(200);
    expect((await call("/networks/mcpb-prod-abab", { method: "DELETE" }, reaperGuard)).status).toBe(204);
    expect((await call("/networks/create", post(networkBody), reaperGuard)).status).toBe(403);
    expect(sent(/networks\/create/)).toEqual([]);
  });

  it("refuses a backend create on any network but its own", async () => {
    const body = backendCreateBody({
      image: "mcp-broker/outline-stub:local",
      userId: "abab",
      deployment: "prod",
      env: [],
      port: 3000,
      network: "mcpb-prod-cdcd",
      publishHost: "127.0.0.1",
      memoryBytes: 256 * 1024 * 1024,
      nanoCpus: 5e8,
      pidsLimit: 128,
      user: "1000:1000",
      readOnlyRootfs: false,
    });
    const response = await call("/containers/create?name=mcpb-prod-abab", post(body));
    expect(response.status).toBe(403);
    expect((await response.json()).message).toMatch(/own network "mcpb-prod-abab"/);
    const own = { ...body, HostConfig: { ...body.HostConfig, NetworkMode: "mcpb-prod-abab" } };
    expect((await call("/containers/create?name=mcpb-prod-abab", post(own))).status).toBe(201);
  });

  it("refuses every network call when backends do not get networks of their own", async () => {
    const shared = await startGuard(config(engine.socketPath, "gateway", "mcp-broker-backends"), log);
    const response = await call("/networks/create", post(networkBody), shared);
    await shared.close();
    expect(response.status).toBe(403);
    expect((await response.json()).message).toMatch(/only with per-user backend networks/);
    expect(engine.calls).toEqual([]);
  });
});

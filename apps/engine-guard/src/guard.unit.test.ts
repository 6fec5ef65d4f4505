import { connect } from "node:net";
import { backendCreateBody } from "@mcp-broker/container-manager";
import { pino } from "pino";
import { loadConfig } from "./config.js";
import { type RunningGuard, startGuard } from "./server.js";
import { FAKE_CONTAINERS, type FakeEngine, startFakeEngine } from "./testing/fake-engine.js";

const log = pino({ level: "silent" });
const config = (socketPath: string, role = "gateway") =>
  loadConfig({
    GUARD_PORT: "0",
    GUARD_ENGINE_SOCKET: socketPath,
    GUARD_ROLE: role,
    GUARD_IMAGES: "mcp-broker/outline-stub:local",
    DEPLOYMENT_NAME: "prod",
  });
const createBody = backendCreateBody({
  image: "mcp-broker/outline-stub:local",
  userId: "abab",
  deployment: "prod",
  env: ["OUTLINE_API_KEY=ol_api_secret_key"],
  port: 3000,
  publishHost: "127.0.0.1",
  memoryBytes: 256 * 1024 * 1024,
  nanoCpus: 5e8,
  pidsLimit: 128,
  user: "1000:1000",
  readOnlyRootfs: true,
});

describe("the engine guard in front of a fake engine", () => {
  let engine: FakeEngine;
  let guard: RunningGuard;
  const call = (path: string, init: RequestInit = {}) => fetch(`${guard.url}${path}`, init);
  const seen = (pattern: RegExp) => engine.calls.filter((c) => pattern.test(`${c.method} ${c.url}`));

  beforeAll(async () => {
    engine = await startFakeEngine();
    guard = await startGuard(config(engine.socketPath), log);
  });
  afterAll(async () => {
    await guard.close();
    await engine.close();
  });
  beforeEach(() => engine.calls.splice(0));

  it("forwards the driver's create with the name alone in the query, so the key is in no URL", async () => {
    // dockerode's own request: every create option copied into the query string as well.
    const dockerodeQuery = new URLSearchParams({ name: "mcpb-prod-abab", Env: "OUTLINE_API_KEY=ol_api_secret_key" });
    const response = await call(`/containers/create?${dockerodeQuery}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "mcpb-prod-abab", ...createBody }),
    });
    expect(response.status).toBe(201);
    expect(engine.calls).toEqual([
      { method: "POST", url: "/containers/create?name=mcpb-prod-abab", body: JSON.stringify(createBody) },
    ]);
  });

  it("refuses a privileged create with 403 and a reason, and the engine never hears of it", async () => {
    const body = { ...createBody, HostConfig: { ...createBody.HostConfig, Privileged: true } };
    const response = await call("/containers/create?name=mcpb-prod-abab", {
      method: "POST",
      body: JSON.stringify(body),
    });
    expect(response.status).toBe(403);
    expect((await response.json()).message).toMatch(/HostConfig\.Privileged is not allowed/);
    expect(engine.calls).toEqual([]);
  });

  it("answers an inspect of a backend without its env values", async () => {
    const response = await call("/containers/mcpb-prod-abab/json");
    const text = await response.text();
    expect(response.status).toBe(200);
    expect(text).not.toContain("ol_api_secret_key");
    expect(JSON.parse(text).Config.Env).toEqual(["OUTLINE_API_KEY=[redacted]", "OUTLINE_API_URL=[redacted]"]);
  });

  it("refuses an inspect of another container, and passes on the engine's 404 for a missing one", async () => {
    const foreign = await call("/containers/postgres/json");
    expect(foreign.status).toBe(403);
    expect(await foreign.text()).not.toContain("hunter2");
    expect((await call("/containers/nothing-here/json")).status).toBe(404);
  });

  it("stops a backend by its resolved id and sends none of the client's body", async () => {
    const response = await call("/containers/mcpb-prod-abab/stop?t=5", { method: "POST", body: '{"t":5}' });
    expect(response.status).toBe(204);
    expect(seen(/stop/)).toEqual([
      { method: "POST", url: `/containers/${FAKE_CONTAINERS.backend.Id}/stop?t=5`, body: "" },
    ]);
  });

  it("refuses to stop another container before the engine is asked to", async () => {
    expect((await call("/containers/postgres/stop", { method: "POST" })).status).toBe(403);
    expect(seen(/stop/)).toEqual([]);
  });

  it("lists with this deployment's label filter and drops anything else the engine returns", async () => {
    const list = await (await call("/containers/json?all=true")).json();
    expect(list.map((c: { Id: string }) => c.Id)).toEqual([FAKE_CONTAINERS.backend.Id]);
    const url = new URL(seen(/containers\/json/)[0]?.url as string, "http://engine");
    expect(JSON.parse(url.searchParams.get("filters") as string).label).toEqual([
      "mcp-broker.managed=true",
      "mcp-broker.deployment=prod",
    ]);
  });

  it("streams logs as the engine writes them", async () => {
    const response = await call("/containers/mcpb-prod-abab/logs?stdout=true&follow=true");
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("first line\n");
    engine.writeSecondLogLine();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("second line\n");
  });

  it("sends the API version prefix on", async () => {
    expect((await call("/v1.41/_ping")).status).toBe(200);
    expect(engine.calls.map((c) => c.url)).toEqual(["/v1.41/_ping"]);
  });

  it("refuses a connection upgrade (attach, exec) with 403", async () => {
    const socket = connect(guard.port, "127.0.0.1");
    socket.write(
      "POST /containers/mcpb-prod-abab/attach?stream=1 HTTP/1.1\r\nHost: guard\r\n" +
        "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n",
    );
    let reply = "";
    for await (const chunk of socket) reply += chunk;
    expect(reply).toMatch(/^HTTP\/1\.1 403 /);
    expect(engine.calls).toEqual([]);
  });

  it("refuses creates in the reaper role", async () => {
    const reaperGuard = await startGuard(config(engine.socketPath, "reaper"), log);
    const response = await fetch(`${reaperGuard.url}/containers/create?name=mcpb-prod-abab`, {
      method: "POST",
      body: JSON.stringify(createBody),
    });
    await reaperGuard.close();
    expect(response.status).toBe(403);
    expect(engine.calls).toEqual([]);
  });

  it("answers 503 when the engine socket is gone, which the driver reads as 'engine unavailable'", async () => {
    const orphan = await startGuard(config("/nonexistent/docker.sock"), log);
    const response = await fetch(`${orphan.url}/_ping`);
    await orphan.close();
    expect(response.status).toBe(503);
    expect((await response.json()).message).toMatch(/Docker engine unavailable/);
  });
});

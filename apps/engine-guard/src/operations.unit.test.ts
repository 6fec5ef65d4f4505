import type { EnginePolicy } from "@mcp-broker/container-manager";
import { type OperationName, parseRequest } from "./operations.js";

const policy: EnginePolicy = {
  images: ["mcp-broker/outline-stub:local", "ghcr.io/vortiago/mcp-outline:latest"],
  deployment: "prod",
  namePrefix: "mcpb",
  port: 3000,
  network: "",
  publishHost: "127.0.0.1",
  maxMemoryBytes: 512 * 1024 * 1024,
  maxNanoCpus: 1e9,
  maxPidsLimit: 256,
};
const parse = (method: string, path: string, role: "gateway" | "reaper" = "gateway") =>
  parseRequest(method, new URL(path, "http://guard"), role, policy);
const allowed = (method: string, path: string, role: "gateway" | "reaper" = "gateway") => {
  const parsed = parse(method, path, role);
  if (!parsed.ok) throw new Error(`refused: ${parsed.reason}`);
  return parsed.operation;
};

describe("parseRequest: the calls the driver makes", () => {
  it.each<[string, string, OperationName]>([
    ["GET", "/_ping", "ping"],
    ["HEAD", "/_ping", "ping"],
    ["GET", "/version", "version"],
    ["GET", "/containers/json?all=true", "list"],
    ["POST", "/containers/create?name=mcpb-prod-abab", "create"],
    ["GET", "/containers/mcpb-prod-abab/json", "inspect"],
    ["POST", "/containers/mcpb-prod-abab/start", "start"],
    ["POST", "/containers/0123abcd/stop?t=5", "stop"],
    ["POST", "/containers/0123abcd/kill?signal=SIGKILL", "kill"],
    ["POST", "/containers/0123abcd/wait?condition=not-running", "wait"],
    ["GET", "/containers/0123abcd/logs?stdout=true&stderr=true&tail=5", "logs"],
    ["DELETE", "/containers/0123abcd?force=true", "remove"],
    ["GET", "/images/mcp-broker/outline-stub:local/json", "image-inspect"],
    ["POST", "/images/create?fromImage=ghcr.io%2Fvortiago%2Fmcp-outline&tag=latest", "image-pull"],
  ])("allows %s %s as %s", (method, path, name) => {
    expect(allowed(method, path).name).toBe(name);
  });

  it("keeps the API version prefix and sends it on", () => {
    const operation = allowed("POST", "/v1.41/containers/abc/start");
    expect(operation).toMatchObject({ name: "start", version: "/v1.41", ref: "abc" });
  });

  it("keeps only allow-listed query parameters: dockerode's copy of the create body never reaches the engine", () => {
    const operation = allowed("POST", "/containers/create?name=mcpb-prod-ab&Image=x&Env=OUTLINE_API_KEY%3Dsecret");
    expect(operation.query.toString()).toBe("name=mcpb-prod-ab");
    expect(allowed("POST", "/containers/abc/stop?t=5&extra=1").query.toString()).toBe("t=5");
  });
});

describe("parseRequest refuses everything else", () => {
  it.each([
    ["POST", "/containers/abc/exec"],
    ["POST", "/exec/abc/start"],
    ["POST", "/containers/abc/attach?stream=1"],
    ["GET", "/containers/abc/archive?path=/"],
    ["PUT", "/containers/abc/archive?path=/"],
    ["POST", "/containers/abc/update"],
    ["POST", "/containers/abc/rename?name=x"],
    ["POST", "/containers/prune"],
    ["POST", "/commit?container=abc&repo=mcp-broker/outline-stub&tag=local"],
    ["POST", "/images/busybox/tag?repo=mcp-broker/outline-stub&tag=local"],
    ["POST", "/images/load"],
    ["POST", "/build"],
    ["POST", "/session"],
    ["GET", "/networks"],
    ["POST", "/networks/mcp-broker-backends/connect"],
    ["POST", "/volumes/create"],
    ["GET", "/secrets"],
    ["POST", "/swarm/init"],
    ["POST", "/plugins/pull"],
    ["GET", "/events"],
    ["DELETE", "/images/mcp-broker/outline-stub:local"],
    ["GET", "//containers/json"],
    ["GET", "/containers/abc%2F..%2F..%2Fexec/json"],
    ["POST", "/v1.23/containers/abc/start"],
    ["DELETE", "/containers/create"],
  ])("refuses %s %s", (method, path) => {
    expect(parse(method, path).ok).toBe(false);
  });

  it("refuses a query value it does not expect, instead of dropping it", () => {
    expect(parse("POST", "/containers/abc/stop?t=5s")).toEqual({ ok: false, reason: expect.stringMatching(/t has/) });
    expect(parse("DELETE", "/containers/abc?force=maybe").ok).toBe(false);
  });

  it("refuses images that are not the backend's, and pulls without a tag (they pull every tag)", () => {
    expect(parse("GET", "/images/busybox:latest/json").ok).toBe(false);
    expect(parse("POST", "/images/create?fromImage=busybox&tag=latest").ok).toBe(false);
    expect(parse("POST", "/images/create?fromImage=ghcr.io/vortiago/mcp-outline").ok).toBe(false);
    expect(parse("POST", "/images/create?fromImage=mcp-broker/outline-stub:local&tag=evil").ok).toBe(false);
  });

  it("rebuilds a pull from fromImage and tag only (fromSrc would import any tarball)", () => {
    const operation = allowed("POST", "/images/create?fromImage=mcp-broker/outline-stub:local&fromSrc=-&repo=x");
    expect(Object.fromEntries(operation.query)).toEqual({ fromImage: "mcp-broker/outline-stub", tag: "local" });
  });
});

describe("parseRequest: listing", () => {
  const filters = (path: string) => JSON.parse(allowed("GET", path).query.get("filters") as string);

  it("adds this deployment's label filter to a list without one", () => {
    expect(filters("/containers/json?all=1")).toEqual({
      label: ["mcp-broker.managed=true", "mcp-broker.deployment=prod"],
    });
  });

  it("keeps the caller's filters, which can only narrow the list, in either of the engine's formats", () => {
    const encoded = encodeURIComponent(JSON.stringify({ label: { "mcp-broker.user=ab": true }, status: ["running"] }));
    expect(filters(`/containers/json?filters=${encoded}`)).toEqual({
      label: ["mcp-broker.user=ab", "mcp-broker.managed=true", "mcp-broker.deployment=prod"],
      status: ["running"],
    });
  });

  it("refuses filters it cannot read", () => {
    expect(parse("GET", "/containers/json?filters=nope").ok).toBe(false);
    expect(parse("GET", `/containers/json?filters=${encodeURIComponent('{"label":[1]}')}`).ok).toBe(false);
  });
});

describe("parseRequest: the reaper role", () => {
  it.each([
    ["GET", "/_ping"],
    ["GET", "/containers/json"],
    ["GET", "/containers/abc/json"],
    ["POST", "/containers/abc/stop"],
    ["DELETE", "/containers/abc?force=true"],
  ])("allows %s %s", (method, path) => {
    expect(parse(method, path, "reaper").ok).toBe(true);
  });

  it.each([
    ["POST", "/containers/create?name=mcpb-prod-ab"],
    ["POST", "/containers/abc/start"],
    ["GET", "/containers/abc/logs"],
    ["POST", "/images/create?fromImage=mcp-broker/outline-stub&tag=local"],
    ["GET", "/info"],
  ])("refuses %s %s", (method, path) => {
    expect(parse(method, path, "reaper")).toEqual({ ok: false, reason: expect.stringMatching(/reaper role/) });
  });
});

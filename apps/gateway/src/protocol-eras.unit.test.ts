import { createStub, DocumentStore } from "@mcp-broker/outline-stub";
import { listen } from "@mcp-broker/service-runtime";
import { type LocalRedis, startLocalRedis } from "@mcp-broker/test-support";
import { InProcessDriver, type InProcessServer } from "./testing/in-process-driver.js";
import { type InProcessGateway, startInProcessGateway } from "./testing/in-process-gateway.js";
import { key } from "./testing/keys.js";
import { post } from "./testing/rpc.js";
import { startTinyMcpServer } from "./testing/tiny-mcp-server.js";

const MODERN = "2026-07-28";
const meta = {
  "io.modelcontextprotocol/protocolVersion": MODERN,
  "io.modelcontextprotocol/clientInfo": { name: "t", version: "1" },
};
const discover = { jsonrpc: "2.0", id: "discover-1", method: "server/discover", params: { _meta: meta } };
const modernHeaders = (apiKey: string, method: string, name?: string) => ({
  "X-Outline-API-Key": apiKey,
  "MCP-Protocol-Version": MODERN,
  "Mcp-Method": method,
  ...(name === undefined ? {} : { "Mcp-Name": name }),
});

/** What the upstream server was asked and how it answered, in order. */
interface Upstream {
  method: string;
  rpc: string;
  headers: Headers;
  status: number;
}

/** The real outline-stub (a legacy, session-based server), with every request it answered recorded. */
async function countingStub(seen: Upstream[]): Promise<InProcessServer> {
  const stub = createStub({ apiKey: "unused", allowedKeys: [], documents: new DocumentStore([]) });
  const server = await listen(
    async (request: Request) => {
      const text = request.method === "POST" ? await request.clone().text() : "";
      const response = await stub.app.fetch(request);
      const rpc = text ? (JSON.parse(text).method ?? "response") : "";
      seen.push({ method: request.method, rpc, headers: request.headers, status: response.status });
      return response;
    },
    { port: 0, host: "127.0.0.1" },
  );
  return {
    url: `${server.url}/mcp`,
    close: async () => {
      await stub.closeAll();
      await server.close(0);
    },
  };
}

/** Both MCP eras on one endpoint (docs/architecture.md#protocol-eras), in process on real Redis. */
describe("MCP 2026-07-28 clients in front of legacy and modern servers", () => {
  let redis: LocalRedis;
  const running: InProcessGateway[] = [];
  beforeAll(async () => {
    redis = await startLocalRedis();
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((gateway) => gateway.close()));
  });
  afterAll(async () => {
    await redis?.stop();
  });

  async function legacySetup() {
    const seen: Upstream[] = [];
    const gateway = await startInProcessGateway(redis, new InProcessDriver(() => countingStub(seen)), {
      BACKEND_IMAGE: `legacy-${key("image")}`,
    });
    running.push(gateway);
    return { gateway, seen, apiKey: key("eras") };
  }

  it("answers server/discover for a legacy server from an initialize on the pooled session, with no 400 upstream", async () => {
    const { gateway, seen, apiKey } = await legacySetup();
    const answer = await post(gateway.url, discover, modernHeaders(apiKey, "server/discover"));
    expect(answer.status).toBe(200);
    expect(answer.body.id).toBe("discover-1");
    expect(answer.body.result).toMatchObject({
      resultType: "complete",
      supportedVersions: [MODERN],
      capabilities: { tools: expect.any(Object) },
      _meta: { "io.modelcontextprotocol/serverInfo": { name: "outline-stub" } },
    });
    // One initialize (offering 2026-07-28) and its notifications/initialized: nothing refused, no discover upstream.
    expect(seen.map((request) => `${request.rpc} ${request.status}`)).toEqual([
      "initialize 200",
      "notifications/initialized 202",
    ]);
    expect(seen.every((request) => request.status < 400)).toBe(true);
    expect(await gateway.store.getPooledSession(gateway.userOf(apiKey))).not.toBeNull();

    // The next client's discover costs no upstream request at all.
    const again = await post(gateway.url, { ...discover, id: 7 }, modernHeaders(apiKey, "server/discover"));
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(7);
    expect(seen).toHaveLength(2);
  });

  it("runs a 2026-07-28 tools/call on the pooled session, its id rewritten and restored, as a legacy request", async () => {
    const { gateway, seen, apiKey } = await legacySetup();
    const call = {
      jsonrpc: "2.0",
      id: 1,
      method: "tools/call",
      params: { name: "list_collections", arguments: {}, _meta: meta },
    };
    const answer = await post(gateway.url, call, modernHeaders(apiKey, "tools/call", "list_collections"));
    expect(answer.status).toBe(200);
    expect(answer.body.id).toBe(1);
    expect(answer.body.result.content[0].type).toBe("text");
    const upstream = seen.find((request) => request.rpc === "tools/call") as Upstream;
    expect(upstream.status).toBe(200);
    expect(upstream.headers.get("mcp-session-id")).toBeTruthy();
    expect(upstream.headers.get("mcp-method")).toBeNull();
    // The version the legacy server chose for the pooled session, not the client's revision.
    expect(upstream.headers.get("mcp-protocol-version")).not.toBe(MODERN);
    expect(seen.every((request) => request.status < 400)).toBe(true);
  });

  it.each([
    [
      "Mcp-Method differs from the body's method",
      "tools/list",
      "list_collections",
      /Mcp-Method header value 'tools\/list'/,
    ],
    ["Mcp-Name differs from params.name", "tools/call", "search_documents", /Mcp-Name header value 'search_documents'/],
    ["Mcp-Name is missing", "tools/call", undefined, /Mcp-Name header missing/],
  ])("refuses a request whose %s: 400, JSON-RPC -32020, nothing sent upstream", async (_, method, name, message) => {
    const { gateway, seen, apiKey } = await legacySetup();
    const call = { jsonrpc: "2.0", id: 3, method: "tools/call", params: { name: "list_collections", _meta: meta } };
    const answer = await post(gateway.url, call, modernHeaders(apiKey, method, name));
    expect(answer.status).toBe(400);
    expect(answer.body.error.code).toBe(-32020);
    expect(answer.body.error.message).toMatch(message);
    expect(seen).toEqual([]);
  });

  it("accepts an Mcp-Name in the Base64 sentinel encoding", async () => {
    const { gateway, apiKey } = await legacySetup();
    const call = {
      jsonrpc: "2.0",
      id: 4,
      method: "tools/call",
      params: { name: "list_collections", arguments: {}, _meta: meta },
    };
    const encoded = `=?base64?${Buffer.from("list_collections").toString("base64")}?=`;
    const answer = await post(gateway.url, call, modernHeaders(apiKey, "tools/call", encoded));
    expect(answer.status).toBe(200);
    expect(answer.body.id).toBe(4);
  });

  it("passes 2026-07-28 requests untouched to a server that speaks that revision, once it learned so", async () => {
    const tiny = await startTinyMcpServer();
    // A server of both eras: initialize offering 2026-07-28 is answered with it; discover is its own.
    tiny.takeover = ({ message }, response) => {
      const result =
        message.method === "initialize"
          ? { protocolVersion: MODERN, capabilities: { tools: {} }, serverInfo: { name: "modern", version: "1" } }
          : message.method === "server/discover"
            ? { resultType: "complete", supportedVersions: [MODERN], capabilities: { tools: {} }, fromServer: true }
            : null;
      if (!result) return false;
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (message.method === "initialize") headers["mcp-session-id"] = "modern-session";
      response.writeHead(200, headers).end(JSON.stringify({ jsonrpc: "2.0", id: message.id, result }));
      return true;
    };
    const gateway = await startInProcessGateway(redis, new InProcessDriver(async () => tiny), {
      BACKEND_IMAGE: `modern-${key("image")}`,
    });
    running.push(gateway);
    const apiKey = key("modern");
    for (const id of [1, 2]) {
      const answer = await post(gateway.url, { ...discover, id }, modernHeaders(apiKey, "server/discover"));
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({ id, result: { fromServer: true } });
    }
    const discovers = tiny.received.filter((received) => received.message.method === "server/discover");
    expect(
      discovers.map((received) => [received.message.id, received.headers["mcp-method"], received.session]),
    ).toEqual([
      [1, "server/discover", undefined],
      [2, "server/discover", undefined],
    ]);
    // Learned once: one initialize, then none.
    expect(tiny.received.filter((received) => received.message.method === "initialize")).toHaveLength(1);
  });
});

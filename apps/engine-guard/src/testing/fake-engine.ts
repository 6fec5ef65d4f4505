import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LABELS, PEER_LABEL } from "@mcp-broker/container-manager";

export interface EngineCallSeen {
  method: string;
  url: string;
  body: string;
}

export interface FakeEngine {
  socketPath: string;
  /** Every request that reached the "engine", in order. */
  calls: EngineCallSeen[];
  /** Lets a log stream's second line go: it is written only after this, so a test can see the first arrive alone. */
  writeSecondLogLine(): void;
  close(): Promise<void>;
}

/** A backend of deployment `prod` and a container that is not the broker's, as the engine inspects them. */
export const FAKE_CONTAINERS = {
  backend: {
    Id: "b".repeat(64),
    Name: "/mcpb-prod-abab",
    Config: {
      Labels: { [LABELS.managed]: "true", [LABELS.deployment]: "prod", [LABELS.user]: "abab" },
      Env: ["OUTLINE_API_KEY=ol_api_secret_key", "OUTLINE_API_URL=https://wiki.example/api"],
    },
  },
  foreign: { Id: "f".repeat(64), Name: "/postgres", Config: { Labels: {}, Env: ["POSTGRES_PASSWORD=hunter2"] } },
  /** A gateway replica of deployment `prod` (compose labels it), which may join backend networks. */
  peer: { Id: "9".repeat(64), Name: "/compose_gateway_1", Config: { Labels: { [PEER_LABEL]: "prod" }, Env: [] } },
} as const;

/** A backend network of deployment `prod` and one that is not the broker's. */
export const FAKE_NETWORKS = {
  backend: {
    Id: "e".repeat(64),
    Name: "mcpb-prod-abab",
    Labels: { [LABELS.managed]: "true", [LABELS.deployment]: "prod" },
  },
  foreign: { Id: "d".repeat(64), Name: "compose_broker", Labels: {} },
} as const;

const networkByRef = (ref: string) => Object.values(FAKE_NETWORKS).find((n) => n.Name === ref || n.Id.startsWith(ref));

/** The engine's network calls: list, inspect, create, connect, disconnect, remove. */
function answerNetwork(request: IncomingMessage, path: string): [number, unknown?] {
  if (path === "/networks") return [200, Object.values(FAKE_NETWORKS)];
  if (path === "/networks/create") return [201, { Id: "a".repeat(64), Warning: "" }];
  const match = /^\/networks\/([^/]+)(?:\/(\w+))?$/.exec(path);
  const network = match ? networkByRef(match[1] as string) : undefined;
  if (!network) return [404, { message: `network ${match?.[1]} not found` }];
  if (request.method === "GET") return [200, network];
  return [request.method === "DELETE" ? 204 : 200];
}

const byRef = (ref: string) =>
  Object.values(FAKE_CONTAINERS).find((c) => c.Name === `/${ref}` || c.Id.startsWith(ref) || c.Id === ref);

function answer(request: IncomingMessage, response: ServerResponse, secondLogLine: Promise<void>): void {
  const path = (request.url ?? "").replace(/^\/v\d+\.\d+/, "").split("?")[0] ?? "";
  const send = (status: number, body?: unknown) => {
    response.writeHead(status, { "content-type": "application/json", "api-version": "1.41" });
    response.end(body === undefined ? undefined : JSON.stringify(body));
  };
  const match = /^\/containers\/([^/]+)(?:\/(\w+))?$/.exec(path);
  const container = match ? byRef(match[1] as string) : undefined;
  if (path.startsWith("/networks")) {
    send(...answerNetwork(request, path));
  } else if (path === "/_ping") {
    response.end("OK");
  } else if (path === "/containers/json") {
    send(
      200,
      Object.values(FAKE_CONTAINERS).map((c) => ({ Id: c.Id, Names: [c.Name], Labels: c.Config.Labels })),
    );
  } else if (path === "/containers/create") {
    send(201, { Id: "c".repeat(64), Warnings: [] });
  } else if (!container) {
    send(404, { message: `No such container: ${match?.[1]}` });
  } else if (match?.[2] === "json") {
    send(200, container);
  } else if (match?.[2] === "logs") {
    // Two chunks, the second only once the test has read the first: a guard that buffered would
    // hold the first back, and the test would wait for it in vain.
    response.writeHead(200, { "content-type": "application/vnd.docker.raw-stream" });
    response.write("first line\n");
    void secondLogLine.then(() => response.end("second line\n"));
  } else {
    send(204);
  }
}

/** An HTTP server on a Unix socket standing in for the Docker engine: records calls, answers a few. */
export async function startFakeEngine(): Promise<FakeEngine> {
  const dir = await mkdtemp(join(tmpdir(), "fake-engine-"));
  const socketPath = join(dir, "docker.sock");
  const calls: EngineCallSeen[] = [];
  let writeSecondLogLine: () => void = () => {};
  const secondLogLine = new Promise<void>((resolve) => {
    writeSecondLogLine = resolve;
  });
  const server = createServer(async (request, response) => {
    let body = "";
    for await (const chunk of request) body += chunk;
    calls.push({ method: request.method ?? "", url: request.url ?? "", body });
    answer(request, response, secondLogLine);
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    socketPath,
    calls,
    writeSecondLogLine,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

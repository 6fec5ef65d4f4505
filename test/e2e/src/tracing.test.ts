import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { once } from "node:events";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { userIdFor } from "@mcp-broker/gateway";
import { SessionStore } from "@mcp-broker/session-store";
import {
  eventually,
  freePort,
  images,
  type OtlpReceiver,
  type ReceivedSpan,
  resultText,
  startOtlpReceiver,
} from "@mcp-broker/test-support";
import { removeLabelled, requireDocker, startRedis, type TestRedis } from "@mcp-broker/test-support/docker";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const built = (app: string) => fileURLToPath(new URL(`../../../apps/${app}/dist/main.js`, import.meta.url));
const SECRET = "tracing-secret-0123456789";
const SERVER = 2;
const CLIENT = 3;

/**
 * OpenTelemetry end to end (docs/architecture.md#tracing): the built gateway and reaper as
 * processes, exporting OTLP/HTTP JSON to a receiver in this test; the Docker driver and the
 * outline-stub image; the real MCP SDK client. The reaper's sweep makes the key cold (its
 * server stopped for idleness, its verdict expired), so one `tools/call` crosses every hop.
 */
describe("tracing: one trace per call, through every hop, with no key in it", () => {
  let redis: TestRedis;
  let receiver: OtlpReceiver;
  let auth: Server;
  const authHeaders: IncomingHttpHeaders[] = [];
  const processes: ChildProcess[] = [];
  const deployment = `o${randomUUID().slice(0, 8)}`;
  const apiKey = `ol_api_tracing_${randomUUID().replaceAll("-", "")}`;
  const userId = userIdFor(SECRET, apiKey);

  beforeAll(async () => {
    await requireDocker(images.stub, images.redis);
    [redis, receiver] = await Promise.all([startRedis(), startOtlpReceiver()]);
    // Outline's POST /api/auth.info: every key is good; what the gateway sent is kept.
    auth = createServer((request, response) => {
      authHeaders.push(request.headers);
      request.resume();
      response.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
    }).listen(0, "127.0.0.1");
    await once(auth, "listening");
  });
  afterAll(async () => {
    for (const child of processes) child.kill("SIGTERM");
    await Promise.all(processes.map((child) => (child.exitCode === null ? once(child, "exit") : null)));
    auth?.close();
    await receiver?.close();
    await removeLabelled(`mcp-broker.deployment=${deployment}`);
    await redis?.stop();
  });

  const otel = () => ({
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_BSP_SCHEDULE_DELAY: "100",
  });
  const run = (app: string, env: Record<string, string>) => {
    const child = spawn(process.execPath, [built(app)], {
      env: {
        PATH: process.env.PATH,
        REDIS_URL: redis.url,
        REDIS_PREFIX: redis.prefix,
        DEPLOYMENT_NAME: deployment,
        LOG_LEVEL: "warn",
        ...otel(),
        ...env,
      },
      stdio: ["ignore", "ignore", "inherit"],
    });
    processes.push(child);
    return child;
  };
  /** A span's children in the order they started. */
  const children = (parent: ReceivedSpan, spans: ReceivedSpan[]) =>
    spans
      .filter((span) => span.parentSpanId === parent.spanId)
      .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const descendants = (parent: ReceivedSpan, spans: ReceivedSpan[]): ReceivedSpan[] =>
    children(parent, spans).flatMap((child) => [child, ...descendants(child, spans)]);
  const named = (spans: ReceivedSpan[], name: string) => spans.filter((span) => span.name === name);

  it("a tools/call on a cold key is one trace: key check, Redis, cold start, upstream call, revival; the server got its traceparent", async () => {
    const port = await freePort();
    const dashboard = await freePort();
    run("gateway", {
      PORT: String(port),
      HOST: "127.0.0.1",
      KEY_HASH_SECRET: SECRET,
      AUTH_VERIFY: "on",
      AUTH_VERIFY_URL: `http://127.0.0.1:${(auth.address() as AddressInfo).port}/api/auth.info`,
      AUTH_CACHE_SECONDS: "1",
      BACKEND_IMAGE: images.stub,
      BACKEND_PULL: "false",
      BACKEND_READY_TIMEOUT_MS: "20000",
    });
    const url = `http://127.0.0.1:${port}/mcp`;
    await eventually(() => fetch(url.replace("/mcp", "/health")).then((r) => r.ok || Promise.reject(r.status)));

    // The client sends a traceparent of its own with the tools/call only: the gateway's trace continues it.
    const clientTraceId = randomBytes(16).toString("hex");
    const clientSpanId = randomBytes(8).toString("hex");
    const tracedFetch: typeof fetch = async (input, init) => {
      const headers = new Headers(init?.headers);
      if (String(init?.body ?? "").includes('"tools/call"')) {
        headers.set("traceparent", `00-${clientTraceId}-${clientSpanId}-01`);
      }
      return fetch(input, { ...init, headers });
    };
    const client = new Client({ name: "tracing-test", version: "1" });
    const transport = new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { "X-Outline-API-Key": apiKey } },
      fetch: tracedFetch,
    });
    await client.connect(transport);

    // The reaper stops the idle server (1 s), and its sweep is a span with its counts.
    const reaper = run("reaper", {
      REAP_INTERVAL_SECONDS: "1",
      CONTAINER_IDLE_TTL_SECONDS: "1",
      DASHBOARD_PORT: String(dashboard),
      DASHBOARD_HOST: "127.0.0.1",
      DASHBOARD_PASSWORD: "tracing-dashboard",
    });
    const sweep = await eventually(
      () =>
        receiver.spans.find(
          (span) => span.name === "sweep" && Number(span.attributes["mcpb.sweep.containers_stopped"]) >= 1,
        ),
      { timeoutMs: 30_000, until: Boolean },
    );
    expect(sweep?.resource["service.name"]).toBe("mcp-broker-reaper");
    expect(sweep?.parentSpanId).toBe("");
    expect(sweep?.attributes).toMatchObject({ "mcpb.sweep.sessions_ended": 0, "mcpb.sweep.failures": 0 });
    reaper.kill("SIGTERM");
    await once(reaper, "exit");
    const store = SessionStore.connect(redis.url, { prefix: redis.prefix, sessionIdleTtlSeconds: 3600 });
    try {
      await eventually(async () => (await store.getAuthVerdict(userId)) === null, { until: Boolean });
      expect(await store.getRoute(userId)).toBeNull();
    } finally {
      await store.close();
    }

    const whoami = JSON.parse(resultText(await client.callTool({ name: "whoami", arguments: {} })));
    await client.close();

    // One trace: the client's. Its root here is the gateway's server span, child of the client's span.
    const trace = await eventually(() => receiver.spans.filter((span) => span.traceId === clientTraceId), {
      until: (spans) => named(spans, "POST upstream").length >= 2 && named(spans, "tools/call whoami").length === 1,
    });
    const server = named(trace, "tools/call whoami")[0] as ReceivedSpan;
    const tree = (span: ReceivedSpan, depth: number): string[] => [
      `${"  ".repeat(depth)}${span.name}`,
      ...children(span, trace).flatMap((child) => tree(child, depth + 1)),
    ];
    console.log(`trace ${clientTraceId}:\n${tree(server, 0).join("\n")}`);
    expect(server.kind).toBe(SERVER);
    expect(server.parentSpanId).toBe(clientSpanId);
    expect(server.resource["service.name"]).toBe("mcp-broker-gateway");
    expect(server.attributes).toMatchObject({
      "mcp.method.name": "tools/call",
      "gen_ai.tool.name": "whoami",
      "mcpb.user.id_prefix": userId.slice(0, 12),
      "http.response.status_code": 200,
    });
    expect(String(server.attributes["mcpb.session.id_prefix"])).toHaveLength(8);
    const below = descendants(server, trace);
    expect(below).toHaveLength(trace.length - 1); // nothing of the trace hangs elsewhere

    // Key verification, with its Redis round trip and the upstream auth call, under the request.
    const verify = children(server, trace).find((span) => span.name === "verify key") as ReceivedSpan;
    expect(verify.attributes["mcpb.auth.cached"]).toBe(false);
    expect(children(verify, trace).map((span) => span.name)).toEqual(
      expect.arrayContaining(["redis getAuthVerdict", "POST auth.info", "redis setAuthVerdict"]),
    );
    expect(children(server, trace).map((span) => span.name)).toContain("redis useSession");
    expect(named(trace, "redis useSession")[0]?.attributes["db.system.name"]).toBe("redis");

    // Cold start: container create and readiness wait, inside it.
    const coldStart = named(below, "cold start")[0] as ReceivedSpan;
    expect(coldStart.attributes["mcpb.driver"]).toBe("docker");
    expect(children(coldStart, trace).map((span) => span.name)).toEqual(["container create", "readiness wait"]);
    expect(Number(named(trace, "readiness wait")[0]?.attributes["mcpb.readiness.probes"])).toBeGreaterThanOrEqual(1);

    // The upstream call: first 404 (the new server never saw the session), then the answer after the revival.
    const upstream = children(server, trace).filter((span) => span.name === "POST upstream");
    expect(upstream.map((span) => [span.kind, span.attributes["http.response.status_code"]])).toEqual([
      [CLIENT, 404],
      [CLIENT, 200],
    ]);
    const recover = children(server, trace).find((span) => span.name === "recover session") as ReceivedSpan;
    const revive = children(recover, trace).find((span) => span.name === "revive session") as ReceivedSpan;
    expect(revive.attributes["mcpb.revival.cause"]).toBe("upstream-restart");
    expect(named(descendants(revive, trace), "POST upstream (broker)").length).toBeGreaterThanOrEqual(2);

    // The MCP server received the traceparent of the gateway's last upstream call; so did the auth service.
    expect(whoami.traceparent).toBe(`00-${clientTraceId}-${upstream[1]?.spanId}-01`);
    const authCall = named(trace, "POST auth.info")[0] as ReceivedSpan;
    expect(authHeaders.at(-1)?.traceparent).toBe(`00-${clientTraceId}-${authCall.spanId}-01`);

    // No key, no whole session id or user id in any span or resource that left either process.
    const sessionId = transport.sessionId as string;
    expect(sessionId).toMatch(/^mcpb1\./);
    const exported = receiver.bodies.join("\n");
    expect(receiver.bodies.length).toBeGreaterThan(0);
    for (const secret of [apiKey, sessionId, userId]) expect(exported).not.toContain(secret);
  });
});

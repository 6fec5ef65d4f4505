import { execFile } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  type EventStream,
  eventually,
  freePort,
  INITIALIZE,
  MCP_POST_HEADERS,
  openEventStream,
} from "@mcp-broker/test-support";
import { docker, requireDocker } from "@mcp-broker/test-support/docker";
import { brokerAddress } from "./broker-address.js";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../../..", import.meta.url));
const NOTIFICATIONS = 40;

/**
 * docker-compose.yml with two gateway replicas behind HAProxy (issue 18, "no server-to-client
 * message is lost"): the replica serving a client's GET stream is killed while the server sends
 * notifications; the client reconnects with Last-Event-ID through the balancer and gets every
 * notification exactly once. The server (the outline stub, like the Outline MCP server) keeps
 * no events to replay, so the upstream stream must survive: the GET is served by the replica
 * that does not hold it (docs/architecture.md#server-to-client-streams says what a holder's
 * death costs such a server).
 */
describe("a session's GET stream when its replica dies", () => {
  const project = `mcpb-relay-${process.pid}`;
  let env: NodeJS.ProcessEnv;
  let url: string;

  const stack = (...args: string[]) => run("bash", ["scripts/stack.sh", ...args], { cwd: root, env, timeout: 240_000 });
  const replicas = async () =>
    (
      await docker.listContainers({
        filters: { label: [`com.docker.compose.project=${project}`, "com.docker.compose.service=gateway"] },
      })
    ).sort((a, b) => a.Created - b.Created);
  /** One replica's `mcpb_relay_streams{kind}`, from its /metrics on its container address. */
  const relayStreams = async (id: string, kind: "upstream" | "client") => {
    const address = await brokerAddress(id, project);
    const metrics = await (await fetch(`http://${address}:8080/metrics`)).text();
    return Number(new RegExp(`^mcpb_relay_streams\\{kind="${kind}"\\} (\\d+)`, "m").exec(metrics)?.[1] ?? 0);
  };
  /** Each running replica's `mcpb_relay_streams{kind}`, by container id. */
  const counts = async (kind: "upstream" | "client") => {
    const all = await replicas();
    const values = await Promise.all(all.map((replica) => relayStreams(replica.Id, kind)));
    return new Map(all.map((replica, index) => [replica.Id, values[index] ?? 0]));
  };
  /**
   * The replicas with more `kind` streams than `before`. Not "different from": a stream of an
   * earlier test that its replica notices closed only now (at its next keep-alive write) may
   * lower a count meanwhile.
   */
  const grown = async (kind: "upstream" | "client", before: Map<string, number>) => {
    const now = await counts(kind);
    return [...now].filter(([id, count]) => count > (before.get(id) ?? 0)).map(([id]) => id);
  };
  const withStreams = async (kind: "upstream" | "client") =>
    [...(await counts(kind))].filter(([, count]) => count > 0).map(([id]) => id);
  const post = async (message: unknown, headers: Record<string, string>) => {
    const response = await fetch(url, {
      method: "POST",
      headers: { ...MCP_POST_HEADERS, ...headers },
      body: JSON.stringify(message),
    });
    await response.text();
    return response;
  };

  beforeAll(async () => {
    await requireDocker("mcp-broker/gateway:local", "mcp-broker/reaper:local", "mcp-broker/haproxy:local");
    const [port, dashboard] = [await freePort(), await freePort()];
    env = {
      ...process.env,
      COMPOSE_PROJECT_NAME: project,
      DEPLOYMENT_NAME: `relay-${process.pid}`,
      BROKER_PORT: String(port),
      DASHBOARD_PORT: String(dashboard),
      BACKEND_PULL: "false",
      GATEWAY_REPLICAS: "2",
      RATE_LIMIT_PER_MINUTE: "0",
      AUTH_VERIFY: "off",
      NEW_KEY_STARTS_PER_IP_PER_MINUTE: "0",
    };
    url = `http://127.0.0.1:${port}/mcp`;
    await stack("up");
  }, 240_000);
  afterAll(async () => {
    await stack("down", "-v").catch(() => {});
  }, 130_000);

  /** A session as an SDK client opens it, and the replica that holds its upstream stream. */
  const openSession = async (apiKey: string) => {
    const before = await counts("upstream");
    const init = await post(INITIALIZE, { "X-Outline-API-Key": apiKey });
    expect(init.status).toBe(200);
    const headers = { "X-Outline-API-Key": apiKey, "Mcp-Session-Id": init.headers.get("mcp-session-id") as string };
    expect((await post({ jsonrpc: "2.0", method: "notifications/initialized" }, headers)).status).toBe(202);
    const [holder] = await eventually(() => grown("upstream", before), { until: (ids) => ids.length === 1 });
    return { headers, holder: holder as string };
  };
  /**
   * The balancer takes turns: GETs are opened until one lands on the replica that does not hold
   * the stream. One that lands on the holder is closed and not waited for: behind the balancer a
   * replica learns that a client left only at a later write (the keep-alive comment every 15 s,
   * two of them when the first still goes out), and each attempt compares with counts taken
   * just before it, so a stream still counted there does not matter.
   */
  const listenOnOther = async (headers: Record<string, string>, holder: string) => {
    for (let attempt = 0; attempt < 6; attempt++) {
      const before = await counts("client");
      const stream = await openEventStream(url, headers);
      expect(stream.status).toBe(200);
      // Not told apart when an earlier stream there is noticed closed at the same moment: try again.
      const [id] = await eventually(() => grown("client", before), { until: (ids) => ids.length === 1 }).catch(
        () => [],
      );
      if (id !== undefined && id !== holder) return { stream, serving: id };
      stream.close();
    }
    throw new Error("no GET landed on the replica that does not hold the stream");
  };
  const notify = async (headers: Record<string, string>, count: number, series: string) => {
    const call = { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "notify_later", arguments: {} } };
    call.params.arguments = { count, interval_ms: 100, series };
    expect((await post(call, headers)).status).toBe(200);
  };
  const seqsOf = (streams: EventStream[], series: string) =>
    streams.flatMap((each) =>
      each.events
        .map((event) => JSON.parse(event.data).params.data as { series: string; seq: number })
        .filter((data) => data.series === series)
        .map((data) => data.seq),
    );

  it("delivers every notification exactly once across a kill of the replica serving the GET", async () => {
    const { headers, holder } = await openSession("ol_api_relay_failover_key");
    const { stream, serving } = await listenOnOther(headers, holder);
    await notify(headers, NOTIFICATIONS, "failover");
    const streams: EventStream[] = [stream];
    await eventually(() => stream.events.length, { timeoutMs: 20_000, until: (count) => count >= 10 });
    await run("docker", ["kill", serving]);
    // A client notices a dead connection by its end, or else by the keep-alives that stop coming.
    await Promise.race([stream.ended, sleep(20_000)]);
    stream.close();

    // The client reconnects through the balancer with the last id it saw, until it is served again.
    const deadline = Date.now() + 30_000;
    const received = () => streams.reduce((sum, each) => sum + each.events.length, 0);
    while (received() < NOTIFICATIONS && Date.now() < deadline) {
      const last = streams.at(-1) as EventStream;
      const lastEventId = last.lastEventId();
      const next = await openEventStream(url, {
        ...headers,
        ...(lastEventId ? { "Last-Event-ID": lastEventId } : {}),
      }).catch(() => null);
      if (next?.status === 200) {
        streams.push(next);
        const all = eventually(received, { timeoutMs: 20_000, until: (n) => n >= NOTIFICATIONS });
        await Promise.race([next.ended, all]).catch(() => {});
        continue;
      }
      next?.close();
      await sleep(250);
    }
    await sleep(1000); // nothing more may come
    for (const each of streams) each.close();

    const seqs = streams.flatMap((each) =>
      each.events.map((event) => JSON.parse(event.data).params.data.seq as number),
    );
    const missing = Array.from({ length: NOTIFICATIONS }, (_, index) => index + 1).filter((seq) => !seqs.includes(seq));
    const duplicates = seqs.filter((seq, index) => seqs.indexOf(seq) !== index);
    console.log(
      `relay across a replica kill: ${NOTIFICATIONS} sent, ${seqs.length} received ` +
        `(${streams.map((each) => each.events.length).join(" + ")} over ${streams.length} streams), ` +
        `${missing.length} missing, ${duplicates.length} duplicated; holder ${holder?.slice(0, 12)} kept, ` +
        `GET replica ${serving.slice(0, 12)} killed`,
    );
    expect(missing).toEqual([]);
    expect(duplicates).toEqual([]);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));

    // The client's DELETE ends the session: its upstream stream is let go, wherever it was held.
    const ended = await fetch(url, { method: "DELETE", headers });
    expect(ended.status).toBe(200);
    await eventually(() => withStreams("upstream"), { timeoutMs: 20_000, until: (ids) => ids.length === 0 });
  }, 180_000);

  it("hands the upstream stream to the surviving replica when its holder is killed", async () => {
    // The replica killed above comes back (the stack's restart policy does not restart a kill).
    const stopped = await docker.listContainers({
      all: true,
      filters: { label: [`com.docker.compose.project=${project}`, "com.docker.compose.service=gateway"] },
    });
    for (const replica of stopped.filter((each) => each.State !== "running"))
      await run("docker", ["start", replica.Id]);
    await eventually(
      async () => (await Promise.all((await replicas()).map((r) => relayStreams(r.Id, "client")))).length,
      {
        timeoutMs: 30_000,
        until: (count) => count === 2,
      },
    );
    console.log(
      `streams before: client ${JSON.stringify([...(await counts("client")).values()])}, upstream ${JSON.stringify([...(await counts("upstream")).values()])}`,
    );
    const { headers, holder } = await openSession("ol_api_relay_holder_key");
    const { stream, serving } = await listenOnOther(headers, holder);
    const killedAt = Date.now();
    await run("docker", ["kill", holder]);
    // The GET's replica checks every half lease (RELAY_LEASE_MS 6 s) and takes the lapsed lease.
    await eventually(() => relayStreams(serving, "upstream"), { timeoutMs: 30_000, until: (count) => count === 1 });
    const tookOverMs = Date.now() - killedAt;
    await notify(headers, 20, "after");
    await eventually(() => seqsOf([stream], "after").length, { timeoutMs: 20_000, until: (count) => count >= 20 });
    await sleep(500);
    stream.close();
    const seqs = seqsOf([stream], "after");
    console.log(
      `relay across a holder kill: upstream stream taken over by ${serving.slice(0, 12)} ${tookOverMs} ms after the kill; ` +
        `${seqs.length} of 20 later notifications received on the open GET`,
    );
    expect(seqs).toEqual(Array.from({ length: 20 }, (_, index) => index + 1));
  }, 180_000);
});

import { execFile } from "node:child_process";
import { createHmac } from "node:crypto";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { connectClient, eventually, freePort, resultText } from "@mcp-broker/test-support";
import { docker, requireDocker } from "@mcp-broker/test-support/docker";
import { coldStartMs } from "./cold-start.js";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../../..", import.meta.url));

type Client = Awaited<ReturnType<typeof connectClient>>;
const sessionOf = (client: Client) => (client.transport as { sessionId?: string }).sessionId;

/**
 * docker-compose.yml + deploy/swarm.yml as `npm run swarm:up` / `swarm:down` deploy them on a
 * one-node swarm (issue 16): the SDK client through the stack's balancer, one Swarm service per
 * key, a killed task replaced under the same session, the reaper removing idle services. The
 * engine ends in the swarm state it started in (swarm.sh leaves a swarm only if it made it).
 */
describe("the stack on a swarm", () => {
  const id = `${process.pid}`;
  const stack = `mcpb-swarm-e2e-${id}`;
  const deployment = `swarm-e2e-${id}`;
  let env: NodeJS.ProcessEnv;
  let url: string;
  let swarmBefore: string;
  const clients: Client[] = [];
  // Reaches the gateways only as a Swarm secret (swarm.sh keeps it out of the services' environment).
  const keyHashSecret = `swarm-e2e-secret-${id}-0123456789`;
  let firstService: string | undefined;
  const swarm = (command: "up" | "down") =>
    run("bash", ["scripts/swarm.sh", command], { cwd: root, env, timeout: 240_000 });
  const userServices = () => docker.listServices({ filters: { label: [`mcp-broker.deployment=${deployment}`] } });

  beforeAll(async () => {
    await requireDocker("mcp-broker/gateway:local", "mcp-broker/reaper:local", "mcp-broker/haproxy:local");
    swarmBefore = (await docker.info()).Swarm?.LocalNodeState ?? "inactive";
    const [port, dashboard] = [await freePort(), await freePort()];
    env = {
      ...process.env,
      STACK_NAME: stack,
      DEPLOYMENT_NAME: deployment,
      BACKEND_NETWORK: `${stack}-backends`,
      BROKER_PORT: String(port),
      DASHBOARD_PORT: String(dashboard),
      DASHBOARD_PASSWORD: "swarm-e2e-dashboard",
      KEY_HASH_SECRET: keyHashSecret,
      // The reaper sweeps every 2 s and removes a server idle for 20 s: the last test waits for it.
      REAP_INTERVAL_SECONDS: "2",
      CONTAINER_IDLE_TTL_SECONDS: "20",
      RATE_LIMIT_PER_MINUTE: "0",
    };
    url = `http://127.0.0.1:${port}/mcp`;
    await swarm("up");
  }, 260_000);
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close().catch(() => {})));
    await swarm("down").catch(() => {});
  }, 260_000);

  it("initializes through the balancer, answers every stub tool, and gives two keys two services", async () => {
    const first = await connectClient(url, { "X-Outline-API-Key": "ol_api_demo_swarm_key_one" });
    clients.push(first);
    const { tools } = await first.listTools();
    expect(tools.map((tool) => tool.name).sort()).toEqual(
      [
        "ask_sampling",
        "create_document",
        "echo",
        "notify_later",
        "read_document",
        "search_documents",
        "slow_task",
        "whoami",
      ].sort(),
    );
    const created = JSON.parse(
      resultText(await first.callTool({ name: "create_document", arguments: { title: "Swarm", text: "on a swarm" } })),
    ) as { id: string };
    const calls = {
      search_documents: { query: "swarm" },
      read_document: { id: created.id },
      whoami: {},
      echo: { text: "hello swarm" },
      slow_task: { seconds: 1 },
    };
    for (const [name, args] of Object.entries(calls)) {
      const result = (await first.callTool({ name, arguments: args })) as { isError?: boolean };
      expect([name, result.isError ?? false]).toEqual([name, false]);
    }
    firstService = (await userServices())[0]?.ID;
    const second = await connectClient(url, { "X-Outline-API-Key": "ol_api_demo_swarm_key_two" });
    clients.push(second);
    expect(resultText(await second.callTool({ name: "echo", arguments: { text: "two" } }))).toBe("two");

    const services = await userServices();
    expect(services).toHaveLength(2);
    // User ids are HMACs under the secret the gateways read from /run/secrets (KEY_HASH_SECRET_FILE).
    const users = services.map((service) => service.Spec?.Labels?.["mcp-broker.user"]).sort();
    const expected = ["ol_api_demo_swarm_key_one", "ol_api_demo_swarm_key_two"].map((key) =>
      createHmac("sha256", keyHashSecret).update(key).digest("hex"),
    );
    expect(users).toEqual(expected.sort());
    const gateway = await docker.getService(`${stack}_gateway`).inspect();
    expect(JSON.stringify(gateway.Spec)).not.toContain(keyHashSecret);
  }, 120_000);

  it("answers the next call on the same session id after the user's task is killed", async () => {
    const [first] = clients;
    if (!first) throw new Error("the first test's client is missing");
    const sessionId = sessionOf(first);
    const [task] = await docker.listContainers({ filters: { label: [`com.docker.swarm.service.id=${firstService}`] } });
    if (!task) throw new Error("no running task for the first key's service");
    await docker.getContainer(task.Id).kill();

    expect(resultText(await first.callTool({ name: "echo", arguments: { text: "after kill" } }))).toBe("after kill");
    expect(sessionOf(first)).toBe(sessionId);
  }, 120_000);

  it("measures cold start of new keys on the swarm driver (BENCHMARKS.md)", async () => {
    const { p50, all } = await coldStartMs(url, "ol_api_demo_swarm_bench");
    console.log(
      `cold start, swarm driver (initialize + first call of a new key): p50 ${p50} ms of [${all.join(", ")}]`,
    );
    expect(all).toHaveLength(5);
  }, 120_000);

  it("removes idle users' services by the reaper, and sweeps are counted", async () => {
    await eventually(
      async () => {
        const left = await userServices();
        if (left.length > 0) throw new Error(`${left.length} user services still there`);
      },
      { timeoutMs: 90_000, intervalMs: 1_000 },
    );
    // The sweep that removed the last service counts it when it is done, a moment later.
    await eventually(async () =>
      expect(await (await fetch(`http://127.0.0.1:${env.DASHBOARD_PORT}/metrics`)).text()).toMatch(
        /^mcpb_reaped_total\{kind="container"\} [1-9]/m,
      ),
    );
    // The dashboard's password is the Swarm secret's, not docker-compose.yml's placeholder.
    const board = (password: string) =>
      fetch(`http://127.0.0.1:${env.DASHBOARD_PORT}/admin/queues/api/queues`, {
        headers: { Authorization: `Basic ${Buffer.from(`admin:${password}`).toString("base64")}` },
      }).then((response) => response.status);
    expect([await board("swarm-e2e-dashboard"), await board("change-me-too")]).toEqual([200, 401]);
  }, 100_000);

  it("swarm:down leaves no broker service, network or secret, and the engine's swarm state as found", async () => {
    await swarm("down");
    const networks = (await docker.listNetworks()).filter((n) => n.Name.startsWith(stack));
    expect(networks).toEqual([]);
    // Services and secrets exist only in a swarm: after leaving one there are none to list.
    if ((await docker.info()).Swarm?.LocalNodeState === "active") {
      const services = await docker.listServices({ filters: { label: [`com.docker.stack.namespace=${stack}`] } });
      const secrets = await docker.listSecrets({ filters: { label: [`mcp-broker.stack=${stack}`] } });
      expect({ services, users: await userServices(), secrets }).toEqual({ services: [], users: [], secrets: [] });
    }
    expect((await docker.info()).Swarm?.LocalNodeState).toBe(swarmBefore);
  }, 260_000);
});

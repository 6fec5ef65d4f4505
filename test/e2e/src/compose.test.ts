import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { connectClient, eventually, freePort, resultText } from "@mcp-broker/test-support";
import { docker, requireDocker } from "@mcp-broker/test-support/docker";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../../..", import.meta.url));

/**
 * docker-compose.yml as an operator runs it (`npm run stack:up` / `stack:down`, Debian's
 * docker-compose v1 here): redis, two gateway replicas (one service, `--scale`), the HAProxy
 * balancer, the reaper, the socket proxy.
 */
describe("docker-compose stack", () => {
  const project = `mcpb-e2e-${process.pid}`;
  const deployment = `compose-e2e-${process.pid}`;
  let env: NodeJS.ProcessEnv;
  let url: string;

  beforeAll(async () => {
    await requireDocker(
      "mcp-broker/gateway:local",
      "mcp-broker/reaper:local",
      "mcp-broker/nginx:local",
      "mcp-broker/haproxy:local",
    );
    const [port, dashboard] = [await freePort(), await freePort()];
    env = {
      ...process.env,
      COMPOSE_PROJECT_NAME: project,
      DEPLOYMENT_NAME: deployment,
      BROKER_PORT: String(port),
      DASHBOARD_PORT: String(dashboard),
      BACKEND_PULL: "false",
    };
    url = `http://127.0.0.1:${port}/mcp`;
    await run("bash", ["scripts/stack.sh", "up"], { cwd: root, env, timeout: 180_000 });
  }, 200_000);
  afterAll(async () => {
    await run("bash", ["scripts/stack.sh", "down", "-v"], { cwd: root, env, timeout: 120_000 }).catch(() => {});
  }, 130_000);

  it("serves MCP through the balancer from both gateways, and stack:down leaves no broker container", async () => {
    const client = await connectClient(url, { "X-Outline-API-Key": "ol_api_compose_demo_key" });
    for (let i = 0; i < 10; i++) {
      expect(resultText(await client.callTool({ name: "echo", arguments: { text: `call ${i}` } }))).toBe(`call ${i}`);
    }
    await client.close();

    const replicas = await docker.listContainers({
      filters: { label: [`com.docker.compose.project=${project}`, "com.docker.compose.service=gateway"] },
    });
    const accessLines = () =>
      Promise.all(
        replicas.map(async (replica) => {
          const { stdout } = await run("docker", ["logs", replica.Id], { timeout: 30_000 });
          return stdout.split("\n").filter((line) => line.includes('"msg":"request"')).length;
        }),
      );
    expect(replicas).toHaveLength(2);
    // Log lines are written in batches (4 KiB, or within a second): wait for the last one.
    await eventually(accessLines, { timeoutMs: 10_000, until: (served) => served.every((count) => count > 0) });
    // The user's server (a claimed spare: Compose keeps WARM_POOL_SIZE=2) and the pool, refilled to 2.
    const backends = () => docker.listContainers({ filters: { label: [`mcp-broker.deployment=${deployment}`] } });
    await eventually(async () => expect(await backends()).toHaveLength(3), { timeoutMs: 60_000 });

    await run("bash", ["scripts/stack.sh", "down", "-v"], { cwd: root, env, timeout: 120_000 });
    const left = await docker.listContainers({
      all: true,
      filters: { label: [`com.docker.compose.project=${project}`] },
    });
    const leftUsers = await docker.listContainers({
      all: true,
      filters: { label: [`mcp-broker.deployment=${deployment}`] },
    });
    expect(left).toEqual([]);
    expect(leftUsers).toEqual([]);
  }, 120_000);
});

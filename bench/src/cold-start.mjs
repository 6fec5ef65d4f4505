// Cold start: a new key's first initialize through the gateway against `docker run` of the same
// image by hand (the floor: what any broker must wait for), and a burst of new keys across two
// gateways. `measureColdStart` takes the bench's gateways; run.mjs's `coldStart` section calls it.
import { setTimeout as sleep } from "node:timers/promises";
import { initialize, MCP_HEADERS } from "./load.mjs";
import { docker } from "./stack.mjs";

async function timed(work) {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

/**
 * `samples` first initializes of new keys on `g1`, each beside one `docker run` floor, then
 * `burst` new keys at once, alternating between `g1` and `g2`; every figure in ms.
 */
export async function measureColdStart({ g1, g2, samples, burst, deployment, key }) {
  const gatewayCold = [];
  const floor = [];
  for (let i = 0; i < samples; i++) {
    gatewayCold.push(await timed(() => initialize(g1.url, { "x-outline-api-key": key(`cold${i}`) })));
    floor.push(await dockerRunFloor(deployment, i));
  }
  const burstMs = await Promise.all(
    Array.from({ length: burst }, (_, i) =>
      timed(() => initialize(i % 2 ? g2.url : g1.url, { "x-outline-api-key": key(`burst${i}`) })),
    ),
  );
  return { gateway: gatewayCold, floor, burst: burstMs };
}

/** `docker run` of the same image and the first MCP answer, by hand: the floor for a cold start. */
async function dockerRunFloor(deployment, i) {
  const name = `mcpb-bench-floor-${process.pid}-${i}`;
  const ms = await timed(async () => {
    docker(
      "run",
      "-d",
      "--name",
      name,
      "--label",
      `mcp-broker.deployment=${deployment}`,
      "-p",
      "127.0.0.1::3000",
      "-e",
      "OUTLINE_API_KEY=ol_api_floor",
      "mcp-broker/outline-stub:local",
    );
    const port = docker("port", name, "3000/tcp").split(":").pop();
    for (;;) {
      const answered = await fetch(`http://127.0.0.1:${port}/mcp`, {
        method: "POST",
        headers: MCP_HEADERS,
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: 0,
          method: "initialize",
          params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "floor", version: "1" } },
        }),
      })
        .then(async (r) => {
          await r.text();
          return r.status === 200;
        })
        .catch(() => false);
      if (answered) break;
      await sleep(20);
    }
  });
  docker("rm", "-f", name);
  return ms;
}

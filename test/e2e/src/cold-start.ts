import { connectClient, resultText } from "@mcp-broker/test-support";

/**
 * Cold start as a user meets it (BENCHMARKS.md): a new key's initialize and first tool call,
 * which wait for the broker to start that key's server. Keys one after another, so each start
 * has the engine to itself; the median of `count`.
 */
export async function coldStartMs(url: string, keyPrefix: string, count = 5): Promise<{ p50: number; all: number[] }> {
  const all: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    const client = await connectClient(url, { "X-Outline-API-Key": `${keyPrefix}_${i}_cold_start` });
    const answer = resultText(await client.callTool({ name: "echo", arguments: { text: "cold" } }));
    all.push(Math.round(performance.now() - started));
    await client.close();
    if (answer !== "cold") throw new Error(`echo answered ${answer}`);
  }
  const sorted = [...all].sort((a, b) => a - b);
  return { p50: sorted[Math.floor((sorted.length - 1) / 2)] ?? Number.NaN, all };
}

import { connectClient, resultText, stubBundlePath } from "@mcp-broker/test-support";
import { isSpareUserId, spareUserId } from "./backend-identity.js";
import { ProcessDriver } from "./process-driver.js";

describe("ProcessDriver", () => {
  const drivers: ProcessDriver[] = [];
  const driver = (command: string[], readinessTimeoutMs = 15_000) => {
    const d = new ProcessDriver({ command, readinessTimeoutMs });
    drivers.push(d);
    return d;
  };
  afterAll(async () => {
    await Promise.all(drivers.map((d) => d.close()));
  });

  it("runs one outline-stub process per user on a free local port, once under concurrent calls", async () => {
    const d = driver([process.execPath, stubBundlePath()]);
    const backends = await Promise.all(
      Array.from({ length: 10 }, () => d.ensure({ userId: "user-a", apiKey: "ol_api_process_a" })),
    );
    expect(new Set(backends.map((b) => b.containerId)).size).toBe(1);
    const [backend] = backends as [(typeof backends)[0]];
    expect(backend.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);

    const other = await d.ensure({ userId: "user-b", apiKey: "ol_api_process_b" });
    expect(other.containerId).not.toBe(backend.containerId);

    const client = await connectClient(backend.endpoint);
    const whoami = JSON.parse(resultText(await client.callTool({ name: "whoami", arguments: {} })));
    await client.close();
    expect(whoami.pid).toBe(Number(backend.containerId.split(":")[1]));

    expect((await d.listManaged()).map((c) => c.userId).sort()).toEqual(["user-a", "user-b"]);
    await d.stop(backend.containerId);
    expect(await d.inspect(backend.containerId)).toBeNull();
    const again = await d.ensure({ userId: "user-a", apiKey: "ol_api_process_a" });
    expect(again.containerId).not.toBe(backend.containerId);
  });

  it("kills a process that never answers and reports the timeout", async () => {
    const d = driver([process.execPath, "-e", "setInterval(() => {}, 1000)"], 1000);
    await expect(d.ensure({ userId: "user-c", apiKey: "k" })).rejects.toMatchObject({
      code: "CONTAINER_START_TIMEOUT",
    });
    expect(await d.listManaged()).toEqual([]);
  });

  it("reports a process that exits while starting, without its key", async () => {
    const d = driver([
      process.execPath,
      "-e",
      "console.error('bad key', process.env.OUTLINE_API_KEY); process.exit(3)",
    ]);
    const failure = await d.ensure({ userId: "user-d", apiKey: "ol_api_secret_d" }).catch((e: unknown) => e);
    expect(failure).toMatchObject({ code: "CONTAINER_START_FAILED" });
    expect((failure as Error).message).toContain("exited with code 3");
    expect((failure as Error).message).toContain("[redacted]");
    expect((failure as Error).message).not.toContain("ol_api_secret_d");
  });

  it("starts a spare of the warm pool without a key: it runs each request as the key in its header", async () => {
    const d = driver([process.execPath, stubBundlePath()]);
    const spare = await d.ensure({ userId: spareUserId(), apiKey: "" });
    const whoamiAs = async (apiKey: string) => {
      const client = await connectClient(spare.endpoint, { "x-outline-api-key": apiKey });
      try {
        return JSON.parse(resultText(await client.callTool({ name: "whoami", arguments: {} })));
      } finally {
        await client.close();
      }
    };
    const [a, b] = [await whoamiAs("ol_api_spare_a"), await whoamiAs("ol_api_spare_b")];
    expect(a.startKey).toBeNull();
    expect(a.key).toHaveLength(12);
    expect(b.key).toHaveLength(12);
    expect(a.key).not.toBe(b.key);
    expect(isSpareUserId((await d.listManaged())[0]?.userId ?? "")).toBe(true);
  });
});

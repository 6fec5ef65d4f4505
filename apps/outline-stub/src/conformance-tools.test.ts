import { connectClient, INITIALIZE, MCP_POST_HEADERS, resultText } from "@mcp-broker/test-support";
import { type RunningStub, startStub } from "./server.js";

/**
 * STUB_TOOLS=conformance through the real SDK client; the official suite itself runs against
 * it in test/e2e conformance.test.ts.
 */
describe("outline-stub as the conformance suite's server", () => {
  let stub: RunningStub;
  beforeAll(async () => {
    stub = await startStub({ apiKey: "unused", tools: "conformance" });
  });
  afterAll(async () => {
    await stub.close();
  });

  it("serves the suite's tools, resources and prompts", async () => {
    const client = await connectClient(stub.url);
    const { tools } = await client.listTools();
    expect(tools.map((tool) => tool.name)).toEqual(expect.arrayContaining(["test_simple_text", "test_sampling"]));
    expect(resultText(await client.callTool({ name: "test_simple_text", arguments: {} }))).toMatch(/simple text/);
    const read = await client.readResource({ uri: "test://template/42/data" });
    expect(JSON.parse(String((read.contents[0] as { text?: string }).text))).toMatchObject({
      id: "42",
      templateTest: true,
    });
    const prompt = await client.getPrompt({ name: "test_prompt_with_arguments", arguments: { arg1: "a", arg2: "b" } });
    expect(prompt.messages[0]?.content).toMatchObject({ text: "Prompt with arguments: arg1='a', arg2='b'" });
    await client.close();
  });

  it("refuses a foreign Origin with 403 (DNS rebinding) and accepts a loopback one", async () => {
    const send = (origin: string) =>
      fetch(stub.url, {
        method: "POST",
        headers: { ...MCP_POST_HEADERS, Origin: origin },
        body: JSON.stringify(INITIALIZE),
      });
    expect((await send("http://evil.example.com")).status).toBe(403);
    expect((await send(`http://127.0.0.1:${stub.port}`)).status).toBe(200);
  });
});

import { IdRewriter, restoreIds, restoreIdsInSse } from "./rpc-ids.js";

async function pipe(chunks: string[], transform: TransformStream<Uint8Array, Uint8Array>): Promise<string> {
  const encoder = new TextEncoder();
  const source = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      controller.close();
    },
  });
  return new Response(source.pipeThrough(transform)).text();
}

describe("request id rewriting for the pooled session", () => {
  it("mints unique upstream ids for requests and leaves notifications alone", () => {
    const rewriter = new IdRewriter("mcpb-test");
    const first = rewriter.rewrite([
      { jsonrpc: "2.0", id: 1, method: "tools/list" },
      { jsonrpc: "2.0", method: "notifications/initialized" },
    ]);
    const second = rewriter.rewrite([{ jsonrpc: "2.0", id: 1, method: "tools/list" }]);
    expect(first.messages[0]?.id).toBe("mcpb-test-1");
    expect(first.messages[1]).toEqual({ jsonrpc: "2.0", method: "notifications/initialized" });
    expect(second.messages[0]?.id).toBe("mcpb-test-2");
    expect(first.ids.get("mcpb-test-1")).toBe(1);
  });

  it("restores client ids in responses only, not in server requests that reuse the string", () => {
    const ids = new Map([["mcpb-x-1", 42]]);
    expect(restoreIds({ jsonrpc: "2.0", id: "mcpb-x-1", result: {} }, ids)).toEqual({
      jsonrpc: "2.0",
      id: 42,
      result: {},
    });
    expect(restoreIds({ jsonrpc: "2.0", id: "mcpb-x-1", method: "ping" }, ids)).toMatchObject({ id: "mcpb-x-1" });
    expect(restoreIds([{ jsonrpc: "2.0", id: "mcpb-x-1", error: { code: 1, message: "m" } }], ids)).toEqual([
      { jsonrpc: "2.0", id: 42, error: { code: 1, message: "m" } },
    ]);
  });

  it("restores ids in SSE events split across chunks, keeping event ids, retry and comments", async () => {
    const ids = new Map([["mcpb-x-7", "client-7"]]);
    const out = await pipe(
      [
        ": keep-alive\n\nretry: 1000\n\nid: e1\nevent: mess",
        'age\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}\n\n',
        'id: e2\nevent: message\ndata: {"jsonrpc":"2.0","id":"mcpb-x-7","res',
        'ult":{"ok":true}}\n\n',
      ],
      restoreIdsInSse(ids),
    );
    expect(out).toBe(
      ": keep-alive\n\nretry: 1000\n\n" +
        'id: e1\nevent: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}\n\n' +
        'id: e2\nevent: message\ndata: {"jsonrpc":"2.0","id":"client-7","result":{"ok":true}}\n\n',
    );
  });
});

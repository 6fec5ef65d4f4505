import { IdRewriter, restoreIds, restoreIdsInSse, restoreIdsInText } from "./rpc-ids.js";

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

describe("restoring ids in SSE answers cut at awkward places", () => {
  const ids = new Map<string, string | number>([
    ["mcpb-x-1", 1],
    ["mcpb-x-2", "zwei"],
  ]);
  const stream =
    ": ping\r\n\r\n" +
    'id: 1\r\nevent: message\r\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"message":"½ done — ✓"}}\r\n\r\n' +
    'data: {"jsonrpc":"2.0","id":"mcpb-x-1",\ndata: "result":{"text":"naïve 日本"}}\n\n' +
    'data: {"jsonrpc":"2.0","id":"mcpb-x-2","error":{"code":-1,"message":"no"}}\n\n';
  const expected =
    ": ping\n\n" +
    'id: 1\nevent: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"message":"½ done — ✓"}}\n\n' +
    'data: {"jsonrpc":"2.0","id":1,"result":{"text":"naïve 日本"}}\n\n' +
    'data: {"jsonrpc":"2.0","id":"zwei","error":{"code":-1,"message":"no"}}\n\n';

  /** Feeds `text` as byte chunks cut at `cuts` (byte offsets), so multi-byte characters split too. */
  async function pipeBytes(text: string, cuts: number[]): Promise<string> {
    const bytes = new TextEncoder().encode(text);
    const edges = [0, ...cuts.filter((cut) => cut > 0 && cut < bytes.length), bytes.length];
    const source = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 1; i < edges.length; i++) controller.enqueue(bytes.slice(edges[i - 1], edges[i]));
        controller.close();
      },
    });
    return new Response(source.pipeThrough(restoreIdsInSse(ids))).text();
  }

  const byteOffset = (marker: string, plus = 0) =>
    new TextEncoder().encode(stream.slice(0, stream.indexOf(marker))).length + plus;

  it("between CR and LF, inside a field name, inside an id and inside multi-byte characters", async () => {
    const cuts = [
      byteOffset("\r\n\r\n", 1), // CR | LF
      byteOffset("data:", 2), // da|ta:
      byteOffset("mcpb-x-1", 5), // mcpb-|x-1
      byteOffset("½", 1), // inside ½ (2 bytes)
      byteOffset("—", 2), // inside — (3 bytes)
      byteOffset("日", 1), // inside 日 (3 bytes)
      byteOffset('"result"'), // between the two data lines of one event
    ].sort((a, b) => a - b);
    expect(await pipeBytes(stream, cuts)).toBe(expected);
  });

  it("one byte at a time", async () => {
    const length = new TextEncoder().encode(stream).length;
    expect(
      await pipeBytes(
        stream,
        Array.from({ length }, (_, i) => i),
      ),
    ).toBe(expected);
  });

  it("restores ids in a JSON body, and passes a body that is not JSON as it came", () => {
    expect(restoreIdsInText('[{"jsonrpc":"2.0","id":"mcpb-x-1","result":{}}]', ids)).toBe(
      '[{"jsonrpc":"2.0","id":1,"result":{}}]',
    );
    expect(restoreIdsInText("<html>502 Bad Gateway</html>", ids)).toBe("<html>502 Bad Gateway</html>");
  });
});

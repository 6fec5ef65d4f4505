import { GatewayError } from "../errors.js";
import {
  calledTools,
  classifyAnswer,
  classifyError,
  FAILURES,
  type FailureKind,
  failureError,
  safeToRepeat,
  toolHintsOf,
} from "./failures.js";

const coded = (code: string, cause?: unknown) => Object.assign(new Error(code), { code, cause });

describe("the failure classification", () => {
  it.each([
    ["ECONNREFUSED", "refused"],
    ["UND_ERR_CONNECT_TIMEOUT", "refused"],
    ["EHOSTUNREACH", "refused"],
    ["ENOTFOUND", "refused"],
    ["EAI_AGAIN", "refused"],
    ["ECONNRESET", "lost"],
    ["UND_ERR_SOCKET", "lost"],
    ["EPIPE", "lost"],
    ["UND_ERR_CLOSED", "lost"],
    ["UND_ERR_HEADERS_TIMEOUT", "timeout"],
    ["UND_ERR_BODY_TIMEOUT", "timeout"],
    ["UND_ERR_ABORTED", "aborted"],
    ["UND_ERR_INVALID_ARG", "failed"],
    ["UPSTREAM_INITIALIZE_FAILED", "failed"],
  ] as Array<[string, FailureKind]>)("classifies an error coded %s as %s", (code, kind) => {
    expect(classifyError(coded(code))).toBe(kind);
  });

  it("classifies a web AbortError by name, and errors with no code as failed", () => {
    expect(classifyError(Object.assign(new Error("aborted"), { name: "AbortError" }))).toBe("aborted");
    expect(classifyError(new Error("plain"))).toBe("failed");
    expect(classifyError("not even an error")).toBe("failed");
    expect(classifyError(undefined)).toBe("failed");
  });

  it("finds connection codes through undici's causes (up to four deep), the nearest one first", () => {
    expect(classifyError(coded("UND_ERR_X", coded("ECONNREFUSED")))).toBe("refused");
    expect(classifyError(new Error("a", { cause: new Error("b", { cause: coded("ECONNRESET") }) }))).toBe("lost");
    const deep = new Error("1", { cause: new Error("2", { cause: new Error("3", { cause: coded("EPIPE") }) }) });
    expect(classifyError(deep)).toBe("lost");
    const tooDeep = new Error("0", { cause: deep });
    expect(classifyError(tooDeep)).toBe("failed");
    expect(classifyError(coded("UND_ERR_SOCKET", coded("ECONNREFUSED")))).toBe("lost");
  });

  it("looks for timeouts and aborts on the error itself only", () => {
    expect(classifyError(new Error("wrapped", { cause: coded("UND_ERR_HEADERS_TIMEOUT") }))).toBe("failed");
    expect(classifyError(new Error("wrapped", { cause: coded("UND_ERR_ABORTED") }))).toBe("failed");
  });

  it.each([
    [404, '{"error":{"code":-32001,"message":"Session not found"}}', "session-gone"],
    [404, "Not Found", "session-gone"],
    [400, '{"error":{"message":"Bad Request: No valid session ID provided"}}', "session-gone"],
    [400, "bad SESSION", "session-gone"],
    [400, '{"error":{"message":"Invalid params"}}', null],
    [200, "session", null],
    [500, "session", null],
  ] as Array<[number, string, FailureKind | null]>)("classifies an answer %i %s as %s", (status, body, kind) => {
    expect(classifyAnswer(status, body)).toBe(kind);
  });

  it("says how each kind is recovered and answered", () => {
    const table = Object.fromEntries(
      Object.entries(FAILURES).map(([kind, rule]) => [kind, [rule.recovery, rule.clientError]]),
    );
    expect(table).toEqual({
      refused: ["replace-server", "UPSTREAM_FAILED"],
      lost: ["replace-server-if-dead", "UPSTREAM_FAILED"],
      "session-gone": ["revive-session", null],
      timeout: ["none", "UPSTREAM_TIMEOUT"],
      aborted: ["none", "CLIENT_CLOSED"],
      failed: ["none", "UPSTREAM_FAILED"],
    });
  });

  it("turns an unrecovered failure into the client's answer, naming the code it saw", () => {
    const answer = (error: unknown) => {
      const mapped = failureError(error);
      return [mapped.code, mapped.status, mapped.message];
    };
    expect(answer(coded("ECONNREFUSED"))).toEqual([
      "UPSTREAM_FAILED",
      502,
      "Your MCP server failed to answer (ECONNREFUSED)",
    ]);
    expect(answer(coded("UND_ERR_BODY_TIMEOUT"))).toEqual([
      "UPSTREAM_TIMEOUT",
      504,
      "Your MCP server did not answer in time",
    ]);
    expect(answer(coded("UND_ERR_ABORTED"))).toEqual(["CLIENT_CLOSED", 499, "Client closed the request"]);
    expect(answer(new Error("no code"))).toEqual([
      "UPSTREAM_FAILED",
      502,
      "Your MCP server failed to answer (no code)",
    ]);
    const known = new GatewayError("SESSION_NOT_FOUND");
    expect(failureError(known)).toBe(known);
  });
});

describe("the replay rule", () => {
  const request = (method: string, params?: unknown) => ({ jsonrpc: "2.0" as const, id: 1, method, params });
  const tool = (name: string) => request("tools/call", { name, arguments: {} });

  it.each([
    "initialize",
    "ping",
    "tools/list",
    "resources/list",
    "resources/templates/list",
    "prompts/list",
    "resources/read",
    "prompts/get",
    "completion/complete",
  ])("repeats %s", (method) => {
    expect(safeToRepeat([request(method)], new Set())).toBe(true);
  });

  it.each(["logging/setLevel", "resources/subscribe", "sampling/createMessage", "tools/call"])(
    "does not repeat %s (without annotations)",
    (method) => {
      expect(safeToRepeat([request(method, { name: "x" })], new Set())).toBe(false);
    },
  );

  it("repeats a tools/call only of a tool its annotations call safe, and a batch only when all of it is", () => {
    const safe = new Set(["search"]);
    expect(safeToRepeat([tool("search")], safe)).toBe(true);
    expect(safeToRepeat([tool("create")], safe)).toBe(false);
    expect(safeToRepeat([tool("search"), request("ping"), tool("create")], safe)).toBe(false);
    expect(safeToRepeat([tool("search"), { jsonrpc: "2.0", method: "notifications/cancelled" }], safe)).toBe(true);
    expect(calledTools([tool("search"), request("ping"), tool("create")])).toEqual(["search", "create"]);
  });

  it("reads which tools are safe to repeat from a tools/list result", () => {
    const result = {
      tools: [
        { name: "read", annotations: { readOnlyHint: true } },
        { name: "put", annotations: { idempotentHint: true } },
        { name: "write", annotations: { readOnlyHint: false, destructiveHint: true } },
        { name: "plain" },
        { title: "no name" },
      ],
    };
    expect(toolHintsOf({ jsonrpc: "2.0", id: 1, result })).toEqual([
      { name: "read", safeToRepeat: true },
      { name: "put", safeToRepeat: true },
      { name: "write", safeToRepeat: false },
      { name: "plain", safeToRepeat: false },
    ]);
    expect(toolHintsOf({ jsonrpc: "2.0", id: 1, result: { resources: [] } })).toBeNull();
  });
});

import { GatewayError } from "../errors.js";
import { classifyAnswer, classifyError, FAILURES, type FailureKind, failureError } from "./failures.js";

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

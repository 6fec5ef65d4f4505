import { pino } from "pino";
import { redaction } from "./log-redaction.js";
import { accessLog, lazyChild } from "./request-log.js";

function logged() {
  // biome-ignore lint/suspicious/noExplicitAny: tests match on arbitrary log fields
  const lines: any[] = [];
  let children = 0;
  const logger = pino(
    { level: "info", redact: redaction("X-Outline-API-Key"), onChild: () => children++ },
    { write: (line: string) => lines.push(JSON.parse(line)) },
  );
  return { logger, lines, children: () => children };
}

describe("request logger", () => {
  it("makes the request's child logger only when something logs, with the bindings of that moment", () => {
    const { logger, lines, children } = logged();
    let user: string | undefined;
    const request = lazyChild(logger, () => ({ req: "r-1" }));
    const authenticated = lazyChild(request, () => ({ user }));
    user = "0123456789ab";
    expect(children()).toBe(0);
    authenticated.warn({ reason: "bad-tag" }, "session id refused");
    authenticated.info("again");
    expect(children()).toBe(2); // the request's and the user's, each made once
    expect(lines).toEqual([
      expect.objectContaining({
        level: 40,
        req: "r-1",
        user: "0123456789ab",
        reason: "bad-tag",
        msg: "session id refused",
      }),
      expect.objectContaining({ level: 30, req: "r-1", user: "0123456789ab", msg: "again" }),
    ]);
    expect(authenticated.isLevelEnabled("debug")).toBe(false);
  });

  it("still redacts keys in what the request's logger writes", () => {
    const { logger, lines } = logged();
    const log = lazyChild(logger, () => ({ req: "r-2" }));
    log.warn({ headers: { "x-outline-api-key": "ol_api_secret_1", authorization: "Bearer ol_api_secret_2" } }, "oops");
    log.error({ user: { key: "ol_api_secret_3" } }, "oops");
    const text = JSON.stringify(lines);
    expect(text).not.toMatch(/ol_api_secret/);
    expect(lines[0].headers).toEqual({ "x-outline-api-key": "[redacted]", authorization: "[redacted]" });
  });

  it("writes the access line with its fields only, at info", () => {
    const { logger, lines } = logged();
    const access = accessLog(logger);
    access({ req: "r-3", user: undefined, method: "POST", status: 401, ms: 2 });
    expect(lines).toEqual([
      {
        level: 30,
        time: expect.any(Number),
        pid: process.pid,
        hostname: expect.any(String),
        req: "r-3",
        method: "POST",
        status: 401,
        ms: 2,
        msg: "request",
      },
    ]);
    logger.level = "warn";
    access({ req: "r-4", user: "u", method: "POST", status: 200, ms: 1 });
    expect(lines).toHaveLength(1);
  });
});

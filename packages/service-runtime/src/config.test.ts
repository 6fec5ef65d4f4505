import { z } from "zod";
import { CodedError } from "./coded-error.js";
import { ConfigError, envFields, parseEnv } from "./config.js";

const schema = z.object({
  PORT: envFields.listenPort(8080),
  SECRET: z.string().min(16, "must be at least 16 characters"),
  ORIGINS: envFields.list(),
  PULL: envFields.flag(true),
  LOG_LEVEL: envFields.logLevel(),
});

describe("parseEnv", () => {
  it("applies defaults, treats an empty variable as unset, and freezes the result", () => {
    const config = parseEnv(schema, { PORT: "", SECRET: "0123456789abcdef", ORIGINS: " a, ,b ", PULL: "no" });
    expect(config).toEqual({
      PORT: 8080,
      SECRET: "0123456789abcdef",
      ORIGINS: ["a", "b"],
      PULL: false,
      LOG_LEVEL: "info",
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it("reports every bad variable at once, by name", () => {
    const failure = (() => {
      try {
        parseEnv(schema, { PORT: "http", SECRET: "short", LOG_LEVEL: "loud" });
      } catch (error) {
        return error;
      }
    })();
    expect(failure).toBeInstanceOf(ConfigError);
    const problems = (failure as ConfigError).problems.map((problem) => problem.split(":")[0]);
    expect(problems.sort()).toEqual(["LOG_LEVEL", "PORT", "SECRET"]);
    expect((failure as ConfigError).message).toContain("SECRET: must be at least 16 characters");
  });
});

describe("CodedError", () => {
  class DiskFullError extends CodedError<"DISK_FULL"> {
    constructor(cause: unknown) {
      super("DISK_FULL", "disk full", { cause });
    }
  }

  it("carries its literal code, its subclass's name and the cause", () => {
    const cause = new Error("ENOSPC");
    const error = new DiskFullError(cause);
    expect(error).toBeInstanceOf(CodedError);
    expect(error).toMatchObject({ code: "DISK_FULL", name: "DiskFullError", cause });
    expect(new ConfigError(["PORT: bad"])).toMatchObject({ code: "INVALID_CONFIG", name: "ConfigError" });
  });
});

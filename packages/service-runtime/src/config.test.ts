import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

describe("parseEnv with X_FILE variables (Swarm secrets)", () => {
  const dir = mkdtempSync(join(tmpdir(), "mcpb-config-"));
  const secret = join(dir, "secret");
  writeFileSync(secret, "0123456789abcdef-from-file\n");
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("reads any variable from the file X_FILE names, over X, without the trailing newline", () => {
    const config = parseEnv(schema, { SECRET_FILE: secret, SECRET: "from-the-base-compose-file", LOG_LEVEL: "warn" });
    expect(config).toMatchObject({ SECRET: "0123456789abcdef-from-file", LOG_LEVEL: "warn" });
    expect(config).not.toHaveProperty("SECRET_FILE");
  });

  it("leaves *_FILE variables of other programs alone (a shell's SSL_CERT_FILE, TF_CLI_CONFIG_FILE)", () => {
    const config = parseEnv(schema, {
      SECRET: "0123456789abcdef-plain",
      TF_CLI_CONFIG_FILE: join(dir, "absent"),
      SSL_CERT_FILE: secret,
    });
    expect(config).toMatchObject({ SECRET: "0123456789abcdef-plain" });
  });

  it("reports a file it cannot read together with the schema's own problems", () => {
    const problems = (() => {
      try {
        parseEnv(schema, { SECRET_FILE: join(dir, "absent"), LOG_LEVEL: "loud" });
      } catch (error) {
        return (error as ConfigError).problems;
      }
    })();
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^SECRET_FILE: cannot read .*absent \(ENOENT\)$/),
        expect.stringMatching(/^LOG_LEVEL:/),
      ]),
    );
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

import { readFileSync } from "node:fs";
import { z } from "zod";
import { CodedError } from "./coded-error.js";
import { parseSentinel, type SentinelAddress } from "./redis-target.js";

/** The environment did not parse: `problems` names every bad variable, all at once. */
export class ConfigError extends CodedError<"INVALID_CONFIG"> {
  constructor(readonly problems: readonly string[]) {
    super("INVALID_CONFIG", `invalid configuration:\n  ${problems.join("\n  ")}`);
  }
}

/**
 * Parses the environment once against an app's schema; the result is frozen and passed down,
 * so nothing else reads `process.env` and tests build a config directly.
 */
export function parseEnv<Schema extends z.ZodType>(
  schema: Schema,
  env: Readonly<Record<string, string | undefined>>,
): Readonly<z.output<Schema>> {
  // An empty variable (`FOO=` in .env or compose) means "not set": its default applies.
  const set = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ""));
  const { values, problems } = readFileVariables(set, variablesOf(schema));
  const parsed = schema.safeParse(values);
  const issues = parsed.success ? [] : parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
  if (problems.length > 0 || !parsed.success) throw new ConfigError([...problems, ...issues]);
  return Object.freeze(parsed.data);
}

/** The variables an object schema names; null when the schema is not an object (then any X_FILE counts). */
function variablesOf(schema: z.ZodType): ReadonlySet<string> | null {
  const shape = (schema as { shape?: Record<string, unknown> }).shape;
  return shape && typeof shape === "object" ? new Set(Object.keys(shape)) : null;
}

/**
 * `X_FILE=/run/secrets/x` gives X the file's content, for any X the schema reads (others, like
 * a shell's `SSL_CERT_FILE` or `TF_CLI_CONFIG_FILE`, are not ours): Swarm and Kubernetes hand
 * secrets over as files, never as variables (which `docker inspect` shows). The trailing newline
 * an editor or `echo` leaves is dropped. X_FILE wins over X: an override file (deploy/swarm.yml)
 * can add a variable but not unset the base file's X.
 */
function readFileVariables(env: Record<string, string | undefined>, known: ReadonlySet<string> | null) {
  const values = { ...env };
  const problems: string[] = [];
  for (const [key, path] of Object.entries(env)) {
    if (!key.endsWith("_FILE") || key === "_FILE" || path === undefined) continue;
    const name = key.slice(0, -"_FILE".length);
    if (known && !known.has(name)) continue;
    delete values[key];
    try {
      values[name] = readFileSync(path, "utf8").replace(/\r?\n$/, "");
    } catch (error) {
      problems.push(`${key}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
    }
  }
  return { values, problems };
}

/** Field types every app's schema uses, so each reads a variable the same way. */
export const envFields = {
  /** A TCP port to listen on; 0 lets the OS pick one. */
  listenPort: (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback),
  /** A count or a duration in whole units (seconds, milliseconds), above zero. */
  positiveInt: (fallback: number) => z.coerce.number().int().positive().default(fallback),
  /** `true/false`, `1/0` or `yes/no`. */
  flag: (fallback: boolean) =>
    z
      .enum(["true", "false", "1", "0", "yes", "no"])
      .transform((value) => value === "true" || value === "1" || value === "yes")
      .default(fallback),
  /** A comma-separated list; blanks dropped, unset means empty. */
  list: () =>
    z
      .string()
      .default("")
      .transform((value) =>
        value
          .split(",")
          .map((item) => item.trim())
          .filter(Boolean),
      ),
  logLevel: () => z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** The Redis connection every service shares: the same names and rules in each schema. */
  redis: (commandTimeoutMs: number) => ({
    REDIS_URL: z
      .string()
      .regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL")
      .default("redis://127.0.0.1:6379"),
    REDIS_PREFIX: z.string().default("mcpb:"),
    REDIS_COMMAND_TIMEOUT_MS: z.coerce.number().int().positive().default(commandTimeoutMs),
    /** Redis Sentinel: set, the master of REDIS_MASTER_NAME is asked of these (redis-target.ts). */
    REDIS_SENTINELS: envFields.list().transform((entries, ctx) =>
      entries.flatMap((entry): SentinelAddress[] => {
        const address = parseSentinel(entry);
        if (!address) ctx.addIssue({ code: "custom", input: entry, message: `"${entry}" is not host:port` });
        return address ? [address] : [];
      }),
    ),
    REDIS_MASTER_NAME: z.string().default("mymaster"),
    REDIS_SENTINEL_PASSWORD: z.string().optional(),
  }),
};

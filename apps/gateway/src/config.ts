import { z } from "zod";

const bool = z
  .enum(["true", "false", "1", "0", "yes", "no"])
  .transform((value) => value === "true" || value === "1" || value === "yes");
const list = z
  .string()
  .default("")
  .transform((value) =>
    value
      .split(",")
      .map((item) => item.trim())
      .filter(Boolean),
  );
const seconds = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** Every variable the gateway reads; README's configuration table lists the same. */
const schema = z
  .object({
    PORT: z.coerce.number().int().min(0).max(65535).default(8080),
    HOST: z.string().default("0.0.0.0"),
    LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    REDIS_URL: z
      .string()
      .regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL")
      .default("redis://127.0.0.1:6379"),
    REDIS_PREFIX: z.string().default("mcpb:"),
    REDIS_COMMAND_TIMEOUT_MS: z.coerce.number().int().positive().default(2000),
    KEY_HASH_SECRET: z.string().min(16, "must be at least 16 characters"),
    API_KEY_HEADER: z
      .string()
      .regex(/^[A-Za-z0-9-]+$/, "must be an HTTP header name")
      .default("X-Outline-API-Key"),
    API_KEY_PATTERN: z
      .string()
      .default("^[A-Za-z0-9_.~+/=-]{8,512}$")
      .refine((value) => {
        try {
          new RegExp(value);
          return true;
        } catch {
          return false;
        }
      }, "must be a valid regular expression")
      .transform((value) => new RegExp(value)),
    AUTH_VERIFY_URL: z.url().optional(),
    AUTH_CACHE_SECONDS: seconds(600),
    AUTH_NEGATIVE_CACHE_SECONDS: seconds(30),
    RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(0).default(600),
    SESSION_IDLE_TTL_SECONDS: seconds(3600),
    CONTAINER_IDLE_TTL_SECONDS: seconds(900),
    BACKEND_DRIVER: z.enum(["docker", "process"]).default("docker"),
    BACKEND_IMAGE: z.string().min(1).default("ghcr.io/vortiago/mcp-outline:latest"),
    BACKEND_COMMAND: z.string().default(""),
    BACKEND_PORT: z.coerce.number().int().min(1).max(65535).default(3000),
    BACKEND_PATH: z.string().startsWith("/").default("/mcp"),
    BACKEND_KEY_ENV: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .default("OUTLINE_API_KEY"),
    BACKEND_ENV_PASSTHROUGH: list,
    BACKEND_NETWORK: z.string().default(""),
    BACKEND_PUBLISH_HOST: z.string().default("127.0.0.1"),
    BACKEND_MEMORY_MB: z.coerce.number().int().positive().default(512),
    BACKEND_CPUS: z.coerce.number().positive().default(1),
    BACKEND_PIDS_LIMIT: z.coerce.number().int().positive().default(256),
    BACKEND_USER: z.string().default("1000:1000"),
    BACKEND_READ_ONLY: bool.default(false),
    BACKEND_PULL: bool.default(true),
    BACKEND_READY_TIMEOUT_MS: z.coerce.number().int().positive().default(30_000),
    DEPLOYMENT_NAME: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_.-]*$/, "lower-case letters, digits, . _ -")
      .default("default"),
    MAX_BODY_BYTES: z.coerce
      .number()
      .int()
      .positive()
      .default(4 * 1024 * 1024),
    UPSTREAM_TIMEOUT_MS: z.coerce.number().int().positive().default(600_000),
    ALLOWED_ORIGINS: list,
    SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
  })
  .superRefine((value, ctx) => {
    if (value.BACKEND_DRIVER === "process" && !value.BACKEND_COMMAND) {
      ctx.addIssue({ code: "custom", path: ["BACKEND_COMMAND"], message: "is required when BACKEND_DRIVER=process" });
    }
  });

/** Every variable name the gateway reads (the docs test checks README and .env.example list them). */
export const GATEWAY_VARIABLES = Object.keys(schema.shape);

export type GatewayConfig = Readonly<
  z.infer<typeof schema> & {
    /** Values of BACKEND_ENV_PASSTHROUGH variables, read once here. */
    backendEnv: Readonly<Record<string, string>>;
  }
>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join("\n  ")}`);
  }
}

/** Parses the environment once; every problem is reported together, by variable name. */
export function loadConfig(env: NodeJS.ProcessEnv): GatewayConfig {
  // An empty variable (`FOO=` in .env or compose) means "not set": its default applies.
  const parsed = schema.safeParse(Object.fromEntries(Object.entries(env).filter(([, value]) => value !== "")));
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`));
  }
  const backendEnv = Object.fromEntries(
    parsed.data.BACKEND_ENV_PASSTHROUGH.flatMap((name) => (env[name] ? [[name, env[name]]] : [])),
  );
  return Object.freeze({ ...parsed.data, backendEnv });
}

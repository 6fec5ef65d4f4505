import { z } from "zod";

const seconds = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** Every variable the reaper reads; README's configuration table lists the same. */
const schema = z.object({
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL")
    .default("redis://127.0.0.1:6379"),
  REDIS_PREFIX: z.string().default("mcpb:"),
  REDIS_COMMAND_TIMEOUT_MS: z.coerce.number().int().positive().default(5000),
  SESSION_IDLE_TTL_SECONDS: seconds(3600),
  CONTAINER_IDLE_TTL_SECONDS: seconds(900),
  REAP_INTERVAL_SECONDS: seconds(60),
  /** Items claimed per Redis call, and batches per sweep: bounds one job's work. */
  REAP_BATCH_SIZE: seconds(500),
  REAP_MAX_BATCHES: seconds(20),
  /** A labelled container without a route is only an orphan once it is this old (it may be starting). */
  ORPHAN_GRACE_SECONDS: z.coerce.number().int().min(0).default(120),
  DEPLOYMENT_NAME: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_.-]*$/, "lower-case letters, digits, . _ -")
    .default("default"),
  DASHBOARD_PORT: z.coerce.number().int().min(0).max(65535).default(3001),
  DASHBOARD_HOST: z.string().default("0.0.0.0"),
  DASHBOARD_USER: z.string().min(1).default("admin"),
  DASHBOARD_PASSWORD: z.string().default(""),
});

/** Every variable name the reaper reads (the docs test checks README and .env.example list them). */
export const REAPER_VARIABLES = Object.keys(schema.shape);

export type ReaperConfig = Readonly<z.infer<typeof schema>>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join("\n  ")}`);
  }
}

/** Parses the environment once; every problem is reported together, by variable name. */
export function loadConfig(env: NodeJS.ProcessEnv): ReaperConfig {
  // An empty variable (`FOO=` in .env or compose) means "not set": its default applies.
  const parsed = schema.safeParse(Object.fromEntries(Object.entries(env).filter(([, value]) => value !== "")));
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`));
  }
  return Object.freeze(parsed.data);
}

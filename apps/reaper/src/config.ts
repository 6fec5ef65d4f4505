import { hostname } from "node:os";
import { DRIVER_DEFAULTS, parseCidr, SUBNET_POOL_DEFAULTS } from "@mcp-broker/container-manager";
import { ConfigError, envFields, parseEnv, tracingFields } from "@mcp-broker/service-runtime";
import { z } from "zod";

export { ConfigError };

const { listenPort, logLevel, positiveInt, redis } = envFields;

/** Every variable the reaper reads; README's configuration table lists the same. */
const schema = z.object({
  LOG_LEVEL: logLevel(),
  ...redis(5000),
  /** OpenTelemetry: off unless an OTLP endpoint is set (docs/architecture.md#tracing). */
  ...tracingFields,
  SESSION_IDLE_TTL_SECONDS: positiveInt(3600),
  CONTAINER_IDLE_TTL_SECONDS: positiveInt(900),
  REAP_INTERVAL_SECONDS: positiveInt(60),
  /** Items claimed per Redis call, and batches per sweep: bounds one job's work. */
  REAP_BATCH_SIZE: positiveInt(500),
  REAP_MAX_BATCHES: positiveInt(20),
  /** A labelled container without a route is only an orphan once it is this old (it may be starting). */
  ORPHAN_GRACE_SECONDS: z.coerce.number().int().min(0).default(120),
  /** Which servers the sweeps list and remove: containers (docker, process) or Swarm services (swarm). */
  BACKEND_DRIVER: z.enum(["docker", "process", "swarm"]).default("docker"),
  /** `per-user` (as the gateways'): the reaper joins backend networks and prunes those whose backend is gone. */
  BACKEND_NETWORK: z.string().default(""),
  /** With `per-user`: connections that arrive on an address of this pool are closed (the dashboard). */
  BACKEND_NETWORK_POOL: z
    .string()
    .default(SUBNET_POOL_DEFAULTS.pool)
    .refine((value) => parseCidr(value) !== undefined, "must be an IPv4 CIDR such as 10.213.0.0/16"),
  /** With `per-user`: the reaper's own container (Docker sets the hostname to its id). */
  BACKEND_PEER_CONTAINER: z.string().default(() => hostname()),
  DEPLOYMENT_NAME: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_.-]*$/, "lower-case letters, digits, . _ -")
    .default(DRIVER_DEFAULTS.deployment),
  DASHBOARD_PORT: listenPort(3001),
  DASHBOARD_HOST: z.string().default("0.0.0.0"),
  DASHBOARD_USER: z.string().min(1).default("admin"),
  DASHBOARD_PASSWORD: z.string().default(""),
  /** `production` refuses to start with a missing or demo DASHBOARD_PASSWORD. */
  NODE_ENV: z.string().default("development"),
});

/** Every variable name the reaper reads (the docs test checks README and .env.example list them). */
export const REAPER_VARIABLES = Object.keys(schema.shape);

export type ReaperConfig = Readonly<z.infer<typeof schema>>;

/** Parses the environment once; every problem is reported together, by variable name. */
export function loadConfig(env: NodeJS.ProcessEnv): ReaperConfig {
  const config = parseEnv(schema, env);
  const password = config.DASHBOARD_PASSWORD;
  if (config.NODE_ENV === "production" && (!password || /change-?me|demo|example/i.test(password))) {
    throw new ConfigError([
      `DASHBOARD_PASSWORD: ${password ? "is a demo value" : "is missing"}; NODE_ENV=production needs a password of your own`,
    ]);
  }
  return config;
}

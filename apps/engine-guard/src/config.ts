import { DRIVER_DEFAULTS, type EnginePolicy, parseCidr, SUBNET_POOL_DEFAULTS } from "@mcp-broker/container-manager";
import { envFields, parseEnv } from "@mcp-broker/service-runtime";
import { z } from "zod";

export { ConfigError } from "@mcp-broker/service-runtime";

const { listenPort, logLevel, positiveInt } = envFields;
const MiB = 1024 * 1024;

/** Image references as the driver names them; nothing that could smuggle a path or query into a URL. */
const imageList = z
  .string()
  .default(DRIVER_DEFAULTS.image)
  .transform((value) =>
    value
      .split(",")
      .map((item) => item.trim())
      .filter(Boolean),
  )
  .pipe(
    z
      .array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._/:@-]*$/, "image references only: repo[:tag] or repo@digest"))
      .min(1),
  );

/** Every variable the engine guard reads; README's configuration table lists the same. */
const schema = z.object({
  LOG_LEVEL: logLevel(),
  DEPLOYMENT_NAME: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_.-]*$/, "lower-case letters, digits, . _ -")
    .default(DRIVER_DEFAULTS.deployment),
  /** `gateway`: what the gateways need (create, start, pull, ...); `reaper`: list, inspect, stop, remove. */
  GUARD_ROLE: z.enum(["gateway", "reaper"]).default("gateway"),
  GUARD_PORT: listenPort(2375),
  /** Loopback unless told otherwise: whoever reaches this port may start backends. */
  GUARD_HOST: z.string().default("127.0.0.1"),
  GUARD_ENGINE_SOCKET: z.string().startsWith("/").default("/var/run/docker.sock"),
  GUARD_IMAGES: imageList,
  GUARD_CONTAINER_PORT: z.coerce.number().int().min(1).max(65535).default(DRIVER_DEFAULTS.port),
  /** "", a network name, or `per-user` (each backend on its own network, created through the guard). */
  GUARD_NETWORK: z.string().default(""),
  /** With `per-user`: the pool backend subnets must come from, and their prefix length. */
  GUARD_NETWORK_POOL: z
    .string()
    .default(SUBNET_POOL_DEFAULTS.pool)
    .refine((value) => parseCidr(value) !== undefined, "must be an IPv4 CIDR such as 10.213.0.0/16"),
  GUARD_NETWORK_PREFIX: z.coerce.number().int().min(16).max(29).default(SUBNET_POOL_DEFAULTS.prefixLength),
  GUARD_PUBLISH_HOST: z.string().default(DRIVER_DEFAULTS.publishHost),
  GUARD_MAX_MEMORY_MB: positiveInt(DRIVER_DEFAULTS.memoryBytes / MiB),
  GUARD_MAX_CPUS: z.coerce
    .number()
    .positive()
    .default(DRIVER_DEFAULTS.nanoCpus / 1e9),
  GUARD_MAX_PIDS: positiveInt(DRIVER_DEFAULTS.pidsLimit),
});

/** Every variable name the guard reads (the docs test checks README and .env.example list them). */
export const ENGINE_GUARD_VARIABLES = Object.keys(schema.shape);

export type GuardConfig = Readonly<z.infer<typeof schema>>;
export type GuardRole = GuardConfig["GUARD_ROLE"];

/** Parses the environment once; every problem is reported together, by variable name. */
export function loadConfig(env: NodeJS.ProcessEnv): GuardConfig {
  return parseEnv(schema, env);
}

/** The policy the guard enforces: the backends this deployment's gateways create, within these maxima. */
export function enginePolicyOf(config: GuardConfig): EnginePolicy {
  return {
    images: config.GUARD_IMAGES,
    deployment: config.DEPLOYMENT_NAME,
    namePrefix: DRIVER_DEFAULTS.namePrefix,
    port: config.GUARD_CONTAINER_PORT,
    network: config.GUARD_NETWORK,
    subnets: { pool: config.GUARD_NETWORK_POOL, prefixLength: config.GUARD_NETWORK_PREFIX },
    publishHost: config.GUARD_PUBLISH_HOST,
    maxMemoryBytes: config.GUARD_MAX_MEMORY_MB * MiB,
    maxNanoCpus: Math.round(config.GUARD_MAX_CPUS * 1e9),
    maxPidsLimit: config.GUARD_MAX_PIDS,
  };
}

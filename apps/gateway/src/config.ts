import { createHmac } from "node:crypto";
import { hostname } from "node:os";
import { DRIVER_DEFAULTS, parseCidr, SUBNET_POOL_DEFAULTS } from "@mcp-broker/container-manager";
import { envFields, parseEnv, tracingFields } from "@mcp-broker/service-runtime";
import { z } from "zod";

export { ConfigError } from "@mcp-broker/service-runtime";

const { flag, list, listenPort, logLevel, positiveInt, redis } = envFields;
const MiB = 1024 * 1024;

/** Every variable the gateway reads; README's configuration table lists the same. */
const schema = z
  .object({
    PORT: listenPort(8080),
    HOST: z.string().default("0.0.0.0"),
    LOG_LEVEL: logLevel(),
    ...redis(2000),
    /** OpenTelemetry: off unless an OTLP endpoint is set (docs/architecture.md#tracing). */
    ...tracingFields,
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
    /** `on` (the default) needs AUTH_VERIFY_URL; `off` must be chosen explicitly (logged as a warning). */
    AUTH_VERIFY: z.enum(["on", "off"]).default("on"),
    AUTH_VERIFY_URL: z.url().optional(),
    /** Upstream verifications (cache misses) per client IP per minute; 0: unlimited. */
    VERIFY_PER_IP_PER_MINUTE: z.coerce.number().int().min(0).default(30),
    /** Backend starts for keys without a running backend, per client IP per minute; 0: unlimited. */
    NEW_KEY_STARTS_PER_IP_PER_MINUTE: z.coerce.number().int().min(0).default(10),
    /** The client IP is the first X-Forwarded-For hop (set it only behind a balancer that sets it). */
    TRUST_PROXY: flag(false),
    /**
     * Running backends across every replica (counted in Redis, spares of the warm pool too). When
     * full, a new user gets the least recently used backend idle longer than
     * RECLAIM_MIN_IDLE_SECONDS; with none such, a 503.
     */
    MAX_BACKENDS: positiveInt(100),
    /** A backend idle (no request, no stream on any replica) this long may be reclaimed for a new user; 0: never. */
    RECLAIM_MIN_IDLE_SECONDS: z.coerce.number().int().min(0).default(60),
    /** Keyless spare backends kept ready for users without one (docs/architecture.md#warm-pool); 0: no pool. */
    WARM_POOL_SIZE: z.coerce.number().int().min(0).default(0),
    /** How often each replica tops the pool up besides after each claim. */
    WARM_POOL_REFILL_SECONDS: positiveInt(30),
    /** The backend image needs the user's key at start (reads no key header): turns the warm pool off. */
    BACKEND_KEY_AT_START: flag(false),
    MAX_SESSIONS_PER_USER: positiveInt(50),
    /** Open GET streams per user on one replica. */
    MAX_STREAMS_PER_USER: positiveInt(20),
    /**
     * Server-to-client relay (docs/architecture.md#server-to-client-streams): per session, the
     * events Redis keeps for client GET streams, by count and by bytes (oldest dropped first).
     */
    RELAY_MAX_EVENTS: positiveInt(500),
    RELAY_MAX_BYTES: positiveInt(1 * MiB),
    /** Upstream GET streams one replica holds; beyond it the replica leaves new sessions to others. */
    RELAY_MAX_HELD: positiveInt(2000),
    /** How long a relay lease outlives its holder: the longest a dead replica's sessions go unrelayed. */
    RELAY_LEASE_MS: z.coerce.number().int().min(1000).default(6000),
    /** Messages in one JSON-RPC batch; each is charged against the rate limit. */
    MAX_BATCH: positiveInt(32),
    /** Bytes of `initialize` params (as JSON) a session may carry. */
    MAX_INITIALIZE_PARAMS_BYTES: positiveInt(8 * 1024),
    /** Bytes of an upstream answer the gateway reads into memory (id rewriting, failure classification). */
    MAX_UPSTREAM_BODY_BYTES: positiveInt(16 * MiB),
    AUTH_CACHE_SECONDS: positiveInt(600),
    AUTH_NEGATIVE_CACHE_SECONDS: positiveInt(30),
    RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(0).default(600),
    SESSION_IDLE_TTL_SECONDS: positiveInt(3600),
    /** Signs broker session ids, newest first; unset: derived from KEY_HASH_SECRET (see loadConfig). */
    SESSION_SECRET: list().refine(
      (secrets) => secrets.every((secret) => secret.length >= 16),
      "each comma-separated secret must be at least 16 characters",
    ),
    /** A session id older than this is refused (404), so the client initializes a new one. */
    SESSION_MAX_AGE_SECONDS: positiveInt(30 * 24 * 3600),
    CONTAINER_IDLE_TTL_SECONDS: positiveInt(900),
    /**
     * How long a replica trusts its cached session → upstream session and route (the hot path
     * skips Redis meanwhile; a stale entry recovers like any failed request). 0: no cache.
     */
    SESSION_CACHE_MS: z.coerce.number().int().min(0).max(60_000).default(1000),
    /** Last-used times are written to Redis once per this interval per session. 0: on every request. */
    TOUCH_INTERVAL_MS: z.coerce.number().int().min(0).max(60_000).default(1000),
    BACKEND_DRIVER: z.enum(["docker", "process", "swarm"]).default("docker"),
    BACKEND_IMAGE: z.string().min(1).default(DRIVER_DEFAULTS.image),
    BACKEND_COMMAND: z.string().default(""),
    BACKEND_PORT: z.coerce.number().int().min(1).max(65535).default(DRIVER_DEFAULTS.port),
    BACKEND_PATH: z.string().startsWith("/").default(DRIVER_DEFAULTS.path),
    BACKEND_KEY_ENV: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .default(DRIVER_DEFAULTS.keyEnv),
    BACKEND_ENV_PASSTHROUGH: list(),
    /** "": publish on BACKEND_PUBLISH_HOST; `per-user`: a network per backend (isolation); else one shared network. */
    BACKEND_NETWORK: z.string().default(""),
    /** With `per-user`: backend subnets come from this pool (Docker's own pools hold about 31 networks). */
    BACKEND_NETWORK_POOL: z
      .string()
      .default(SUBNET_POOL_DEFAULTS.pool)
      .refine((value) => parseCidr(value) !== undefined, "must be an IPv4 CIDR such as 10.213.0.0/16"),
    BACKEND_NETWORK_PREFIX: z.coerce.number().int().min(16).max(29).default(SUBNET_POOL_DEFAULTS.prefixLength),
    /** With `per-user`: this gateway's own container, joined to backend networks (Docker sets the hostname to its id). */
    BACKEND_PEER_CONTAINER: z.string().default(() => hostname()),
    BACKEND_PUBLISH_HOST: z.string().default(DRIVER_DEFAULTS.publishHost),
    BACKEND_MEMORY_MB: positiveInt(DRIVER_DEFAULTS.memoryBytes / MiB),
    BACKEND_CPUS: z.coerce
      .number()
      .positive()
      .default(DRIVER_DEFAULTS.nanoCpus / 1e9),
    BACKEND_PIDS_LIMIT: positiveInt(DRIVER_DEFAULTS.pidsLimit),
    BACKEND_USER: z.string().default(DRIVER_DEFAULTS.user),
    BACKEND_READ_ONLY: flag(DRIVER_DEFAULTS.readOnlyRootfs),
    BACKEND_PULL: flag(DRIVER_DEFAULTS.pullMissing),
    BACKEND_READY_TIMEOUT_MS: positiveInt(DRIVER_DEFAULTS.readinessTimeoutMs),
    DEPLOYMENT_NAME: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_.-]*$/, "lower-case letters, digits, . _ -")
      .default(DRIVER_DEFAULTS.deployment),
    MAX_BODY_BYTES: positiveInt(4 * MiB),
    UPSTREAM_TIMEOUT_MS: positiveInt(600_000),
    ALLOWED_ORIGINS: list(),
    // SIGTERM: /ready answers 503 and answers close their connections this long before the
    // gateway stops accepting, so a balancer that checks /ready takes it out first (HAProxy in
    // deploy/haproxy: two failed checks, about 1.3 s). 0: stop accepting at once.
    DRAIN_SECONDS: z.coerce.number().int().min(0).default(3),
    SHUTDOWN_TIMEOUT_MS: positiveInt(10_000),
    /** `production` refuses to start with a missing or demo secret. */
    NODE_ENV: z.string().default("development"),
  })
  .superRefine((value, ctx) => {
    if (value.BACKEND_DRIVER === "process" && !value.BACKEND_COMMAND) {
      ctx.addIssue({ code: "custom", path: ["BACKEND_COMMAND"], message: "is required when BACKEND_DRIVER=process" });
    }
    // Swarm services publish nothing: the gateways reach them by name on the overlay they share.
    if (value.BACKEND_DRIVER === "swarm" && !value.BACKEND_NETWORK) {
      ctx.addIssue({ code: "custom", path: ["BACKEND_NETWORK"], message: "is required when BACKEND_DRIVER=swarm" });
    }
    // Random keys must not each start a server: verification is on unless turned off by name.
    if (value.AUTH_VERIFY === "on" && !value.AUTH_VERIFY_URL) {
      ctx.addIssue({
        code: "custom",
        path: ["AUTH_VERIFY_URL"],
        message: "is required (or set AUTH_VERIFY=off to accept every well-formed key)",
      });
    }
    if (value.NODE_ENV === "production") {
      for (const name of demoSecrets(value.KEY_HASH_SECRET, value.SESSION_SECRET)) {
        ctx.addIssue({
          code: "custom",
          path: [name],
          message: "is a demo value; NODE_ENV=production needs a secret of your own",
        });
      }
    }
  });

/** Secrets shipped in compose, .env.example and the docs: refused in production. */
export const DEMO_SECRETS: readonly string[] = [
  "change-me-please-0123456789",
  "change-me-too",
  "dev-secret-0123456789",
  "unit-secret-0123456789",
];
const isDemo = (secret: string) => DEMO_SECRETS.includes(secret) || /change-?me|demo|example/i.test(secret);

function demoSecrets(keyHashSecret: string, sessionSecrets: readonly string[]): string[] {
  return [
    ...(isDemo(keyHashSecret) ? ["KEY_HASH_SECRET"] : []),
    ...(sessionSecrets.some(isDemo) ? ["SESSION_SECRET"] : []),
  ];
}

/** Every variable name the gateway reads (the docs test checks README and .env.example list them). */
export const GATEWAY_VARIABLES = Object.keys(schema.shape);

export type GatewayConfig = Readonly<
  z.infer<typeof schema> & {
    /** Values of BACKEND_ENV_PASSTHROUGH variables, read once here. */
    backendEnv: Readonly<Record<string, string>>;
    /**
     * The whole environment of a process-driver backend: PATH (to find its command) and HOME
     * (tools such as uvx keep caches there) plus the passthrough variables, and nothing else of
     * the gateway's, whose own secrets (KEY_HASH_SECRET) must never reach a user's server.
     */
    backendProcessEnv: Readonly<Record<string, string>>;
    /** SESSION_SECRET, or the one secret derived from KEY_HASH_SECRET when it is unset. */
    sessionSecrets: readonly string[];
  }
>;

/**
 * Without SESSION_SECRET the session-token key is derived from KEY_HASH_SECRET under a label of
 * its own (domain separation: no user id is ever a valid tag, and the reverse), so existing
 * deployments and tests need no new variable.
 */
function derivedSessionSecret(keyHashSecret: string): string {
  return createHmac("sha256", keyHashSecret).update("mcp-broker session tokens v1").digest("base64url");
}

/** Parses the environment once; every problem is reported together, by variable name. */
export function loadConfig(env: NodeJS.ProcessEnv): GatewayConfig {
  const config = parseEnv(schema, env);
  const pick = (names: readonly string[]) =>
    Object.fromEntries(names.flatMap((name) => (env[name] ? [[name, env[name]]] : [])));
  const backendEnv = pick(config.BACKEND_ENV_PASSTHROUGH);
  const backendProcessEnv = { ...pick(["PATH", "HOME"]), ...backendEnv };
  const sessionSecrets = Object.freeze(
    config.SESSION_SECRET.length > 0 ? config.SESSION_SECRET : [derivedSessionSecret(config.KEY_HASH_SECRET)],
  );
  return Object.freeze({ ...config, backendEnv, backendProcessEnv, sessionSecrets });
}

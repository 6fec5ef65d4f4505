import { envFields, parseEnv } from "@mcp-broker/service-runtime";
import { z } from "zod";

export { ConfigError } from "@mcp-broker/service-runtime";

const schema = z.object({
  PORT: envFields.listenPort(3000),
  HOST: z.string().default("0.0.0.0"),
  /** `conformance`: the MCP conformance suite's tools, resources and prompts instead of Outline's. */
  STUB_TOOLS: z.enum(["outline", "conformance"]).default("outline"),
  /**
   * The key this server was started for, as the Outline MCP server reads it; optional, as
   * there: a spare of the warm pool starts without one and reads `x-outline-api-key` per request.
   */
  OUTLINE_API_KEY: z.string().default(""),
  /** Keys the fake `POST /api/auth.info` accepts, comma separated. */
  AUTH_ALLOWED_KEYS: envFields.list(),
  /** Demo mode: keys matching this regular expression are accepted too (compose: keys with "demo"). */
  AUTH_ALLOWED_KEY_PATTERN: z
    .string()
    .optional()
    .transform((value) => (value ? new RegExp(value) : undefined)),
});

export type StubConfig = Readonly<z.infer<typeof schema>>;

/** Parses the environment once; every problem is reported together, by variable name. */
export function loadConfig(env: NodeJS.ProcessEnv): StubConfig {
  return parseEnv(schema, env);
}

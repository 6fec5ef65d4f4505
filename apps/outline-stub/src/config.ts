import { z } from "zod";

const schema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().default("0.0.0.0"),
  /** The key this server was started for, as the Outline MCP server reads it. */
  OUTLINE_API_KEY: z.string().min(1),
  /** Keys the fake `POST /api/auth.info` accepts, comma separated. */
  AUTH_ALLOWED_KEYS: z
    .string()
    .default("")
    .transform((value) =>
      value
        .split(",")
        .map((key) => key.trim())
        .filter(Boolean),
    ),
});

export type StubConfig = Readonly<z.infer<typeof schema>>;

export function loadConfig(env: NodeJS.ProcessEnv): StubConfig {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
    throw new Error(`invalid configuration:\n  ${problems.join("\n  ")}`);
  }
  return Object.freeze(parsed.data);
}

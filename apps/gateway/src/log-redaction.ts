import type { LoggerOptions } from "pino";

/**
 * pino's `redact` over every field that can carry an API key: the key header (named by
 * config), Authorization, cookies, and any `key`/`apiKey` field, at the top level and one or two
 * levels down (`headers.*`, `req.headers.*`, `user.key`). The code logs user tags only; this is
 * the safety net for a log call that one day passes headers or a user whole.
 */
export function redaction(apiKeyHeader: string): NonNullable<LoggerOptions["redact"]> {
  const fields = ["authorization", "cookie", "set-cookie", "proxy-authorization", apiKeyHeader.toLowerCase()];
  const named = fields.map((name) => `["${name}"]`);
  const paths = [
    ...named,
    ...named.map((field) => `headers${field}`),
    ...named.map((field) => `*.headers${field}`),
    ...named.map((field) => `*${field}`),
    "key",
    "apiKey",
    "api_key",
    "*.key",
    "*.apiKey",
    "*.api_key",
    "*.*.apiKey",
  ];
  return { paths, censor: "[redacted]" };
}

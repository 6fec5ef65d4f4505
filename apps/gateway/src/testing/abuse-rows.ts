import { randomUUID } from "node:crypto";
import { INITIALIZE, list } from "./rpc.js";

/** What an abuse row sends through: the gateways of abuse-table.unit.test.ts and a request helper. */
export interface AbuseContext {
  /** Verification on (keys with "good" pass), generous limits. */
  main: string;
  /** RATE_LIMIT_PER_MINUTE=2, MAX_BACKENDS=1, VERIFY_PER_IP_PER_MINUTE=3. */
  tight: string;
  /** Redis unreachable. */
  noRedis: string;
  send(url: string, init: { method?: string; headers?: Record<string, string>; body?: string }): Promise<Response>;
  /** A fresh key the verifier accepts (registered for the no-leak check). */
  good(name: string): string;
  /** A session id for `apiKey` (initializes one). */
  session(url: string, apiKey: string): Promise<string>;
}

export interface AbuseRow {
  input: string;
  status: number;
  /** The JSON-RPC error code of the body; null when the answer has none. */
  rpc: number | null;
  /**
   * Rows naming the same queue share a budget (the tight gateway's rate limits and its one slot),
   * so they run one after another in table order; every other row runs alongside them.
   */
  queue?: "tight";
  run(ctx: AbuseContext): Promise<Response>;
}

const JSON_TYPE = { "content-type": "application/json", accept: "application/json, text/event-stream" };
const message = (value: unknown) => JSON.stringify(value);

/** POST /mcp as a JSON-RPC client, with a good key unless the row says otherwise. */
const postAs =
  (body: string, headers: (ctx: AbuseContext) => Record<string, string>, target: keyof AbuseContext = "main") =>
  (ctx: AbuseContext) =>
    ctx.send(ctx[target] as string, { method: "POST", headers: { ...JSON_TYPE, ...headers(ctx) }, body });
const keyed =
  (name: string, extra: Record<string, string> = {}) =>
  (ctx: AbuseContext) => ({
    "x-outline-api-key": ctx.good(name),
    ...extra,
  });

const row = (input: string, status: number, rpc: number | null, run: AbuseRow["run"]): AbuseRow => ({
  input,
  status,
  rpc,
  run,
});

/** Abusive or malformed inputs and their exact answers: the rows of docs/abuse-table.md. */
export const ABUSE_ROWS: AbuseRow[] = [
  { input: "no API key", status: 401, rpc: -32004, run: postAs(message(list()), () => ({})) },
  row(
    "API key too short (`abc`)",
    401,
    -32004,
    postAs(message(list()), () => ({ "x-outline-api-key": "abc" })),
  ),
  row(
    "API key with spaces and `!`",
    401,
    -32004,
    postAs(message(list()), () => ({ authorization: "Bearer ol_api bad!!key" })),
  ),
  row(
    "`Authorization: Basic` instead of Bearer",
    401,
    -32004,
    postAs(message(list()), () => ({ authorization: "Basic b2w6YXBp" })),
  ),
  {
    input: "API key in the query string only",
    status: 401,
    rpc: -32004,
    run: (ctx) =>
      ctx.send(`${ctx.main}?apiKey=${ctx.good("query")}`, {
        method: "POST",
        headers: JSON_TYPE,
        body: message(list()),
      }),
  },
  row(
    "random key the upstream rejects",
    401,
    -32004,
    postAs(message(list()), () => ({ "x-outline-api-key": `ol_api_random_${randomUUID()}` })),
  ),
  row("key whose verification fails upstream (500)", 503, -32003, postAs(message(list()), keyed("authdown"))),
  row(
    "`Content-Type: text/plain`",
    415,
    -32600,
    postAs(message(list()), keyed("ctype", { "content-type": "text/plain" })),
  ),
  {
    input: "no `Content-Type`",
    status: 415,
    rpc: -32600,
    run: (ctx) =>
      ctx.send(ctx.main, {
        method: "POST",
        headers: { "x-outline-api-key": ctx.good("noctype") },
        body: message(list()),
      }),
  },
  { input: "body is not JSON", status: 400, rpc: -32700, run: postAs("{not json", keyed("parse")) },
  { input: "empty body", status: 400, rpc: -32700, run: postAs("", keyed("empty")) },
  { input: "JSON number `42`", status: 400, rpc: -32600, run: postAs("42", keyed("number")) },
  { input: "empty batch `[]`", status: 400, rpc: -32600, run: postAs("[]", keyed("emptybatch")) },
  row("message without `jsonrpc`", 400, -32600, postAs(message({ id: 1, method: "tools/list" }), keyed("nojsonrpc"))),
  row('`jsonrpc: "1.0"`', 400, -32600, postAs(message({ jsonrpc: "1.0", id: 1, method: "x" }), keyed("v1"))),
  row(
    "batch of 33 messages (MAX_BATCH 32)",
    400,
    -32600,
    postAs(message(Array.from({ length: 33 }, (_, i) => list(i))), keyed("batch33")),
  ),
  row(
    "batch of 1,000 messages",
    400,
    -32600,
    postAs(message(Array.from({ length: 1000 }, (_, i) => list(i))), keyed("batch1000")),
  ),
  row(
    "`initialize` batched with another request",
    400,
    -32600,
    postAs(message([INITIALIZE, list(2)]), keyed("initbatch")),
  ),
  {
    input: "`initialize` with 1 MiB of params",
    status: 413,
    rpc: -32600,
    run: postAs(
      message({
        ...INITIALIZE,
        params: { ...INITIALIZE.params, clientInfo: { name: "x".repeat(1 << 20), version: "1" } },
      }),
      keyed("bigparams"),
    ),
  },
  row(
    "5 MiB body (MAX_BODY_BYTES 4 MiB)",
    413,
    -32600,
    postAs(message({ ...list(), pad: "x".repeat(5 << 20) }), keyed("bigbody")),
  ),
  row("`PUT /mcp`", 405, -32600, (ctx) =>
    ctx.send(ctx.main, { method: "PUT", headers: keyed("put")(ctx), body: "{}" }),
  ),
  row("`PATCH /mcp`", 405, -32600, (ctx) =>
    ctx.send(ctx.main, { method: "PATCH", headers: keyed("patch")(ctx), body: "{}" }),
  ),
  row(
    "`Origin: https://evil.example`",
    403,
    -32600,
    postAs(message(list()), keyed("evil", { origin: "https://evil.example" })),
  ),
  row("`Origin: null` (sandboxed page)", 403, -32600, postAs(message(list()), keyed("nullorigin", { origin: "null" }))),
  row(
    "made-up `Mcp-Session-Id`",
    404,
    -32001,
    postAs(message(list()), keyed("fakesession", { "mcp-session-id": "abc" })),
  ),
  {
    input: "another user's session id",
    status: 404,
    rpc: -32001,
    run: async (ctx) =>
      postAs(
        message(list()),
        keyed("thief", { "mcp-session-id": await ctx.session(ctx.main, ctx.good("victim")) }),
      )(ctx),
  },
  {
    input: "session id with a flipped signature byte",
    status: 404,
    rpc: -32001,
    run: async (ctx) => {
      const apiKey = ctx.good("tamper");
      const id = await ctx.session(ctx.main, apiKey);
      const forged = `${id.slice(0, -1)}${id.endsWith("A") ? "B" : "A"}`;
      return postAs(message(list()), () => ({ "x-outline-api-key": apiKey, "mcp-session-id": forged }))(ctx);
    },
  },
  row("`DELETE /mcp` without a session id", 400, -32600, (ctx) =>
    ctx.send(ctx.main, { method: "DELETE", headers: keyed("delete")(ctx) }),
  ),
  {
    input: "`DELETE` of an already ended session",
    status: 404,
    rpc: -32001,
    run: async (ctx) => {
      const apiKey = ctx.good("twice");
      const headers = { "x-outline-api-key": apiKey, "mcp-session-id": await ctx.session(ctx.main, apiKey) };
      await ctx.send(ctx.main, { method: "DELETE", headers });
      return ctx.send(ctx.main, { method: "DELETE", headers });
    },
  },
  row("`GET /mcp` without a session id", 405, -32000, (ctx) =>
    ctx.send(ctx.main, { headers: { accept: "text/event-stream", ...keyed("get")(ctx) } }),
  ),
  row("OAuth discovery `/.well-known/oauth-authorization-server`", 404, -32600, (ctx) =>
    ctx.send(ctx.main.replace("/mcp", "/.well-known/oauth-authorization-server"), {}),
  ),
  row("OAuth dynamic registration `POST /register`", 404, -32600, (ctx) =>
    ctx.send(ctx.main.replace("/mcp", "/register"), { method: "POST", body: "{}" }),
  ),
  row("unknown path `/admin`", 404, -32600, (ctx) => ctx.send(ctx.main.replace("/mcp", "/admin"), {})),
  row("server fails to start for this key", 502, -32003, postAs(message(list()), keyed("failstart"))),
  {
    input: "2nd user's server when MAX_BACKENDS is 1",
    queue: "tight",
    status: 503,
    rpc: -32003,
    run: async (ctx) => {
      await postAs(message(list()), keyed("slot1"), "tight")(ctx);
      return postAs(message(list()), keyed("slot2"), "tight")(ctx);
    },
  },
  {
    input: "3rd request of one key in a minute (RATE_LIMIT_PER_MINUTE 2)",
    queue: "tight",
    status: 429,
    rpc: -32005,
    run: async (ctx) => {
      const headers = { "x-outline-api-key": ctx.good("ratelimit") };
      const send = postAs(message(list()), () => headers, "tight");
      await send(ctx);
      await send(ctx);
      return send(ctx);
    },
  },
  {
    input: "4th new key from one IP, spoofing X-Forwarded-For (VERIFY_PER_IP_PER_MINUTE 3, TRUST_PROXY off)",
    queue: "tight",
    status: 429,
    rpc: -32005,
    run: async (ctx) => {
      let last: Response | undefined;
      for (let i = 0; i < 2; i++)
        last = await postAs(
          message(list()),
          () => ({ "x-outline-api-key": `ol_api_spoof${i}_${randomUUID()}`, "x-forwarded-for": `10.0.0.${i}` }),
          "tight",
        )(ctx);
      return last as Response;
    },
  },
  row("server never answers (UPSTREAM_TIMEOUT_MS 3000)", 504, -32000, postAs(message(list()), keyed("hang"))),
  row(
    "server answers 100 KB on the pooled path (MAX_UPSTREAM_BODY_BYTES 65536)",
    502,
    -32000,
    postAs(message(list()), keyed("flood")),
  ),
  row("any request while Redis is unreachable", 503, -32003, postAs(message(list()), keyed("noredis"), "noRedis")),
];

import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import type { Context } from "hono";
import type { GatewayEnv } from "../env.js";
import { webHeaders } from "../forward/headers.js";
import type { Answer } from "../forward/reply.js";
import { AnswerBody } from "../forward/web-body.js";

/**
 * Sends the broker's answer. A streamed body is written straight to Node's response (no web
 * `Response`, no web stream: each cost a few objects and promise turns per chunk); a string,
 * nothing, or a web stream (ids restored in an event stream) goes through hono as a `Response`.
 */
export function sendAnswer(c: Context<GatewayEnv>, answer: Answer): Response {
  if (!(answer.body instanceof AnswerBody)) {
    return new Response(answer.body, { status: answer.status, headers: webHeaders(answer.headers) });
  }
  const out = c.env.outgoing;
  out.writeHead(answer.status, answer.headers);
  void answer.body.pipeTo(out);
  return RESPONSE_ALREADY_SENT;
}

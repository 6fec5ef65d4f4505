import type { SessionStore } from "@mcp-broker/session-store";
import type { Logger } from "pino";
import type { GatewayConfig } from "../config.js";
import type { User } from "../env.js";
import { GatewayError } from "../errors.js";
import type { JsonRpcMessage } from "../rpc-ids.js";
import type { Touches } from "../sessions/touches.js";
import type { UpstreamSessions } from "../upstream-sessions.js";
import { AnswerTracker } from "./answer-tracker.js";
import type { ClientGone } from "./client-request.js";
import { toolHintsOf } from "./failures.js";
import type { Forward, Forwarded, Forwarder, ForwardStart } from "./forwarder.js";
import type { HeaderPolicy } from "./headers.js";
import { type Answer, type ReplyOptions, reply } from "./reply.js";

/** The ids of a POST's requests (notifications and responses have none to answer). */
export const requestIds = (messages: readonly JsonRpcMessage[]) =>
  messages.filter((m) => typeof m.method === "string" && "id" in m).map((m) => m.id);

/** What a POST's exchange needs of the request the route read. */
export interface ExchangeRequest {
  messages: JsonRpcMessage[];
  batch: boolean;
  gone: ClientGone;
}

export interface PostExchangeDeps {
  config: Pick<GatewayConfig, "CONTAINER_IDLE_TTL_SECONDS" | "MAX_UPSTREAM_BODY_BYTES">;
  store: SessionStore;
  forwarder: Forwarder;
  upstream: UpstreamSessions;
  headers: HeaderPolicy;
  touches: Touches;
}

/**
 * What every POST does around its trip upstream, whichever session the broker chose for it
 * (docs/architecture.md#request-flow): watches the answer (which requests it answered, the
 * tools a `tools/list` lists), tells the server to stop work a departed client left, answers a
 * call not repeated per request, and turns the server's answer into the client's, keeping the
 * route warm while its event stream is open.
 */
export class PostExchange {
  readonly #touchEveryMs: number;

  constructor(private readonly deps: PostExchangeDeps) {
    this.#touchEveryMs = Math.min(60_000, (deps.config.CONTAINER_IDLE_TTL_SECONDS * 1000) / 3);
  }

  /**
   * Watches a POST sent with `upstreamIds`: the tracker for its answer, and, on client
   * disconnect, `notifications/cancelled` for those ids on the session that `sent` names.
   */
  watch(user: User, log: Logger, request: ExchangeRequest, upstreamIds: unknown[]) {
    const tracker = this.#tracker(user, log, request.messages, upstreamIds);
    let forwarded: Forwarded | undefined;
    this.#cancelOnAbort(user, log, request.gone, upstreamIds, () => forwarded);
    return {
      tracker,
      sent: (answer: Forwarded) => {
        forwarded = answer;
      },
    };
  }

  /** Forwards a POST; a call not repeated is answered per request, with the client's own ids. */
  async send(user: User, log: Logger, request: ExchangeRequest, forward: Forward, start: ForwardStart) {
    try {
      return await this.deps.forwarder.forward(user, log, forward, start);
    } catch (error) {
      if (error instanceof GatewayError && error.code === "NOT_REPEATED") {
        error.replyTo = { ids: requestIds(request.messages), batch: request.batch };
      }
      throw error;
    }
  }

  /** A POST's answer; an event stream (tool work in progress) keeps the route warm while open. */
  reply(
    user: User,
    log: Logger,
    forwarded: Forwarded,
    options: Pick<ReplyOptions, "sessionId" | "ids" | "tracker"> = {},
  ): Promise<Answer> {
    const keepWarm = {
      everyMs: this.#touchEveryMs,
      tick: () => this.deps.touches.note(user.id, forwarded.session?.id),
    };
    const maxBodyBytes = this.deps.config.MAX_UPSTREAM_BODY_BYTES;
    return reply(forwarded, {
      ...options,
      headers: this.deps.headers,
      log,
      keepWarm,
      resume: forwarded.resume,
      maxBodyBytes,
    });
  }

  /**
   * Watches an answer: which requests it answered (a broken stream is judged by what is left),
   * and the tools a `tools/list` answer lists, whose annotations say what is safe to repeat.
   */
  #tracker(user: User, log: Logger, messages: readonly JsonRpcMessage[], upstreamIds: unknown[]) {
    const listsTools = messages.some((m) => m.method === "tools/list");
    const onMessage = (message: Record<string, unknown>) => {
      const hints = toolHintsOf(message);
      if (!hints) return;
      this.deps.store
        .recordToolHints(user.id, hints)
        .catch((error: Error) => log.warn({ err: error.message }, "could not record tool annotations"));
    };
    return new AnswerTracker(upstreamIds, listsTools ? onMessage : undefined);
  }

  /** On client disconnect, tell the server to stop working on the requests it was sent. */
  #cancelOnAbort(
    user: User,
    log: Logger,
    gone: ClientGone,
    upstreamIds: unknown[],
    answered: () => Forwarded | undefined,
  ): void {
    if (upstreamIds.length === 0) return;
    gone.once("abort", () => {
      const done = answered();
      if (done?.session) this.deps.upstream.cancel(user, log, done.route, done.session, upstreamIds);
    });
  }
}

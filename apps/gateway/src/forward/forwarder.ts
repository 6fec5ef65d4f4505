import { inClientSpan } from "@mcp-broker/service-runtime";
import type { BrokerSession, Route, SessionStore } from "@mcp-broker/session-store";
import type { Logger } from "pino";
import type { Dispatcher } from "undici";
import { type Backends, usable } from "../backends.js";
import type { User } from "../env.js";
import { GatewayError, toGatewayError } from "../errors.js";
import type { Metrics } from "../metrics.js";
import { freshBudget, type RecoveryPlan, withRecovery } from "../recovery.js";
import type { JsonRpcMessage } from "../rpc-ids.js";
import type { ClientSessionRef } from "../sessions/client-sessions.js";
import type { UpstreamSessions } from "../upstream-sessions.js";
import type { AnswerTracker } from "./answer-tracker.js";
import { continuation, errorEvents } from "./continuation.js";
import { calledTools, classifyAnswer, mayBeSessionGone, safeToRepeat } from "./failures.js";
import { callUpstream, readBodyCapped, type UpstreamAnswer, type UpstreamRequest } from "./upstream-call.js";
import type { BodySource } from "./web-body.js";

export type Forward = Omit<UpstreamRequest, "endpoint">;

/** Where a request starts, and what its recoveries need to know about it. */
export interface ForwardStart {
  session: BrokerSession | null;
  route?: Route | null | undefined;
  /** The client's own session: what a revival of it replays. */
  client?: ClientSessionRef | undefined;
  /** What the POST sends, for the replay rule; none for a GET or initialize. */
  messages?: readonly JsonRpcMessage[] | undefined;
  /** Watches the answer: which requests it answered before a break. */
  tracker?: AnswerTracker | undefined;
  /** The request's MCP-Protocol-Version, for a revival with the broker's own params. */
  protocolVersion?: string | undefined;
  /** Session and route came from this replica's cache (sessions/session-cache.ts), not from Redis. */
  fromCache?: boolean | undefined;
}

export interface Forwarded extends UpstreamAnswer {
  route: Route;
  session: BrokerSession | null;
  /** What the answer's event stream goes on with when it breaks before answering every request. */
  resume: (error: Error) => Promise<BodySource | null>;
}

export interface ForwarderDeps {
  store: SessionStore;
  backends: Backends;
  upstream: UpstreamSessions;
  dispatcher: Dispatcher;
  metrics: Metrics;
}

/**
 * Sends one request upstream for a session (none for initialize and stateless requests),
 * recovering a dead server or a vanished upstream session as forward/failures.ts says, before
 * the answer's headers and, for an event stream, after them (docs/architecture.md#recovery-and-replay).
 */
export class Forwarder {
  constructor(private readonly deps: ForwarderDeps) {}

  async forward(
    user: User,
    log: Logger,
    forward: Forward,
    start: ForwardStart,
    options: { listenOnly?: boolean } = {},
  ): Promise<Forwarded> {
    const listenOnly = options.listenOnly ?? false;
    const route = usable(start.route) ? start.route : await this.#firstRoute(user, log, listenOnly);
    const plan = this.#plan(user, log, forward, start, listenOnly);
    const budget = freshBudget();
    const first = await withRecovery(this.deps.metrics, plan, { route, session: start.session }, { budget });
    let current = first.attempt;
    const resume = async (error: Error): Promise<BodySource | null> => {
      const unanswered = start.tracker?.unanswered() ?? [];
      if (unanswered.length === 0 || plan.clientGone?.()) return null;
      log.warn({ err: error.message }, "upstream event stream broke before answering");
      try {
        const again = await withRecovery(this.deps.metrics, plan, current, { budget, broken: error });
        current = again.attempt;
        const status = new GatewayError("UPSTREAM_FAILED", `status ${again.result.status}`);
        return await continuation(again.result, unanswered, status, forward.maxBodyBytes);
      } catch (failure) {
        return errorEvents(unanswered, toGatewayError(failure));
      }
    };
    return { ...first.result, route: first.attempt.route, session: first.attempt.session, resume };
  }

  #plan(
    user: User,
    log: Logger,
    forward: Forward,
    start: ForwardStart,
    listenOnly: boolean,
  ): RecoveryPlan<Dispatcher.ResponseData, UpstreamAnswer> {
    const { backends, upstream, store } = this.deps;
    return {
      log,
      send: ({ route, session }) => this.#call(forward, route, session),
      settle: async (response, { session }) => {
        const answer: UpstreamAnswer = { status: response.statusCode, headers: response.headers, body: response.body };
        if (!session || !mayBeSessionGone(answer.status)) return { result: answer, failure: null };
        const text = await readBodyCapped(response.body, forward.maxBodyBytes);
        return { result: { ...answer, body: text }, failure: classifyAnswer(answer.status, text) };
      },
      isAlive: (candidate) => backends.isAlive(candidate),
      replaceServer: listenOnly ? undefined : (stale) => backends.ensure(user, log, stale),
      reviveSession: async ({ session, route }) =>
        upstream.revive(
          user,
          log,
          {
            id: (session as BrokerSession).id,
            essentials: start.client?.token.essentials ?? null,
            expiresAt: start.client?.expiresAt,
            seenUpstream: (session as BrokerSession).upstreamSessionId,
            cause: "upstream-restart",
            protocolVersion: start.protocolVersion,
          },
          // A cached route may be stale: a new upstream session is opened only where Redis says
          // the user's server is now, never on a server the cache remembered.
          start.fromCache ? await this.#firstRoute(user, log, listenOnly) : route,
          !listenOnly,
        ),
      safeToRepeat: async () => {
        // Part of the answer already reached the client: the whole cannot be sent again.
        if (start.tracker?.answeredAny) return false;
        const messages = start.messages ?? [];
        const tools = calledTools(messages);
        return safeToRepeat(messages, tools.length > 0 ? await store.safeTools(user.id, tools) : new Set());
      },
      clientGone: () => forward.signal?.left === true,
    };
  }

  async #firstRoute(user: User, log: Logger, listenOnly: boolean): Promise<Route> {
    if (!listenOnly) return this.deps.backends.ensure(user, log);
    const running = await this.deps.backends.running(user);
    if (!running) throw new GatewayError("NO_STREAM");
    return running;
  }

  async #call(forward: Forward, route: Route, session: BrokerSession | null): Promise<Dispatcher.ResponseData> {
    const headers = session ? { ...forward.headers, "mcp-session-id": session.upstreamSessionId } : forward.headers;
    const started = performance.now();
    // A client span until the answer's body closes; its W3C `traceparent` replaces the client's,
    // so the MCP server's own spans join this trace (docs/architecture.md#tracing).
    const { method } = forward;
    const response = await inClientSpan(`${method} upstream`, { method, url: route.endpoint, headers }, (sent) =>
      callUpstream(this.deps.dispatcher, { ...forward, headers: sent, endpoint: route.endpoint }),
    );
    this.deps.metrics.upstreamDuration.observe({ method: forward.method }, (performance.now() - started) / 1000);
    return response;
  }
}

import type { IncomingHttpHeaders } from "node:http";
import type { ContainerDriver } from "@mcp-broker/container-manager";
import type { BrokerSession, Route, SessionStore } from "@mcp-broker/session-store";
import type { Logger } from "pino";
import type { Dispatcher } from "undici";
import { Backends, usable } from "./backends.js";
import type { GatewayConfig } from "./config.js";
import type { User } from "./env.js";
import { GatewayError } from "./errors.js";
import type { ClientGone } from "./forward/client-request.js";
import { classifyAnswer, mayBeSessionGone } from "./forward/failures.js";
import { type HeaderPolicy, headerPolicy, headerValue, isEventStream } from "./forward/headers.js";
import { type Answer, type ReplyOptions, reply } from "./forward/reply.js";
import { callUpstream, type UpstreamAnswer, type UpstreamRequest } from "./forward/upstream-call.js";
import type { Metrics } from "./metrics.js";
import { withRecovery } from "./recovery.js";
import { IdRewriter, type JsonRpcMessage } from "./rpc-ids.js";
import { UpstreamSessions } from "./upstream-sessions.js";

export interface BrokerDeps {
  config: GatewayConfig;
  store: SessionStore;
  driver: ContainerDriver;
  dispatcher: Dispatcher;
  metrics: Metrics;
  /** Distinguishes this replica's minted request ids from every other replica's. */
  instanceId: string;
}

/** A POST /mcp the route has read and checked. */
export interface PostRequest {
  messages: JsonRpcMessage[];
  batch: boolean;
  /** The body as the client sent it: forwarded as is unless ids must be rewritten. */
  text: string;
  headers: IncomingHttpHeaders;
  clientSessionId: string | undefined;
  protocolVersion: string | undefined;
  /** MCP 2026-07-28's `Mcp-Method` header: present only in that session-less revision. */
  mcpMethod: string | undefined;
  gone: ClientGone;
}

/** A GET /mcp: the client asks for its session's server-to-client stream. */
export interface ListenRequest {
  headers: IncomingHttpHeaders;
  clientSessionId: string | undefined;
  gone: ClientGone;
}

type Forward = Omit<UpstreamRequest, "endpoint">;
interface Forwarded extends UpstreamAnswer {
  route: Route;
  session: BrokerSession | null;
}

const requestIds = (messages: readonly JsonRpcMessage[]) =>
  messages.filter((m) => typeof m.method === "string" && "id" in m).map((m) => m.id);

/**
 * Owns a request from the moment the route has read it (docs/architecture.md#request-flow):
 * which session serves it, which server, the upstream call and its recovery, id rewriting,
 * and cancelling work a departed client left behind. Answers with what the route sends.
 */
export class Broker {
  readonly #ids: IdRewriter;
  readonly #backends: Backends;
  readonly #sessions: UpstreamSessions;
  readonly #headers: HeaderPolicy;
  readonly #touchEveryMs: number;

  constructor(private readonly deps: BrokerDeps) {
    this.#ids = new IdRewriter(`mcpb-${deps.instanceId}`);
    this.#backends = new Backends(deps);
    this.#sessions = new UpstreamSessions({ ...deps, backends: this.#backends });
    this.#headers = headerPolicy(deps.config.API_KEY_HEADER);
    this.#touchEveryMs = Math.min(60_000, (deps.config.CONTAINER_IDLE_TTL_SECONDS * 1000) / 3);
  }

  /** POST: one of four kinds of session, by what the client sent (docs/architecture.md#sessions). */
  async post(user: User, log: Logger, request: PostRequest): Promise<Answer> {
    const timeout = this.deps.config.UPSTREAM_TIMEOUT_MS;
    const forward: Forward = {
      method: "POST",
      headers: this.#headers.toUpstream(request.headers, user.key),
      body: request.text,
      signal: request.gone,
      headersTimeoutMs: timeout,
      bodyTimeoutMs: timeout,
    };
    if (request.clientSessionId) return this.#postOnSession(user, log, request, forward, request.clientSessionId);
    const initialize = request.messages.find((m) => m.method === "initialize");
    if (initialize) return this.#initialize(user, log, request, forward, initialize);
    if (request.mcpMethod) {
      // MCP 2026-07-28 has no sessions: pass through untouched, so a server that answers 400
      // makes the client fall back to initialize, as that revision specifies.
      this.#touch(user, log);
      return this.#reply(user, log, await this.#forward(user, log, forward, { session: null }));
    }
    return this.#postPooled(user, log, request, forward);
  }

  /** GET: the session's server-to-client stream, from a server that is already running. */
  async listen(user: User, log: Logger, request: ListenRequest): Promise<Answer> {
    if (!request.clientSessionId) {
      throw new GatewayError("NO_STREAM", "No server-to-client stream without an Mcp-Session-Id");
    }
    const { session, route } = await this.deps.store.useSession(user.id, request.clientSessionId);
    if (!session) throw new GatewayError("SESSION_NOT_FOUND");
    const forward: Forward = {
      method: "GET",
      headers: this.#headers.toUpstream(request.headers, user.key),
      signal: request.gone,
      headersTimeoutMs: this.deps.config.UPSTREAM_TIMEOUT_MS,
      bodyTimeoutMs: 0, // a GET stream may stay quiet for hours
    };
    // A GET stream only listens: it must not start (or keep alive) a server the reaper
    // stopped as idle. MCP lets a server answer 405 when it offers no stream.
    const forwarded = await this.#forward(user, log, forward, { session, route }, { listenOnly: true });
    if (forwarded.status !== 200 || !isEventStream(forwarded.headers)) {
      if (typeof forwarded.body !== "string") await forwarded.body.dump();
      throw new GatewayError(
        "NO_STREAM",
        `The MCP server offers no stream for this session (status ${forwarded.status})`,
      );
    }
    return reply(forwarded, { headers: this.#headers, log });
  }

  /** DELETE: ends the client's session, upstream and in Redis. */
  async end(user: User, log: Logger, clientSessionId: string | undefined): Promise<void> {
    if (!clientSessionId) throw new GatewayError("SESSION_ID_REQUIRED");
    const session = await this.deps.store.getSession(user.id, clientSessionId);
    if (!session) throw new GatewayError("SESSION_NOT_FOUND");
    await this.#sessions.end(user, log, session);
    log.info({ session: session.id.slice(0, 8) }, "session ended by client");
  }

  /** The client's own session: one round trip reads it and the route and touches both. */
  async #postOnSession(user: User, log: Logger, request: PostRequest, forward: Forward, id: string) {
    const { session, route } = await this.deps.store.useSession(user.id, id);
    if (!session) throw new GatewayError("SESSION_NOT_FOUND");
    let forwarded: Forwarded | undefined;
    this.#cancelOnAbort(user, log, request.gone, requestIds(request.messages), () => forwarded);
    forwarded = await this.#forward(user, log, forward, { session, route });
    return this.#reply(user, log, forwarded);
  }

  /** A client's initialize: forwarded, and the upstream session recorded under a broker id. */
  async #initialize(user: User, log: Logger, request: PostRequest, forward: Forward, message: JsonRpcMessage) {
    if (request.messages.length !== 1) throw new GatewayError("INITIALIZE_NOT_ALONE");
    const forwarded = await this.#forward(user, log, forward, { session: null });
    const upstreamSessionId = headerValue(forwarded.headers, "mcp-session-id");
    if (forwarded.status !== 200 || !upstreamSessionId) return this.#reply(user, log, forwarded);
    const params = (message.params ?? {}) as { protocolVersion?: string };
    const session = await this.deps.store.createSession({
      userId: user.id,
      upstreamSessionId,
      initializeParams: params,
      protocolVersion: params.protocolVersion ?? "",
      pooled: true,
    });
    log.info({ session: session.id.slice(0, 8) }, "session initialized");
    return this.#reply(user, log, forwarded, { sessionId: session.id });
  }

  /**
   * A client that never initializes (older Claude Code, curl): the user's pooled session,
   * shared by every such client, so request ids are rewritten to unique upstream ids. One
   * round trip when the pool exists: pooled session, route, and the touch of both.
   */
  async #postPooled(user: User, log: Logger, request: PostRequest, forward: Forward) {
    const used = await this.deps.store.usePooledSession(user.id);
    const session = used.session ?? (await this.#sessions.openPooled(user, log, request.protocolVersion));
    const rewritten = this.#ids.rewrite(request.messages);
    let forwarded: Forwarded | undefined;
    this.#cancelOnAbort(user, log, request.gone, [...rewritten.ids.keys()], () => forwarded);
    const body = JSON.stringify(request.batch ? rewritten.messages : rewritten.messages[0]);
    // A pool opened just now may have replaced the server the route read before named.
    const route = used.session ? used.route : null;
    forwarded = await this.#forward(user, log, { ...forward, body }, { session, route });
    return this.#reply(user, log, forwarded, { ids: rewritten.ids });
  }

  /**
   * Sends one request upstream for `session` (none for initialize and stateless requests),
   * recovering a dead server or a vanished upstream session as forward/failures.ts says.
   */
  async #forward(
    user: User,
    log: Logger,
    forward: Forward,
    start: { session: BrokerSession | null; route?: Route | null },
    options: { listenOnly?: boolean } = {},
  ): Promise<Forwarded> {
    const listenOnly = options.listenOnly ?? false;
    const route = usable(start.route) ? start.route : await this.#firstRoute(user, log, listenOnly);
    const { result, attempt } = await withRecovery(
      this.deps.metrics,
      {
        log,
        send: ({ route, session }) => this.#call(forward, route, session),
        settle: async (response: Dispatcher.ResponseData, { session }) => {
          const answer: UpstreamAnswer = {
            status: response.statusCode,
            headers: response.headers,
            body: response.body,
          };
          if (!session || !mayBeSessionGone(answer.status)) return { result: answer, failure: null };
          const text = await response.body.text();
          return { result: { ...answer, body: text }, failure: classifyAnswer(answer.status, text) };
        },
        isAlive: (candidate) => this.#backends.isAlive(candidate),
        replaceServer: listenOnly ? undefined : (stale) => this.#backends.ensure(user, log, stale),
        reviveSession: ({ session, route }) => this.#sessions.revive(user, log, session as BrokerSession, route),
        clientGone: () => forward.signal?.aborted === true,
      },
      { route, session: start.session },
    );
    return { ...result, route: attempt.route, session: attempt.session };
  }

  async #firstRoute(user: User, log: Logger, listenOnly: boolean): Promise<Route> {
    if (!listenOnly) return this.#backends.ensure(user, log);
    const running = await this.#backends.running(user);
    if (!running) throw new GatewayError("NO_STREAM");
    return running;
  }

  async #call(forward: Forward, route: Route, session: BrokerSession | null): Promise<Dispatcher.ResponseData> {
    const headers = session ? { ...forward.headers, "mcp-session-id": session.upstreamSessionId } : forward.headers;
    const started = performance.now();
    const response = await callUpstream(this.deps.dispatcher, { ...forward, headers, endpoint: route.endpoint });
    this.deps.metrics.upstreamDuration.observe({ method: forward.method }, (performance.now() - started) / 1000);
    return response;
  }

  /** A POST's answer; an event stream (tool work in progress) keeps the route warm while open. */
  #reply(user: User, log: Logger, forwarded: Forwarded, options: Pick<ReplyOptions, "sessionId" | "ids"> = {}) {
    const keepWarm = { everyMs: this.#touchEveryMs, tick: () => this.#touch(user, log, forwarded.session) };
    return reply(forwarded, { ...options, headers: this.#headers, log, keepWarm });
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
      if (done?.session) this.#sessions.cancel(user, log, done.route, done.session, upstreamIds);
    });
  }

  #touch(user: User, log: Logger, session?: BrokerSession | null): void {
    this.deps.store
      .touch(user.id, session?.id)
      .catch((error: Error) => log.warn({ err: error.message }, "touch failed"));
  }
}

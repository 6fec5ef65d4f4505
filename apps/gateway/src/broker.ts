import { randomUUID } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import type { ContainerDriver } from "@mcp-broker/container-manager";
import type { BrokerSession, SessionStore } from "@mcp-broker/session-store";
import type { Logger } from "pino";
import type { Dispatcher } from "undici";
import { Backends } from "./backends.js";
import type { GatewayConfig } from "./config.js";
import type { User } from "./env.js";
import { GatewayError } from "./errors.js";
import type { ClientGone } from "./forward/client-request.js";
import { type Forward, type Forwarded, Forwarder, type ForwardStart } from "./forward/forwarder.js";
import { type HeaderPolicy, headerPolicy, headerValue, isEventStream } from "./forward/headers.js";
import { PostExchange, requestIds } from "./forward/post-exchange.js";
import { type Answer, reply } from "./forward/reply.js";
import type { Metrics } from "./metrics.js";
import { MODERN_PROTOCOL_VERSION } from "./protocol-eras.js";
import { SessionRelay } from "./relay/session-relay.js";
import { IdRewriter, type JsonRpcMessage } from "./rpc-ids.js";
import { ClientSessions } from "./sessions/client-sessions.js";
import { discoverAnswer } from "./sessions/discover.js";
import { type ModernBridge, PooledSessions } from "./sessions/pooled-session.js";
import { Touches } from "./sessions/touches.js";
import { UpstreamSessions } from "./upstream-sessions.js";
import type { SpareRefill } from "./warm-pool.js";

export interface BrokerDeps {
  config: GatewayConfig;
  store: SessionStore;
  driver: ContainerDriver;
  dispatcher: Dispatcher;
  metrics: Metrics;
  /** Distinguishes this replica's minted request ids (and relay leases) from every other replica's. */
  instanceId: string;
  logger: Logger;
  /** The warm pool's refill, for Backends (warm-pool.ts). */
  spares?: SpareRefill;
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
  lastEventId: string | undefined;
  gone: ClientGone;
}

/**
 * Owns a request from the moment the route has read it (docs/architecture.md#request-flow):
 * which session serves it, which server, the upstream call and its recovery, id rewriting,
 * and cancelling work a departed client left behind (forward/post-exchange.ts does what every
 * POST does around its trip upstream). Answers with what the route sends.
 */
export class Broker {
  readonly #ids: IdRewriter;
  readonly #backends: Backends;
  readonly #upstream: UpstreamSessions;
  readonly #pooled: PooledSessions;
  readonly #clients: ClientSessions;
  readonly #forwarder: Forwarder;
  readonly #headers: HeaderPolicy;
  readonly #exchange: PostExchange;
  readonly #relay: SessionRelay;
  readonly #touches: Touches;

  constructor(private readonly deps: BrokerDeps) {
    this.#ids = new IdRewriter(`mcpb-${deps.instanceId}`);
    this.#backends = new Backends(deps);
    this.#upstream = new UpstreamSessions({ ...deps, backends: this.#backends });
    this.#pooled = new PooledSessions({ ...deps, backends: this.#backends, upstream: this.#upstream });
    this.#touches = new Touches(deps.store, deps.logger, deps.config.TOUCH_INTERVAL_MS);
    this.#clients = new ClientSessions({
      ...deps,
      backends: this.#backends,
      upstream: this.#upstream,
      touches: this.#touches,
    });
    this.#forwarder = new Forwarder({ ...deps, backends: this.#backends, upstream: this.#upstream });
    this.#headers = headerPolicy(deps.config.API_KEY_HEADER);
    this.#exchange = new PostExchange({
      ...deps,
      forwarder: this.#forwarder,
      upstream: this.#upstream,
      headers: this.#headers,
      touches: this.#touches,
    });
    this.#relay = new SessionRelay({ ...deps, backends: this.#backends, owner: randomUUID() });
  }

  /** Shutdown: held upstream streams and open client streams end (docs/architecture.md#server-to-client-streams). */
  closeStreams(): Promise<void> {
    return this.#relay.close();
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
      maxBodyBytes: this.deps.config.MAX_UPSTREAM_BODY_BYTES,
    };
    if (request.clientSessionId) return this.#postOnSession(user, log, request, forward, request.clientSessionId);
    const initialize = request.messages.find((m) => m.method === "initialize");
    if (initialize) return this.#initialize(user, log, forward, request, initialize);
    if (request.mcpMethod) return this.#postModern(user, log, request, forward);
    return this.#postPooled(user, log, request, forward);
  }

  /**
   * MCP 2026-07-28 (no sessions, `Mcp-Method`; headers already checked against the body by the
   * route): to a server of that revision, passed through untouched; to a legacy server, bridged
   * — `server/discover` answered from the server's `initialize` result, every other request run
   * on the user's pooled session as a legacy client's (docs/architecture.md#protocol-eras).
   */
  async #postModern(user: User, log: Logger, request: PostRequest, forward: Forward) {
    const bridge =
      request.protocolVersion === MODERN_PROTOCOL_VERSION
        ? await this.#pooled.modernBridge(user, log, request.protocolVersion)
        : null;
    if (!bridge) {
      // A revision the broker does not bridge, or a server that speaks it: untouched, so a
      // server that answers 400 makes the client fall back to initialize.
      this.#touch(user);
      return this.#exchange.reply(user, log, await this.#forwarder.forward(user, log, forward, { session: null }));
    }
    const message = request.messages[0] as JsonRpcMessage;
    if (message.method === "server/discover") {
      this.#touch(user, bridge.session);
      return discoverAnswer(message.id ?? null, bridge.initializeResult);
    }
    // The legacy server knows the session's version and nothing of the revision's headers.
    const { "mcp-method": _method, "mcp-name": _name, ...headers } = forward.headers;
    headers["mcp-protocol-version"] = bridge.session.protocolVersion;
    return this.#postPooled(user, log, request, { ...forward, headers }, bridge);
  }

  /**
   * GET: the session's server-to-client stream, from a server that is already running, relayed
   * through Redis (docs/architecture.md#server-to-client-streams); a Last-Event-ID of a POST's
   * stream is the server's to replay, so that GET is forwarded.
   */
  async listen(user: User, log: Logger, request: ListenRequest): Promise<Answer> {
    if (!request.clientSessionId) {
      throw new GatewayError("NO_STREAM", "No server-to-client stream without an Mcp-Session-Id");
    }
    const client = this.#clients.verify(user, log, request.clientSessionId);
    // A GET stream only listens: it must not start (or keep alive) a server the reaper
    // stopped as idle. MCP lets a server answer 405 when it offers no stream.
    const { session, route } = await this.#clients.use(user, log, client, { listenOnly: true });
    const relayed = await this.#relay.listen(user, log, session.id, request.lastEventId, request.gone);
    if (relayed) return relayed;
    const forward: Forward = {
      method: "GET",
      headers: this.#headers.toUpstream(request.headers, user.key),
      signal: request.gone,
      headersTimeoutMs: this.deps.config.UPSTREAM_TIMEOUT_MS,
      bodyTimeoutMs: 0, // a GET stream may stay quiet for hours
      maxBodyBytes: this.deps.config.MAX_UPSTREAM_BODY_BYTES,
    };
    const start = { session, route, client };
    const forwarded = await this.#forwarder.forward(user, log, forward, start, { listenOnly: true });
    if (forwarded.status !== 200 || !isEventStream(forwarded.headers)) {
      if (typeof forwarded.body !== "string") await forwarded.body.dump();
      throw new GatewayError(
        "NO_STREAM",
        `The MCP server offers no stream for this session (status ${forwarded.status})`,
      );
    }
    return reply(forwarded, { headers: this.#headers, log });
  }

  /** DELETE: ends the client's session, in Redis (tombstone) and upstream. */
  async end(user: User, log: Logger, clientSessionId: string | undefined): Promise<void> {
    if (!clientSessionId) throw new GatewayError("SESSION_ID_REQUIRED");
    const nonce = await this.#clients.end(user, log, clientSessionId);
    await this.#relay
      .end(user.id, nonce)
      .catch((error: Error) => log.warn({ err: error.message }, "could not drop the session's relayed events"));
  }

  /** Writes the touches not yet written (drain, shutdown) and stops batching them. */
  async close(): Promise<void> {
    await this.#touches.close();
  }

  /** Writes the touches not yet written now (the start of a drain). */
  flushTouches(): Promise<void> {
    return this.#touches.flush();
  }

  /**
   * The client's own session: from this replica's cache when fresh, else one round trip reads
   * it and the route and touches both (docs/architecture.md#hot-path).
   */
  async #postOnSession(user: User, log: Logger, request: PostRequest, forward: Forward, id: string) {
    const client = this.#clients.verify(user, log, id);
    const protocolVersion = request.protocolVersion;
    const { session, route, cached } = await this.#clients.use(user, log, client, { protocolVersion });
    const { tracker, sent } = this.#exchange.watch(user, log, request, requestIds(request.messages));
    const start: ForwardStart = {
      session,
      route,
      client,
      messages: request.messages,
      tracker,
      protocolVersion,
      fromCache: cached,
    };
    let forwarded: Forwarded;
    try {
      forwarded = await this.#exchange.send(user, log, request, forward, start);
    } catch (error) {
      this.#clients.forget(user, client);
      throw error;
    }
    sent(forwarded);
    // A recovery may have replaced the server or the upstream session: the next request uses those.
    if (!cached || forwarded.session !== session || forwarded.route !== route) {
      if (forwarded.session) this.#clients.remember(user, client, forwarded.session, forwarded.route);
    }
    if (forwarded.status < 300 && forwarded.session) {
      await this.#clients.record(user, log, forwarded.session, request.messages);
      const initialized = request.messages.some((m) => m.method === "notifications/initialized");
      await this.#relay.afterPost(user, log, forwarded.session.id, initialized);
    }
    return this.#exchange.reply(user, log, forwarded, { tracker });
  }

  /** A client's initialize: forwarded, and the upstream session recorded under a token of the broker's. */
  async #initialize(user: User, log: Logger, forward: Forward, request: PostRequest, message: JsonRpcMessage) {
    if (request.messages.length !== 1) throw new GatewayError("INITIALIZE_NOT_ALONE");
    const start = { session: null, messages: request.messages };
    const forwarded = await this.#exchange.send(user, log, request, forward, start);
    const upstreamSessionId = headerValue(forwarded.headers, "mcp-session-id");
    if (forwarded.status !== 200 || !upstreamSessionId) return this.#exchange.reply(user, log, forwarded);
    // Never the user's pooled session too: a client's session is its own (docs/architecture.md#sessions).
    const sessionId = await this.#clients.open(user, log, message.params, upstreamSessionId);
    return this.#exchange.reply(user, log, forwarded, { sessionId });
  }

  /**
   * A client that never initializes (older Claude Code, curl): the user's pooled session,
   * shared by every such client, so request ids are rewritten to unique upstream ids. One
   * round trip when the pool exists: pooled session, route, and the touch of both.
   */
  async #postPooled(user: User, log: Logger, request: PostRequest, forward: Forward, pooled?: ModernBridge) {
    // A pool opened just now comes with the route it was opened on, not one read before it.
    const { session, route } = pooled ?? (await this.#pooled.use(user, log, request.protocolVersion));
    const rewritten = this.#ids.rewrite(request.messages);
    const { tracker, sent } = this.#exchange.watch(user, log, request, [...rewritten.ids.keys()]);
    const body = JSON.stringify(request.batch ? rewritten.messages : rewritten.messages[0]);
    const start: ForwardStart = { session, route, messages: request.messages, tracker };
    const forwarded = await this.#exchange.send(user, log, request, { ...forward, body }, start);
    sent(forwarded);
    if (forwarded.status < 300 && forwarded.session) {
      await this.#clients.record(user, log, forwarded.session, request.messages);
    }
    return this.#exchange.reply(user, log, forwarded, { ids: rewritten.ids, tracker });
  }

  /** Batched: written once per TOUCH_INTERVAL_MS per session (sessions/touches.ts). */
  #touch(user: User, session?: BrokerSession | null): void {
    this.#touches.note(user.id, session?.id);
  }
}

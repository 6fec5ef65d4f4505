import type { BrokerSession, Route, SessionStore, StateChange } from "@mcp-broker/session-store";
import type { Logger } from "pino";
import { type Backends, usable } from "../backends.js";
import type { GatewayConfig } from "../config.js";
import type { User } from "../env.js";
import { GatewayError } from "../errors.js";
import type { JsonRpcMessage } from "../rpc-ids.js";
import type { UpstreamSessions } from "../upstream-sessions.js";
import { pickEssentials } from "./essentials.js";
import { SessionCache } from "./session-cache.js";
import { SessionTokens, type VerifiedToken } from "./token.js";
import type { Touches } from "./touches.js";

export interface ClientSessionsDeps {
  config: Pick<
    GatewayConfig,
    "sessionSecrets" | "SESSION_MAX_AGE_SECONDS" | "MAX_SESSIONS_PER_USER" | "SESSION_CACHE_MS"
  >;
  store: SessionStore;
  backends: Backends;
  upstream: UpstreamSessions;
  touches: Touches;
}

/** A client's session ready to forward on; `cached`: read from this replica's cache, not from Redis. */
export interface UsedSession {
  session: BrokerSession;
  route: Route | null;
  cached: boolean;
}

/** What a request on a client's session revives it from, should its upstream session be gone. */
export interface ClientSessionRef {
  token: VerifiedToken;
  expiresAt: number;
}

const protocolVersionOf = (params: unknown): string => {
  const version = (params as { protocolVersion?: unknown } | null)?.protocolVersion;
  return typeof version === "string" ? version.slice(0, 64) : "";
};

/** Requests whose effect on a session a new upstream session must be told again after a revival. */
function stateChange(message: JsonRpcMessage): StateChange | null {
  const params = (message.params ?? {}) as { level?: unknown; uri?: unknown };
  if (message.method === "logging/setLevel" && typeof params.level === "string") {
    return { kind: "level", level: params.level };
  }
  if (message.method === "resources/subscribe" && typeof params.uri === "string") {
    return { kind: "subscribe", uri: params.uri };
  }
  if (message.method === "resources/unsubscribe" && typeof params.uri === "string") {
    return { kind: "unsubscribe", uri: params.uri };
  }
  return null;
}

/**
 * The sessions clients hold (docs/architecture.md#sessions): their ids are signed tokens
 * (`token.ts`), Redis maps a token's nonce to the live upstream session, and a valid token
 * whose mapping is missing gets a new one. Only the client's DELETE (a tombstone) or the
 * token's age ends a session; every refusal is the same 404, so ids cannot be probed.
 */
export class ClientSessions {
  readonly #tokens: SessionTokens;
  readonly #cache: SessionCache;

  constructor(private readonly deps: ClientSessionsDeps) {
    this.#tokens = new SessionTokens({
      secrets: deps.config.sessionSecrets,
      maxAgeSeconds: deps.config.SESSION_MAX_AGE_SECONDS,
    });
    this.#cache = new SessionCache(deps.config.SESSION_CACHE_MS);
  }

  /** The client's session id, checked against the user (tag, binding, age), or the 404 for all refusals. */
  verify(user: User, log: Logger, id: string): ClientSessionRef {
    const token = this.#tokens.verify(id, user.id);
    if (!token.valid) {
      log.info({ reason: token.reason }, "session id refused");
      throw new GatewayError("SESSION_NOT_FOUND");
    }
    return { token, expiresAt: this.#tokens.expiresAt(token.issuedAt) };
  }

  /**
   * The hot path (docs/architecture.md#hot-path): this replica's cached mapping and route when
   * fresh (no Redis at all; the touch is batched), else one Redis round trip that reads the
   * mapping and the route and touches both. Only a missing mapping costs more: the tombstone
   * check, and the revival under the user's lock. A GET reads Redis: it must not listen on a
   * server the reaper stopped.
   */
  async use(
    user: User,
    log: Logger,
    ref: ClientSessionRef,
    options: { listenOnly?: boolean; protocolVersion?: string | undefined } = {},
  ): Promise<UsedSession> {
    const nonce = ref.token.nonce;
    const cached = options.listenOnly ? null : this.#cache.get(user.id, nonce);
    if (cached) {
      this.deps.touches.note(user.id, nonce);
      return { session: cached.session, route: cached.route, cached: true };
    }
    const used = await this.deps.store.useSession(user.id, nonce);
    const found = used.session
      ? { session: used.session, route: used.route }
      : await this.#reviveMissing(user, log, ref, used.route, options);
    return { ...found, cached: false };
  }

  /** What the request was forwarded on in the end (after any recovery): the next one on this replica uses it. */
  remember(user: User, ref: ClientSessionRef, session: BrokerSession, route: Route): void {
    if (usable(route)) this.#cache.set(user.id, ref.token.nonce, { session, route });
  }

  /** Drops the cached entry: the request failed, or the session ended. */
  forget(user: User, ref: ClientSessionRef): void {
    this.#cache.delete(user.id, ref.token.nonce);
  }

  /** A new client session for an upstream session the client's `initialize` opened: its token. */
  async open(user: User, log: Logger, params: unknown, upstreamSessionId: string): Promise<string> {
    const essentials = pickEssentials(params);
    const minted = this.#tokens.mint(user.id, essentials);
    await this.deps.store.createSession({
      id: minted.nonce,
      userId: user.id,
      upstreamSessionId,
      // Kept in Redis only when the token cannot carry them, and then only the fields a revival
      // replays (protocolVersion, capabilities, clientInfo), never the client's whole params.
      initializeParams: minted.carriesEssentials ? null : essentials,
      protocolVersion: essentials?.protocolVersion ?? protocolVersionOf(params),
      expiresAt: this.#tokens.expiresAt(minted.issuedAt),
      maxPerUser: this.deps.config.MAX_SESSIONS_PER_USER,
    });
    log.info({ session: minted.nonce.slice(0, 8) }, "session initialized");
    return minted.token;
  }

  /**
   * The client's DELETE: the mapping (or record) goes, and a tombstone stays until the token
   * would expire anyway, so no replica revives it. An id already ended is not found. Returns
   * the session's id in Redis.
   */
  async end(user: User, log: Logger, id: string): Promise<string> {
    const { token, expiresAt } = this.verify(user, log, id);
    this.#cache.delete(user.id, token.nonce);
    const { ended } = await this.deps.store.lookupSession(user.id, token.nonce);
    if (ended) throw new GatewayError("SESSION_NOT_FOUND");
    await this.deps.upstream.end(user, log, token.nonce, Math.max(1, expiresAt - Date.now()));
    log.info({ session: token.nonce.slice(0, 8) }, "session ended by client");
    return token.nonce;
  }

  /**
   * Records what the forwarded messages set on the session (`logging/setLevel`,
   * `resources/subscribe`, `resources/unsubscribe`), for replay after a revival. Best effort.
   */
  async record(user: User, log: Logger, session: BrokerSession, messages: readonly JsonRpcMessage[]): Promise<void> {
    for (const message of messages) {
      const change = stateChange(message);
      if (!change) continue;
      const recorded = await this.deps.store
        .recordSessionState(user.id, session.id, change)
        .catch((error: Error) => log.warn({ err: error.message }, "could not record session state"));
      if (recorded === false) log.warn({ method: message.method }, "session state not recorded (limit reached)");
    }
  }

  async #reviveMissing(
    user: User,
    log: Logger,
    ref: ClientSessionRef,
    route: Route | null,
    options: { listenOnly?: boolean; protocolVersion?: string | undefined },
  ): Promise<{ session: BrokerSession; route: Route | null }> {
    const { store, backends, upstream } = this.deps;
    const found = await store.lookupSession(user.id, ref.token.nonce);
    if (found.ended) throw new GatewayError("SESSION_NOT_FOUND");
    const ready = usable(route) ? route : options.listenOnly ? await backends.running(user) : null;
    if (found.session) return { session: found.session, route: ready }; // revived meanwhile
    // A GET only listens: it revives the session on a running server, and never starts one.
    if (options.listenOnly && !ready) throw new GatewayError("NO_STREAM");
    const serving = ready ?? (await backends.ensure(user, log));
    const revived = await upstream.revive(
      user,
      log,
      {
        id: ref.token.nonce,
        essentials: ref.token.essentials,
        expiresAt: ref.expiresAt,
        seenUpstream: null,
        cause: found.record?.released ? "idle-released" : "redis-lost",
        protocolVersion: options.protocolVersion,
      },
      serving,
      !options.listenOnly,
    );
    return { session: revived.session as BrokerSession, route: revived.route };
  }
}

import {
  cancelMcpRequest,
  endMcpSession,
  type McpEndpoint,
  openMcpSession,
  requestMcp,
} from "@mcp-broker/container-manager";
import { inSpan } from "@mcp-broker/service-runtime";
import type { BrokerSession, Route, SessionRecord, SessionStore } from "@mcp-broker/session-store";
import type { Logger } from "pino";
import type { Dispatcher } from "undici";
import type { Backends } from "./backends.js";
import type { GatewayConfig } from "./config.js";
import type { User } from "./env.js";
import { GatewayError } from "./errors.js";
import type { Metrics } from "./metrics.js";
import { type Attempt, withRecovery } from "./recovery.js";
import type { InitializeEssentials } from "./sessions/essentials.js";

/** The newest protocol revision the broker speaks when it initializes on a client's behalf. */
export const DEFAULT_PROTOCOL_VERSION = "2025-06-18";

/** The broker's own `initialize` params: the pooled session's, and a revival's when nothing better is known. */
export function brokerInitializeParams(protocolVersion?: string): InitializeEssentials {
  return {
    protocolVersion: protocolVersion ?? DEFAULT_PROTOCOL_VERSION,
    capabilities: {},
    clientInfo: { name: "mcp-session-broker (pooled)", version: "0.1.0" },
  };
}

/** Why a session needed a new upstream session (`mcpb_session_revivals_total{cause}`). */
export type RevivalCause = "redis-lost" | "idle-released" | "upstream-restart";

/** A session to revive, as the request that found it gone knows it. */
export interface RevivalTarget {
  /** The broker session's id: a client's token nonce, or the pooled session's id. */
  id: string;
  /** The `initialize` essentials the client's token carries; null when it carries none. */
  essentials: InitializeEssentials | null;
  /** When the client's token expires (ms); absent for the pooled session, which has no token. */
  expiresAt?: number | undefined;
  /** The upstream id the request used; null when Redis had no mapping. */
  seenUpstream: string | null;
  cause: RevivalCause;
  /** The request's MCP-Protocol-Version, for the broker's defaults. */
  protocolVersion?: string | undefined;
}

export interface UpstreamSessionsDeps {
  config: Pick<GatewayConfig, "API_KEY_HEADER" | "UPSTREAM_TIMEOUT_MS" | "MAX_UPSTREAM_BODY_BYTES">;
  store: SessionStore;
  backends: Backends;
  dispatcher: Dispatcher;
  metrics: Metrics;
}

/**
 * The upstream MCP sessions the broker opens, revives, ends and cancels requests on itself,
 * through container-manager's MCP client (docs/architecture.md#upstream-sessions); the
 * user's pooled session is sessions/pooled-session.ts's.
 */
export class UpstreamSessions {
  constructor(private readonly deps: UpstreamSessionsDeps) {}

  /** The user's server as an MCP client reaches it, with the user's key in the header it reads. */
  endpoint(user: User, route: Route, timeoutMs = Math.min(this.deps.config.UPSTREAM_TIMEOUT_MS, 30_000)): McpEndpoint {
    return {
      url: route.endpoint,
      headers: { [this.deps.config.API_KEY_HEADER]: user.key },
      dispatcher: this.deps.dispatcher,
      timeoutMs,
      maxBodyBytes: this.deps.config.MAX_UPSTREAM_BODY_BYTES,
    };
  }

  /**
   * Gives a session whose upstream session is gone (Redis lost the mapping, the reaper released
   * it, the server forgot it) a new one: `initialize` with the token's essentials (else the
   * stored ones, else the broker's), `notifications/initialized`, the recorded level and
   * subscriptions replayed, and the mapping recorded by compare-and-set. Under the user's lock,
   * so concurrent requests revive it once; the compare-and-set settles a race with a replica
   * whose lock expired. A session the client ended stays ended (404).
   */
  async revive(user: User, log: Logger, target: RevivalTarget, route: Route, mayStartServer = true): Promise<Attempt> {
    const attributes = () => ({ "mcpb.revival.cause": target.cause, "mcpb.session.id_prefix": target.id.slice(0, 8) });
    return inSpan("revive session", () => this.#reviveLocked(user, log, target, route, mayStartServer), { attributes });
  }

  #reviveLocked(
    user: User,
    log: Logger,
    target: RevivalTarget,
    route: Route,
    mayStartServer: boolean,
  ): Promise<Attempt> {
    const { store, backends } = this.deps;
    return store.withUserLock(user.id, backends.lock, async () => {
      const found = await store.lookupSession(user.id, target.id);
      if (found.ended) throw new GatewayError("SESSION_NOT_FOUND");
      const current = found.session;
      if (current && current.upstreamSessionId !== target.seenUpstream) return { session: current, route };
      // The pooled session has no token to revive it from: the next request opens a new pool.
      if (!current && target.expiresAt === undefined) throw new GatewayError("SESSION_NOT_FOUND");
      const params =
        target.essentials ??
        (found.record?.initializeParams as InitializeEssentials | null) ??
        brokerInitializeParams(target.protocolVersion);
      // Stored params are whatever the client sent when they were not well-formed essentials.
      const protocolVersion =
        typeof params.protocolVersion === "string" ? params.protocolVersion : DEFAULT_PROTOCOL_VERSION;
      const opened = await this.open(user, log, params, route, { mayStartServer });
      await this.#replay(user, log, opened.route, opened.upstream, found.record, protocolVersion);
      const outcome = await store.reviveSession(user.id, target.id, {
        expectedUpstream: current?.upstreamSessionId ?? null,
        upstreamSessionId: opened.upstream,
        protocolVersion,
        expiresAt: target.expiresAt,
      });
      if (outcome.outcome !== "revived") await this.endUpstream(user, log, opened.route, opened.upstream);
      if (outcome.outcome === "ended") throw new GatewayError("SESSION_NOT_FOUND");
      if (outcome.outcome === "revived") {
        // A request that saw an upstream id from this replica's cache while Redis no longer maps
        // one: the mapping was released or lost, whatever the server answered.
        const cause =
          current || target.seenUpstream === null
            ? target.cause
            : found.record?.released
              ? "idle-released"
              : "redis-lost";
        this.deps.metrics.revived(cause);
        log.warn({ session: target.id.slice(0, 8), cause }, "session revived on a new upstream session");
      }
      const now = Date.now();
      const session: BrokerSession = current ?? {
        id: target.id,
        userId: user.id,
        upstreamSessionId: "",
        initializeParams: found.record?.initializeParams ?? null,
        protocolVersion,
        createdAt: now,
        lastUsedAt: now,
      };
      return { session: { ...session, upstreamSessionId: outcome.upstreamSessionId }, route: opened.route };
    });
  }

  /**
   * Ends a session: first in Redis (with a tombstone for a client's session, so no replica
   * revives it), then upstream, best effort (a server that is gone has ended it). False when
   * there was nothing to end.
   */
  async end(user: User, log: Logger, sessionId: string, tombstoneTtlMs = 0): Promise<boolean> {
    const deleted = await this.deps.store.deleteSession(user.id, sessionId, tombstoneTtlMs);
    if (deleted?.upstreamSessionId) {
      const route = await this.deps.store.getRoute(user.id);
      if (route?.state === "ready") await this.endUpstream(user, log, route, deleted.upstreamSessionId);
    }
    return deleted !== null;
  }

  /** Best effort: the upstream server frees the session now rather than at its own timeout. */
  async endUpstream(user: User, log: Logger, route: Route, upstreamSessionId: string): Promise<void> {
    const endpoint = this.endpoint(user, route, 10_000);
    await endMcpSession(endpoint, upstreamSessionId).catch((error: Error) =>
      log.warn({ err: error.message }, "upstream DELETE failed; the server ends the session itself"),
    );
  }

  /** Tells the server to stop working on requests whose client went away. */
  cancel(user: User, log: Logger, route: Route, session: BrokerSession, upstreamIds: readonly unknown[]): void {
    const endpoint = this.endpoint(user, route, 10_000);
    for (const id of upstreamIds) {
      cancelMcpRequest(endpoint, session.upstreamSessionId, id, "client disconnected").catch((error: Error) =>
        log.warn({ err: error.message }, "could not send notifications/cancelled upstream"),
      );
    }
  }

  /**
   * `initialize` + `notifications/initialized` on the broker's behalf (a pooled session, a
   * revival), recovered like any request (a dead server is re-created); the caller holds the
   * user's lock.
   */
  async open(
    user: User,
    log: Logger,
    params: InitializeEssentials,
    route: Route,
    options: { mayStartServer: boolean },
  ): Promise<{ upstream: string; route: Route; result: Record<string, unknown> }> {
    const { backends } = this.deps;
    const { result, attempt } = await withRecovery(
      this.deps.metrics,
      {
        log,
        send: (attempt) => openMcpSession(this.endpoint(user, attempt.route), params),
        settle: async (opened: { sessionId: string; result: Record<string, unknown> }) => ({
          result: opened,
          failure: null,
        }),
        isAlive: (candidate) => backends.isAlive(candidate),
        // The lock is held already: take no second turn at it.
        replaceServer: options.mayStartServer ? (stale) => backends.ensureLocked(user, log, stale) : undefined,
      },
      { route, session: null },
    );
    return { upstream: result.sessionId, route: attempt.route, result: result.result };
  }

  /** What the client set on its old session, told to the new one (best effort: logged when refused). */
  async #replay(
    user: User,
    log: Logger,
    route: Route,
    upstream: string,
    record: SessionRecord | null,
    protocolVersion: string,
  ): Promise<void> {
    if (!record) return;
    const base = this.endpoint(user, route);
    const endpoint = { ...base, headers: { ...base.headers, "mcp-protocol-version": protocolVersion } };
    const calls: Array<[string, Record<string, string>]> = [
      ...(record.logLevel
        ? [["logging/setLevel", { level: record.logLevel }] as [string, Record<string, string>]]
        : []),
      ...record.subscriptions.map((uri): [string, Record<string, string>] => ["resources/subscribe", { uri }]),
    ];
    await Promise.all(
      calls.map(async ([method, params]) => {
        const refused = await requestMcp(endpoint, upstream, method, params).catch((error: Error) => error);
        if (refused) log.warn({ method, err: refused.message }, "could not replay on the revived session");
      }),
    );
  }
}

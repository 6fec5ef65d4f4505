import type { BackendEra, BrokerSession, Route, SessionStore } from "@mcp-broker/session-store";
import type { Logger } from "pino";
import type { Backends } from "../backends.js";
import type { GatewayConfig } from "../config.js";
import type { User } from "../env.js";
import { negotiated, ProtocolEras } from "../protocol-eras.js";
import { brokerInitializeParams, type UpstreamSessions } from "../upstream-sessions.js";

/** The user's pooled session, and the route it was read or opened with (null: read it again). */
export interface OpenedPool {
  session: BrokerSession;
  route: Route | null;
}

/** A 2026-07-28 client's way onto a legacy server: the user's pooled session, and the server's self-description. */
export interface ModernBridge {
  session: BrokerSession;
  /** The route `usePooledSession` read with the session, or the one the pool was just opened on. */
  route: Route | null;
  /** The legacy server's `initialize` result: what `server/discover` answers with. */
  initializeResult: Record<string, unknown>;
}

export interface PooledSessionsDeps {
  config: Pick<GatewayConfig, "BACKEND_IMAGE">;
  store: SessionStore;
  backends: Backends;
  upstream: UpstreamSessions;
}

/**
 * The broker's own session per user, shared by every client that never initializes (older
 * Claude Code, curl) and by 2026-07-28 clients of a legacy server: opened upstream on the
 * clients' behalf, and the backend image's protocol era learned on the way
 * (docs/architecture.md#sessions, #protocol-eras). Only the broker's own sessions are pooled:
 * a client's session is never shared with another client.
 */
export class PooledSessions {
  readonly #eras: ProtocolEras;

  constructor(private readonly deps: PooledSessionsDeps) {
    this.#eras = new ProtocolEras(deps.store, deps.config.BACKEND_IMAGE);
  }

  /**
   * The user's pooled session, marked used (`usePooledSession`: with its route, one round trip),
   * or opened now when there is none.
   */
  async use(user: User, log: Logger, protocolVersion?: string): Promise<OpenedPool> {
    const used = await this.deps.store.usePooledSession(user.id);
    return used.session ? { session: used.session, route: used.route } : this.#open(user, log, protocolVersion);
  }

  /**
   * Opens the user's pooled session, initializing upstream on the clients' behalf; `use` calls
   * it when `usePooledSession` found none. Under the user's lock (one hold: the server is found or
   * started under it too) it checks again: another request (on any replica) may have opened it
   * meanwhile. A claimed spare brings its warm session, already adopted as the pooled one. With
   * the session comes the route it was opened on, or null when another request had opened it.
   */
  async #open(user: User, log: Logger, protocolVersion?: string): Promise<OpenedPool> {
    const { store, backends, upstream } = this.deps;
    return store.withUserLock(user.id, backends.lock, async () => {
      const again = await store.getPooledSession(user.id);
      if (again) return { session: again, route: null };
      const ensured = await backends.ensureWithPooled(user, log);
      if (ensured.pooled) return { session: ensured.pooled, route: ensured.route };
      const params = brokerInitializeParams(protocolVersion);
      const opened = await upstream.open(user, log, params, ensured.route, { mayStartServer: true });
      await this.#eras.learn(params.protocolVersion, opened.result);
      log.info("pooled session opened");
      const session = await store.createSession({
        userId: user.id,
        upstreamSessionId: opened.upstream,
        initializeParams: params,
        // The version the server chose: the one every request on the session must name.
        protocolVersion: negotiated(opened.result) ?? params.protocolVersion,
        pooled: true,
      });
      return { session, route: opened.route };
    });
  }

  /**
   * For a 2026-07-28 client: null when the user's server speaks that revision itself (its
   * requests pass through untouched); else the user's pooled session, on which its requests
   * run as a legacy client's, with the server's `initialize` result to answer `server/discover`.
   * The era is learned once per backend image from an `initialize` that offers 2026-07-28 (a
   * legacy server answers with an older version), the one that opens the pool when there is none.
   */
  async modernBridge(user: User, log: Logger, protocolVersion: string): Promise<ModernBridge | null> {
    let known = await this.#eras.known();
    if (known?.era === "modern") return null;
    const { session, route } = await this.use(user, log, protocolVersion);
    known = known ?? (await this.#eras.known()) ?? (await this.#describe(user, log, protocolVersion));
    if (known.era === "modern") return null;
    return { session, route, initializeResult: known.initializeResult ?? {} };
  }

  /** Asks the server what it speaks when a pool exists but its era is not known (an upstream session opened and ended). */
  async #describe(user: User, log: Logger, protocolVersion: string): Promise<BackendEra> {
    const { store, backends, upstream } = this.deps;
    const route = await backends.ensure(user, log);
    const params = brokerInitializeParams(protocolVersion);
    const opened = await store.withUserLock(user.id, backends.lock, () =>
      upstream.open(user, log, params, route, { mayStartServer: true }),
    );
    await upstream.endUpstream(user, log, opened.route, opened.upstream);
    return (
      (await this.#eras.learn(params.protocolVersion, opened.result)) ?? {
        era: "legacy",
        initializeResult: opened.result,
      }
    );
  }
}

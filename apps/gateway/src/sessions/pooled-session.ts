import type { BackendEra, BrokerSession, Route, SessionStore } from "@mcp-broker/session-store";
import type { Logger } from "pino";
import type { Backends } from "../backends.js";
import type { GatewayConfig } from "../config.js";
import type { User } from "../env.js";
import { negotiated, ProtocolEras } from "../protocol-eras.js";
import { brokerInitializeParams, type UpstreamSessions } from "../upstream-sessions.js";

/** A 2026-07-28 client's way onto a legacy server: the user's pooled session, and the server's self-description. */
export interface ModernBridge {
  session: BrokerSession;
  /** The route `usePooledSession` read with the session; null when the pool was opened just now. */
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
   * Opens the user's pooled session, initializing upstream on the clients' behalf; call it
   * when `usePooledSession` found none. Under the lock it checks again: another request (on
   * any replica) may have opened it meanwhile.
   */
  async open(user: User, log: Logger, protocolVersion?: string): Promise<BrokerSession> {
    const { store, backends, upstream } = this.deps;
    const route = await backends.ensure(user, log);
    return store.withUserLock(user.id, backends.lock, async () => {
      const again = await store.getPooledSession(user.id);
      if (again) return again;
      const params = brokerInitializeParams(protocolVersion);
      const opened = await upstream.open(user, log, params, route, { mayStartServer: true });
      await this.#eras.learn(params.protocolVersion, opened.result);
      log.info("pooled session opened");
      return store.createSession({
        userId: user.id,
        upstreamSessionId: opened.upstream,
        initializeParams: params,
        // The version the server chose: the one every request on the session must name.
        protocolVersion: negotiated(opened.result) ?? params.protocolVersion,
        pooled: true,
      });
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
    const { store } = this.deps;
    let known = await this.#eras.known();
    if (known?.era === "modern") return null;
    const used = await store.usePooledSession(user.id);
    const session = used.session ?? (await this.open(user, log, protocolVersion));
    known = known ?? (await this.#eras.known()) ?? (await this.#describe(user, log, protocolVersion));
    if (known.era === "modern") return null;
    return { session, route: used.session ? used.route : null, initializeResult: known.initializeResult ?? {} };
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

import { cancelMcpRequest, endMcpSession, initializeMcpSession, type McpEndpoint } from "@mcp-broker/container-manager";
import type { BrokerSession, Route, SessionStore } from "@mcp-broker/session-store";
import type { Logger } from "pino";
import type { Dispatcher } from "undici";
import type { Backends } from "./backends.js";
import type { GatewayConfig } from "./config.js";
import type { User } from "./env.js";
import { GatewayError } from "./errors.js";
import { failureError } from "./forward/failures.js";
import type { Metrics } from "./metrics.js";
import { withRecovery } from "./recovery.js";

/** The newest protocol revision the broker speaks when it initializes on a client's behalf. */
export const DEFAULT_PROTOCOL_VERSION = "2025-06-18";

export interface UpstreamSessionsDeps {
  config: Pick<GatewayConfig, "API_KEY_HEADER" | "UPSTREAM_TIMEOUT_MS">;
  store: SessionStore;
  backends: Backends;
  dispatcher: Dispatcher;
  metrics: Metrics;
}

/**
 * The upstream MCP sessions the broker opens, revives, ends and cancels requests on itself,
 * through container-manager's MCP client (docs/architecture.md#upstream-sessions).
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
    };
  }

  /**
   * Opens the user's pooled session, initializing upstream on the clients' behalf; call it
   * when `usePooledSession` found none. Under the lock it checks again: another request (on
   * any replica) may have opened it meanwhile. The initialize recovers like any request.
   */
  async openPooled(user: User, log: Logger, protocolVersion?: string): Promise<BrokerSession> {
    const { store, backends } = this.deps;
    const route = await backends.ensure(user, log);
    return store.withUserLock(user.id, backends.lock, async () => {
      const again = await store.getPooledSession(user.id);
      if (again) return again;
      const params = {
        protocolVersion: protocolVersion ?? DEFAULT_PROTOCOL_VERSION,
        capabilities: {},
        clientInfo: { name: "mcp-session-broker (pooled)", version: "0.1.0" },
      };
      const { result: upstream } = await withRecovery(
        this.deps.metrics,
        {
          log,
          send: (attempt) => initializeMcpSession(this.endpoint(user, attempt.route), params),
          settle: async (id: string) => ({ result: id, failure: null }),
          isAlive: (candidate) => backends.isAlive(candidate),
          // The lock is held already: take no second turn at it.
          replaceServer: (stale) => backends.ensureLocked(user, log, stale),
        },
        { route, session: null },
      );
      log.info("pooled session opened");
      return store.createSession({
        userId: user.id,
        upstreamSessionId: upstream,
        initializeParams: params,
        protocolVersion: params.protocolVersion,
        pooled: true,
      });
    });
  }

  /**
   * The upstream session behind `seen` is gone (its server restarted or expired it): replay
   * the client's initialize and remap the broker session, under the user's lock so that
   * concurrent requests revive it once.
   */
  async revive(user: User, log: Logger, seen: BrokerSession, route: Route): Promise<BrokerSession> {
    const { store, backends } = this.deps;
    return store.withUserLock(user.id, backends.lock, async () => {
      const fresh = await store.getSession(user.id, seen.id);
      if (!fresh) throw new GatewayError("SESSION_NOT_FOUND");
      if (fresh.upstreamSessionId !== seen.upstreamSessionId) return fresh; // another request revived it
      const upstream = await initializeMcpSession(this.endpoint(user, route), fresh.initializeParams).catch(
        (error: unknown) => {
          throw failureError(error);
        },
      );
      const now = await store.remapSession(user.id, fresh.id, fresh.upstreamSessionId, upstream);
      if (now === null) throw new GatewayError("SESSION_NOT_FOUND");
      log.warn({ session: fresh.id.slice(0, 8) }, "upstream session vanished; re-initialized and remapped");
      return { ...fresh, upstreamSessionId: now };
    });
  }

  /** Ends the upstream session (best effort: a server that is gone has ended it) and the broker session. */
  async end(user: User, log: Logger, session: BrokerSession): Promise<void> {
    const route = await this.deps.store.getRoute(user.id);
    if (route?.state === "ready") {
      const endpoint = this.endpoint(user, route);
      await endMcpSession(
        { ...endpoint, timeoutMs: Math.min(endpoint.timeoutMs, 10_000) },
        session.upstreamSessionId,
      ).catch((error: Error) =>
        log.warn({ err: error.message }, "upstream DELETE failed; ending the broker session anyway"),
      );
    }
    await this.deps.store.deleteSession(user.id, session.id);
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
}

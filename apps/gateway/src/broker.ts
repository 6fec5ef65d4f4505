import type { ContainerDriver } from "@mcp-broker/container-manager";
import type { BrokerSession, LockOptions, Route, SessionStore } from "@mcp-broker/session-store";
import type { Logger } from "pino";
import type { Dispatcher } from "undici";
import type { GatewayConfig } from "./config.js";
import type { User } from "./env.js";
import { HttpError, RPC } from "./errors.js";
import { callUpstream, connectionFailure, type UpstreamRequest } from "./forward.js";
import type { Metrics } from "./metrics.js";
import { IdRewriter } from "./rpc-ids.js";
import {
  DEFAULT_PROTOCOL_VERSION,
  deleteUpstream,
  initializeUpstream,
  type UpstreamTarget,
} from "./upstream-session.js";

export interface BrokerDeps {
  config: GatewayConfig;
  store: SessionStore;
  driver: ContainerDriver;
  dispatcher: Dispatcher;
  metrics: Metrics;
  /** Distinguishes this replica's minted request ids from every other replica's. */
  instanceId: string;
}

/** An upstream answer; `body` is a string when the broker had to read it to classify it. */
export interface UpstreamAnswer {
  status: number;
  headers: Dispatcher.ResponseData["headers"];
  body: Dispatcher.ResponseData["body"] | string;
  route: Route;
  session: BrokerSession | null;
}

export const sessionNotFound = () =>
  new HttpError(404, RPC.sessionNotFound, "Session not found: initialize a new session");

/**
 * The session rules of DESIGN.md "Request flow" steps 2, 3 and 5: which upstream session and
 * container serve a request, how they are created (once, under the user's lock, whichever
 * replica asks), and how they are re-created when they vanish.
 */
export class Broker {
  readonly ids: IdRewriter;
  readonly #lock: LockOptions;

  constructor(private readonly deps: BrokerDeps) {
    this.ids = new IdRewriter(`mcpb-${deps.instanceId}`);
    const ready = deps.config.BACKEND_READY_TIMEOUT_MS;
    // The lock outlives a slow start (so a second replica does not start a duplicate), and
    // waiters wait as long as a start may take; Docker's unique names are the last guard.
    this.#lock = { ttlMs: ready + 30_000, timeoutMs: ready + 15_000 };
  }

  target(user: User, route: Route): UpstreamTarget {
    return {
      dispatcher: this.deps.dispatcher,
      endpoint: route.endpoint,
      apiKeyHeader: this.deps.config.API_KEY_HEADER,
      apiKey: user.key,
      timeoutMs: Math.min(this.deps.config.UPSTREAM_TIMEOUT_MS, 30_000),
    };
  }

  /** The user's ready route, starting their server if needed; `stale` is a route that just failed. */
  async ensureRoute(user: User, log: Logger, stale?: Route): Promise<Route> {
    const route = await this.deps.store.getRoute(user.id);
    if (usable(route, stale)) return route;
    return this.deps.store.withUserLock(user.id, this.#lock, () => this.#ensureRouteLocked(user, log, stale));
  }

  async #ensureRouteLocked(user: User, log: Logger, stale?: Route): Promise<Route> {
    const current = await this.deps.store.getRoute(user.id);
    if (usable(current, stale)) return current;
    const started = performance.now();
    const backend = await this.deps.driver.ensure({ userId: user.id, apiKey: user.key });
    const seconds = (performance.now() - started) / 1000;
    this.deps.metrics.coldStarts.inc();
    this.deps.metrics.coldStartDuration.observe(seconds);
    log.info({ container: backend.containerId.slice(0, 12), ms: Math.round(seconds * 1000) }, "backend ready");
    return this.deps.store.setRoute({ userId: user.id, ...backend });
  }

  /**
   * Opens the user's pooled session, initializing upstream on the client's behalf; call it when
   * `usePooledSession` found none. Under the lock it checks again: another request (on any
   * replica) may have opened it meanwhile.
   */
  async openPooledSession(user: User, log: Logger, protocolVersion?: string): Promise<BrokerSession> {
    let route = await this.ensureRoute(user, log);
    return this.deps.store.withUserLock(user.id, this.#lock, async () => {
      const again = await this.deps.store.getPooledSession(user.id);
      if (again) return again;
      const params = {
        protocolVersion: protocolVersion ?? DEFAULT_PROTOCOL_VERSION,
        capabilities: {},
        clientInfo: { name: "mcp-session-broker (pooled)", version: "0.1.0" },
      };
      let upstream: string;
      try {
        upstream = await initializeUpstream(this.target(user, route), params);
      } catch (error) {
        if (connectionFailure(error) !== "refused") throw upstreamFailure(error);
        route = await this.#ensureRouteLocked(user, log, route);
        upstream = await initializeUpstream(this.target(user, route), params).catch((e) => {
          throw upstreamFailure(e);
        });
      }
      log.info("pooled session opened");
      return this.deps.store.createSession({
        userId: user.id,
        upstreamSessionId: upstream,
        initializeParams: params,
        protocolVersion: params.protocolVersion,
        pooled: true,
      });
    });
  }

  /**
   * The upstream session behind `seen` is gone (server restarted or expired it): replay the
   * client's initialize and remap the broker session. MCP says clients re-initialize on 404;
   * Claude Code does not (anthropics/claude-code#8338), so the broker does it for them.
   */
  async recoverSession(user: User, seen: BrokerSession, route: Route, log: Logger): Promise<BrokerSession> {
    return this.deps.store.withUserLock(user.id, this.#lock, async () => {
      const fresh = await this.deps.store.getSession(user.id, seen.id);
      if (!fresh) throw sessionNotFound();
      if (fresh.upstreamSessionId !== seen.upstreamSessionId) return fresh; // another request recovered it
      const upstream = await initializeUpstream(this.target(user, route), fresh.initializeParams).catch((error) => {
        throw upstreamFailure(error);
      });
      const now = await this.deps.store.remapSession(user.id, fresh.id, fresh.upstreamSessionId, upstream);
      if (now === null) throw sessionNotFound();
      log.warn({ session: fresh.id.slice(0, 8) }, "upstream session vanished; re-initialized and remapped");
      return { ...fresh, upstreamSessionId: now };
    });
  }

  /**
   * Sends one request upstream for `session` (none for initialize and stateless requests).
   * A dead container is re-created and a vanished upstream session re-initialized, each at
   * most once per request, and the request retried; the client sees a normal answer.
   */
  async exchange(
    user: User,
    log: Logger,
    session: BrokerSession | null,
    request: Omit<UpstreamRequest, "endpoint">,
    options: { startServer?: boolean; route?: Route | null } = {},
  ): Promise<UpstreamAnswer> {
    const mayStart = options.startServer ?? true;
    let route: Route;
    if (usable(options.route ?? null)) route = options.route as Route;
    else route = mayStart ? await this.ensureRoute(user, log) : await this.#runningRoute(user);
    let current = session;
    let recoveredContainer = false;
    let recoveredSession = false;
    for (;;) {
      const headers = current ? { ...request.headers, "mcp-session-id": current.upstreamSessionId } : request.headers;
      const started = performance.now();
      let response: Dispatcher.ResponseData;
      try {
        response = await callUpstream(this.deps.dispatcher, { ...request, headers, endpoint: route.endpoint });
      } catch (error) {
        const failure = connectionFailure(error);
        if (!failure || recoveredContainer || request.signal?.aborted) throw upstreamFailure(error);
        if (!mayStart) throw noStream();
        // A broken connection may have delivered the request; retry only if the server is gone.
        if (failure === "lost" && (await this.#alive(route))) throw upstreamFailure(error);
        recoveredContainer = true;
        this.deps.metrics.recoveries.inc({ kind: "container" });
        log.warn({ container: route.containerId.slice(0, 12), failure }, "MCP server unreachable; re-creating it");
        route = await this.ensureRoute(user, log, route);
        continue;
      }
      this.deps.metrics.upstreamDuration.observe({ method: request.method }, (performance.now() - started) / 1000);

      if (current && (response.statusCode === 404 || response.statusCode === 400)) {
        const text = await response.body.text();
        // Servers answer a vanished session with 404 (TS SDK, Python SDK >= 1.26) or 400
        // "No valid session ID" (older Python SDK, the TS SDK's example server).
        const gone = response.statusCode === 404 || /session/i.test(text);
        if (gone && !recoveredSession) {
          recoveredSession = true;
          this.deps.metrics.recoveries.inc({ kind: "session" });
          current = await this.recoverSession(user, current, route, log);
          continue;
        }
        return { status: response.statusCode, headers: response.headers, body: text, route, session: current };
      }
      return { status: response.statusCode, headers: response.headers, body: response.body, route, session: current };
    }
  }

  /** Ends the upstream session (best effort) and the broker session. */
  async endSession(user: User, log: Logger, session: BrokerSession): Promise<void> {
    const route = await this.deps.store.getRoute(user.id);
    if (route?.state === "ready") {
      await deleteUpstream(this.target(user, route), session.upstreamSessionId).catch((error) =>
        log.warn({ err: (error as Error).message }, "upstream DELETE failed; ending the broker session anyway"),
      );
    }
    await this.deps.store.deleteSession(user.id, session.id);
  }

  async #runningRoute(user: User): Promise<Route> {
    const route = await this.deps.store.getRoute(user.id);
    if (!usable(route)) throw noStream();
    return route;
  }

  async #alive(route: Route): Promise<boolean> {
    const container = await this.deps.driver.inspect(route.containerId).catch(() => null);
    return container?.running ?? false;
  }
}

/**
 * A GET stream only listens: it must not start (or keep alive) a server the reaper stopped as
 * idle. MCP lets a server answer GET with 405 when it offers no stream; clients then use POST.
 */
function noStream(): HttpError {
  return new HttpError(405, RPC.server, "No server-to-client stream: your MCP server is not running", {
    Allow: "POST, DELETE",
  });
}

function usable(route: Route | null, stale?: Route): route is Route {
  if (route?.state !== "ready") return false;
  return !(stale && route.containerId === stale.containerId && route.createdAt === stale.createdAt);
}

function upstreamFailure(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  const code = (error as { code?: string }).code;
  if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT") {
    return new HttpError(504, RPC.server, "Your MCP server did not answer in time");
  }
  if ((error as Error).name === "AbortError" || code === "UND_ERR_ABORTED") {
    return new HttpError(499, RPC.server, "Client closed the request");
  }
  return new HttpError(502, RPC.server, `Your MCP server failed to answer (${code ?? (error as Error).message})`);
}

import type { EventRelays } from "@mcp-broker/session-store";
import type { Logger } from "pino";
import type { Backends } from "../backends.js";
import type { User } from "../env.js";
import { GatewayError } from "../errors.js";
import type { ClientGone } from "../forward/client-request.js";
import { ClientStreams, type ClientStreamsDeps, isRelayEventId } from "./client-streams.js";
import { type HoldOutcome, UpstreamStreams, type UpstreamStreamsDeps } from "./upstream-streams.js";

/** The longest a request waits for this replica to open a session's upstream stream. */
const HOLD_WAIT_MS = 5000;

/** The hold's outcome, or "failed" when it took longer than HOLD_WAIT_MS. */
function withDeadline(holding: Promise<HoldOutcome>): Promise<HoldOutcome> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<HoldOutcome>((resolve) => {
    timer = setTimeout(() => resolve("failed"), HOLD_WAIT_MS);
  });
  return Promise.race([holding, late]).finally(() => clearTimeout(timer));
}

const SSE_HEADERS = {
  "content-type": "text/event-stream",
  "cache-control": "no-cache, no-transform",
  "x-accel-buffering": "no",
};

/**
 * Server-to-client messages of client sessions (docs/architecture.md#server-to-client-streams):
 * the broker holds each session's upstream GET stream on one replica and relays it through a
 * bounded Redis Stream; client GETs on any replica read from there. So a message the server
 * sends before the client's GET arrives, while it lands on another replica, or while it
 * reconnects after a replica died, still reaches the client, once.
 */
export class SessionRelay {
  readonly #upstream: UpstreamStreams;
  readonly #clients: ClientStreams;
  readonly #relays: EventRelays;
  readonly #backends: Backends;

  constructor(deps: UpstreamStreamsDeps & ClientStreamsDeps) {
    this.#relays = deps.store.relays;
    this.#backends = deps.backends;
    this.#upstream = new UpstreamStreams(deps);
    this.#clients = new ClientStreams(deps);
  }

  /**
   * After a POST on a client session. When it carried `notifications/initialized`, the answer
   * waits until the upstream stream is open: a client's next request may make the server send
   * on it at once (the conformance suite's sampling call), and a server drops what it sends
   * while no GET is open. Any other POST only checks, at most every half lease, that someone holds it.
   */
  async afterPost(user: User, log: Logger, sessionId: string, initialized: boolean): Promise<void> {
    const holding = this.#upstream.hold(user, log, sessionId, initialized);
    if (initialized) await withDeadline(holding);
  }

  /**
   * A client GET: the session's relayed events after its Last-Event-ID, or, without one, after
   * the last event any GET of the session was written (so what the server sent before this
   * GET arrived is delivered, and nothing twice). Null for a Last-Event-ID the relay did not
   * issue: the resumption of a POST's stream, which only the server can replay.
   */
  async listen(user: User, log: Logger, sessionId: string, lastEventId: string | undefined, gone: ClientGone) {
    if (lastEventId !== undefined && !isRelayEventId(lastEventId)) return null;
    const outcome = await this.#held(user, log, sessionId);
    const state = await this.#relays.state(user.id, sessionId);
    if (outcome === "refused" || (outcome !== "open" && state.refused !== null)) {
      throw new GatewayError("NO_STREAM", "The MCP server offers no stream for this session");
    }
    // Not opened yet (a former holder's GET still open upstream: 409) is retried in the
    // background while the client listens; a server that is gone is not (a listener never starts one).
    if (outcome === "failed" && !(await this.#serverRuns(user))) throw new GatewayError("NO_STREAM");
    const after = lastEventId ?? state.delivered ?? "0-0";
    const onTick = () => {
      this.#upstream.hold(user, log, sessionId, true).catch(() => {});
    };
    const body = this.#clients.open(user.id, sessionId, after, onTick, gone);
    return { status: 200, headers: { ...SSE_HEADERS }, body };
  }

  /** The client ended the session: its upstream stream and relayed events go. */
  async end(userId: string, sessionId: string): Promise<void> {
    this.#upstream.stop(userId, sessionId);
    await this.#relays.drop(userId, sessionId);
  }

  /** Shutdown: held streams given up (leases released), client streams ended so clients resume elsewhere. */
  async close(): Promise<void> {
    await Promise.all([this.#upstream.close(), this.#clients.close()]);
  }

  async #serverRuns(user: User): Promise<boolean> {
    const route = await this.#backends.running(user);
    return route !== null && (await this.#backends.isAlive(route));
  }

  #held(user: User, log: Logger, sessionId: string): Promise<HoldOutcome> {
    return withDeadline(this.#upstream.hold(user, log, sessionId, true));
  }
}

import { setTimeout as sleep } from "node:timers/promises";
import type { SessionStore } from "@mcp-broker/session-store";
import { createParser } from "eventsource-parser";
import type { Logger } from "pino";
import { type Dispatcher, request } from "undici";
import type { Backends } from "../backends.js";
import type { GatewayConfig } from "../config.js";
import type { User } from "../env.js";
import { isEventStream } from "../forward/headers.js";
import type { Metrics } from "../metrics.js";

/** Where a session's upstream stream stands, as `hold` found it. */
export type HoldOutcome = "open" | "refused" | "elsewhere" | "full" | "failed";

export interface UpstreamStreamsDeps {
  config: Pick<
    GatewayConfig,
    | "API_KEY_HEADER"
    | "UPSTREAM_TIMEOUT_MS"
    | "RELAY_MAX_EVENTS"
    | "RELAY_MAX_BYTES"
    | "RELAY_MAX_HELD"
    | "RELAY_LEASE_MS"
  >;
  store: SessionStore;
  backends: Backends;
  dispatcher: Dispatcher;
  metrics: Metrics;
  /** This replica's lease owner token. */
  owner: string;
  logger: Logger;
}

interface Held {
  abort: AbortController;
  /** The last connect's outcome; undefined until the first has one. */
  outcome: HoldOutcome | undefined;
  first: Promise<HoldOutcome>;
  /** Settles when the holder has stopped and given the lease up. */
  done: Promise<void>;
}

const outcomeOf = (held: Held) => (held.outcome ? Promise.resolve(held.outcome) : held.first);

/** Consecutive failed connects before the holder gives the session up (the next request takes it again). */
const MAX_FAILURES = 5;
/** Sessions whose lease this replica remembers finding taken. */
const MAX_CHECKED = 100_000;

/**
 * The upstream GET streams this replica holds for live sessions, relayed event by event into
 * the sessions' Redis Streams (docs/architecture.md#server-to-client-streams). Exactly one
 * replica holds a session's stream: the one whose Redis lease it is, renewed while held. A
 * replica takes a free lease when it handles a request of the session; so when a holder dies,
 * the next request, or a client GET open on any replica (which checks every half lease), takes over.
 */
export class UpstreamStreams {
  readonly #held = new Map<string, Held>();
  /** When this replica last found a session's lease taken: asked again only after half a lease. */
  readonly #checked = new Map<string, number>();
  #closed = false;

  constructor(private readonly deps: UpstreamStreamsDeps) {}

  /**
   * Makes sure some replica holds the session's upstream stream; resolves once this replica's
   * first connect has an answer, or at once when another replica holds it. `recheck` skips the
   * half-lease pause (a client GET, a session just initialized).
   */
  hold(user: User, log: Logger, sessionId: string, recheck = false): Promise<HoldOutcome> {
    const key = `${user.id}:${sessionId}`;
    const held = this.#held.get(key);
    if (held) return outcomeOf(held);
    if (this.#closed) return Promise.resolve("elsewhere");
    if (this.#held.size >= this.deps.config.RELAY_MAX_HELD) return Promise.resolve("full");
    const checked = this.#checked.get(key) ?? 0;
    if (!recheck && Date.now() - checked < this.deps.config.RELAY_LEASE_MS / 2) return Promise.resolve("elsewhere");
    this.#remember(key);
    return this.#take(user, log, sessionId, key);
  }

  /** Stops holding the session's stream (its client ended it), giving the lease up. */
  stop(userId: string, sessionId: string): void {
    this.#held.get(`${userId}:${sessionId}`)?.abort.abort();
  }

  /** Shutdown: every held stream is closed and its lease given up, so other replicas take over at once. */
  async close(): Promise<void> {
    this.#closed = true;
    const held = [...this.#held.values()];
    for (const entry of held) entry.abort.abort();
    await Promise.allSettled(held.map((entry) => entry.done));
  }

  async #take(user: User, log: Logger, sessionId: string, key: string): Promise<HoldOutcome> {
    const { relays } = this.deps.store;
    const { owner, config } = this.deps;
    const taken = await relays.acquire(user.id, sessionId, owner, config.RELAY_LEASE_MS).catch((error: Error) => {
      log.warn({ err: error.message }, "could not take the relay lease");
      return false;
    });
    // Another request of this session may have taken it on this replica meanwhile.
    const again = this.#held.get(key);
    if (again) return outcomeOf(again);
    if (!taken) return "elsewhere";
    this.#checked.delete(key);
    let resolveFirst: (outcome: HoldOutcome) => void = () => {};
    const first = new Promise<HoldOutcome>((resolve) => {
      resolveFirst = resolve;
    });
    const held: Held = { abort: new AbortController(), outcome: undefined, first, done: Promise.resolve() };
    const abort = held.abort;
    const settle = (outcome: HoldOutcome) => {
      const changed = (held.outcome === "open") !== (outcome === "open");
      held.outcome = outcome;
      if (changed) this.#gauge();
      resolveFirst(outcome);
    };
    this.#held.set(key, held);
    const renew = setInterval(() => {
      relays.renew(user.id, sessionId, owner, config.RELAY_LEASE_MS).then(
        (renewed) => {
          if (!renewed) abort.abort(); // the lease lapsed and another replica holds the stream now
        },
        (error: Error) => log.warn({ err: error.message }, "could not renew the relay lease"),
      );
    }, config.RELAY_LEASE_MS / 3);
    held.done = this.#run(user, log, sessionId, abort.signal, settle)
      .catch((error: Error) => log.warn({ err: error.message }, "relay of the upstream stream failed"))
      .finally(async () => {
        clearInterval(renew);
        settle("failed");
        this.#held.delete(key);
        await relays.release(user.id, sessionId, owner).catch(() => {});
        log.info({ session: sessionId.slice(0, 8) }, "upstream stream released");
      });
    return first;
  }

  /** Connects, relays until the stream ends, reconnects; stops when the session or its server is gone. */
  async #run(
    user: User,
    log: Logger,
    sessionId: string,
    signal: AbortSignal,
    settle: (outcome: HoldOutcome) => void,
  ): Promise<void> {
    const { store, backends } = this.deps;
    let failures = 0;
    while (!signal.aborted && failures < MAX_FAILURES) {
      const session = await store.getSession(user.id, sessionId);
      // Ended or released: a revival (which only a request makes) gives it a new upstream session.
      if (!session) return;
      const route = await backends.running(user);
      if (!route) return; // a listener never starts (or keeps alive) a server
      const state = await store.relays.state(user.id, sessionId);
      const resumeFrom = state.upstream === session.upstreamSessionId ? state.upstreamEvent : null;
      // A server that refused a stream before (405) may offer one after a restart or upgrade.
      if (state.refused !== null) await store.relays.markRefused(user.id, sessionId, null);
      const outcome = await this.#relayOnce(user, log, sessionId, session, route.endpoint, resumeFrom, signal, settle);
      if (outcome === "refused" || outcome === "lost") return;
      settle("failed"); // not open until the next connect says otherwise
      failures = outcome === "ended" ? 0 : failures + 1;
      await sleep(Math.min(250 * 2 ** failures, 5000), undefined, { signal }).catch(() => {});
    }
  }

  /** One upstream GET: relayed until it ends. */
  async #relayOnce(
    user: User,
    log: Logger,
    sessionId: string,
    session: { upstreamSessionId: string; protocolVersion: string },
    endpoint: string,
    resumeFrom: string | null,
    signal: AbortSignal,
    settle: (outcome: HoldOutcome) => void,
  ): Promise<"ended" | "failed" | "refused" | "lost"> {
    const { config, dispatcher, store } = this.deps;
    const headers: Record<string, string> = {
      accept: "text/event-stream",
      "mcp-session-id": session.upstreamSessionId,
      [config.API_KEY_HEADER.toLowerCase()]: user.key,
      ...(session.protocolVersion ? { "mcp-protocol-version": session.protocolVersion } : {}),
      // MCP transports: a server with resumability replays what it sent after this id.
      ...(resumeFrom ? { "last-event-id": resumeFrom } : {}),
    };
    let response: Dispatcher.ResponseData;
    try {
      // No body timeout: a server may stay quiet on its stream for hours.
      const timeouts = { headersTimeout: config.UPSTREAM_TIMEOUT_MS, bodyTimeout: 0 };
      response = await request(endpoint, { dispatcher, method: "GET", headers, signal, ...timeouts });
    } catch (error) {
      if (!signal.aborted) log.info({ err: (error as Error).message }, "upstream stream did not open");
      settle("failed");
      return "failed";
    }
    if (response.statusCode === 405) {
      await response.body.dump();
      // MCP: 405 means the server offers no stream for the session; a client GET answers 405 too.
      await store.relays.markRefused(user.id, sessionId, 405);
      settle("refused");
      return "refused";
    }
    if (response.statusCode !== 200 || !isEventStream(response.headers)) {
      await response.body.dump().catch(() => {});
      // 404/400: the upstream session is gone (the next request revives it); 409: another GET is
      // still open for it (a former holder's, until the server notices it closed).
      log.info({ status: response.statusCode }, "upstream refused the stream");
      settle("failed");
      return "failed";
    }
    settle("open");
    return this.#pump(user, log, sessionId, session.upstreamSessionId, response.body, signal);
  }

  /** Appends each event of the upstream stream to the relay, as the lease's holder. */
  async #pump(
    user: User,
    log: Logger,
    sessionId: string,
    upstreamSessionId: string,
    body: Dispatcher.ResponseData["body"],
    signal: AbortSignal,
  ): Promise<"ended" | "failed" | "lost"> {
    const { config, store, owner, metrics } = this.deps;
    const bounds = { maxEntries: config.RELAY_MAX_EVENTS, maxBytes: config.RELAY_MAX_BYTES };
    const events: Array<{ data: string; id: string | undefined }> = [];
    const parser = createParser({
      onEvent: (event) => {
        if (event.data) events.push({ data: event.data, id: event.id });
      },
    });
    const decoder = new TextDecoder();
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        parser.feed(decoder.decode(chunk, { stream: true }));
        for (const event of events.splice(0)) {
          if (Buffer.byteLength(event.data) > bounds.maxBytes) {
            metrics.relayDropped.inc({ reason: "too-large" });
            log.warn(
              { bytes: Buffer.byteLength(event.data) },
              "server-to-client event larger than RELAY_MAX_BYTES dropped",
            );
            continue;
          }
          const relayed = { data: event.data, upstreamSessionId, upstreamEventId: event.id };
          const id = await store.relays.append(user.id, sessionId, owner, relayed, bounds);
          if (id === null) {
            body.destroy();
            return "lost";
          }
        }
      }
      return "ended";
    } catch (error) {
      if (!signal.aborted) log.info({ err: (error as Error).message }, "upstream stream broke");
      return "failed";
    }
  }

  /** Bounded like a cache: the oldest check goes first (it would be repeated anyway). */
  #remember(key: string): void {
    this.#checked.delete(key);
    this.#checked.set(key, Date.now());
    if (this.#checked.size > MAX_CHECKED) this.#checked.delete(this.#checked.keys().next().value as string);
  }

  /**
   * Upstream GETs open now: a held session between connects (or waiting for a server's 409 to
   * clear) is not counted, since what its server sends meanwhile reaches nobody.
   */
  #gauge(): void {
    let open = 0;
    for (const held of this.#held.values()) if (held.outcome === "open") open++;
    this.deps.metrics.relayStreams.set({ kind: "upstream" }, open);
  }
}

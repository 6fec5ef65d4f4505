import { setTimeout as sleep } from "node:timers/promises";
import type { RelayCursor, RelayedEvent, RelayReader, SessionStore } from "@mcp-broker/session-store";
import type { Logger } from "pino";
import type { GatewayConfig } from "../config.js";
import type { Metrics } from "../metrics.js";

export interface ClientStreamsDeps {
  config: Pick<GatewayConfig, "RELAY_MAX_BYTES" | "RELAY_LEASE_MS">;
  store: SessionStore;
  metrics: Metrics;
  logger: Logger;
}

interface Subscription {
  userId: string;
  sessionId: string;
  /** The last entry written to this client. */
  after: string;
  controller: ReadableStreamDefaultController<Uint8Array>;
  /** Runs every half lease while the stream is open (makes sure some replica holds the upstream stream). */
  onTick: () => void;
  tickedAt: number;
  wroteAt: number;
}

/** Most entries one read takes per session. */
const READ_COUNT = 100;
/** SSE comment this often on a quiet stream, so idle timeouts of proxies on the way keep it open. */
const KEEP_ALIVE_MS = 15_000;
const encoder = new TextEncoder();

/** Stream ids ("<ms>-<seq>") in order. */
function compareIds(a: string, b: string): number {
  const [ams = 0, aseq = 0] = a.split("-").map(Number);
  const [bms = 0, bseq = 0] = b.split("-").map(Number);
  return ams - bms || aseq - bseq;
}

/** A Last-Event-ID the relay issued (a Redis stream id), as opposed to one of an upstream stream. */
export const isRelayEventId = (id: string) => /^\d{1,20}-\d{1,20}$/.test(id);

function sseEvent(event: RelayedEvent): Uint8Array {
  const lines = event.data.split(/\r?\n/).map((line) => `data: ${line}\n`);
  return encoder.encode(`id: ${event.id}\n${lines.join("")}\n`);
}

/**
 * The client GET streams this replica serves, all fed by one blocking reader on one Redis
 * connection however many streams are open (docs/architecture.md#server-to-client-streams).
 * Event ids are the relay's entry ids, so a client resumes by Last-Event-ID on any replica.
 */
export class ClientStreams {
  readonly #subscriptions = new Set<Subscription>();
  readonly #reader: RelayReader;
  #running: Promise<void> | undefined;
  #closed = false;

  constructor(private readonly deps: ClientStreamsDeps) {
    this.#reader = deps.store.relays.reader(Math.min(5000, deps.config.RELAY_LEASE_MS / 2));
  }

  /** A stream of the session's events after `after` ("0-0": every event kept). */
  open(
    userId: string,
    sessionId: string,
    after: string,
    onTick: () => void,
    gone: { left: boolean; once(event: "abort", listener: () => void): unknown },
  ): ReadableStream<Uint8Array> {
    let subscription: Subscription | undefined;
    const strategy = new ByteLengthQueuingStrategy({ highWaterMark: this.deps.config.RELAY_MAX_BYTES });
    const stream = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          const now = Date.now();
          subscription = { userId, sessionId, after, controller, onTick, tickedAt: now, wroteAt: now };
          // The resumption point from the first byte: a client whose stream breaks before any
          // event resumes here, not from whatever the session's next GET would start at.
          controller.enqueue(encoder.encode(`retry: 1000\nid: ${after}\ndata:\n\n`));
          // Gone while the GET was being set up: nothing will ever read or cancel this stream.
          if (gone.left) {
            controller.close();
            return;
          }
          this.#subscriptions.add(subscription);
          // The connection's close, not a failed write, ends the subscription: nothing is
          // counted as delivered to a client that has left.
          gone.once("abort", () => subscription && this.#end(subscription));
          this.#gauge();
          this.#wake();
        },
        cancel: () => {
          if (subscription) this.#subscriptions.delete(subscription);
          this.#gauge();
        },
      },
      strategy,
    );
    return stream;
  }

  /** Ends every stream (clients resume on another replica by Last-Event-ID) and the reader. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const subscription of this.#subscriptions) this.#end(subscription);
    await this.#reader.interrupt().catch(() => {});
    await this.#running;
    this.#reader.close();
  }

  #wake(): void {
    if (this.#running) {
      this.#reader.interrupt().catch(() => {});
      return;
    }
    this.#running = this.#run().finally(() => {
      this.#running = undefined;
      if (this.#subscriptions.size > 0 && !this.#closed) this.#wake();
    });
  }

  async #run(): Promise<void> {
    while (this.#subscriptions.size > 0 && !this.#closed) {
      const groups = this.#groups();
      let results: RelayedEvent[][];
      try {
        results = await this.#reader.read(
          groups.map((group) => group.cursor),
          READ_COUNT,
        );
      } catch (error) {
        this.deps.logger.warn({ err: (error as Error).message }, "reading relayed events failed; retrying");
        await sleep(1000);
        continue;
      }
      for (const [index, group] of groups.entries()) this.#deliver(group, results[index] ?? []);
      this.#tick();
    }
  }

  /** One cursor per session: the oldest any of its streams is at. */
  #groups(): Array<{ cursor: RelayCursor; members: Subscription[] }> {
    const groups = new Map<string, { cursor: RelayCursor; members: Subscription[] }>();
    for (const subscription of this.#subscriptions) {
      const key = `${subscription.userId}:${subscription.sessionId}`;
      const group = groups.get(key);
      if (!group) {
        const { userId, sessionId, after } = subscription;
        groups.set(key, { cursor: { userId, sessionId, after }, members: [subscription] });
        continue;
      }
      group.members.push(subscription);
      if (compareIds(subscription.after, group.cursor.after) < 0) group.cursor.after = subscription.after;
    }
    return [...groups.values()];
  }

  #deliver(group: { cursor: RelayCursor; members: Subscription[] }, events: RelayedEvent[]): void {
    let written: string | undefined;
    for (const subscription of group.members) {
      for (const event of events) {
        if (compareIds(event.id, subscription.after) <= 0) continue;
        if (!this.#write(subscription, sseEvent(event))) break;
        subscription.after = event.id;
        if (written === undefined || compareIds(event.id, written) > 0) written = event.id;
      }
      // A client that reads slower than the server writes: its stream ends once RELAY_MAX_BYTES
      // wait in this replica's memory, and it resumes by Last-Event-ID from Redis.
      if (this.#subscriptions.has(subscription) && (subscription.controller.desiredSize ?? 1) <= 0) {
        this.#end(subscription);
      }
    }
    // Only what reached a stream: a client that left during the read was written nothing.
    if (written === undefined) return;
    const { userId, sessionId } = group.cursor;
    this.deps.store.relays
      .markDelivered(userId, sessionId, written)
      .catch((error: Error) => this.deps.logger.warn({ err: error.message }, "could not record delivered events"));
  }

  /** Keep-alives on quiet streams; the half-lease check that someone holds each upstream stream. */
  #tick(): void {
    const now = Date.now();
    for (const subscription of this.#subscriptions) {
      if (now - subscription.wroteAt >= KEEP_ALIVE_MS) this.#write(subscription, encoder.encode(": keep-alive\n\n"));
      if (now - subscription.tickedAt >= this.deps.config.RELAY_LEASE_MS / 2) {
        subscription.tickedAt = now;
        subscription.onTick();
      }
    }
  }

  /** False when the client has gone meanwhile (its stream cancelled while a read was under way). */
  #write(subscription: Subscription, bytes: Uint8Array): boolean {
    if (!this.#subscriptions.has(subscription)) return false;
    try {
      subscription.controller.enqueue(bytes);
    } catch {
      this.#subscriptions.delete(subscription);
      this.#gauge();
      return false;
    }
    subscription.wroteAt = Date.now();
    return true;
  }

  #end(subscription: Subscription): void {
    this.#subscriptions.delete(subscription);
    try {
      subscription.controller.close();
    } catch {
      // already closed by the client
    }
    this.#gauge();
  }

  #gauge(): void {
    this.deps.metrics.relayStreams.set({ kind: "client" }, this.#subscriptions.size);
  }
}

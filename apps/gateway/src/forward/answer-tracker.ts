import { createParser, type EventSourceParser } from "eventsource-parser";

/** A JSON answer larger than this is not inspected for `onMessage` (it still reaches the client whole). */
const MAX_INSPECTED_JSON = 1024 * 1024;
/** SSE bytes kept unread at most; past this they are read at once (`sse`). */
const MAX_UNREAD = 16 * 1024;

const keyOf = (id: unknown) => JSON.stringify(id);

/**
 * Watches an upstream answer on its way to the client, without changing a byte of it: which of
 * the forwarded requests have been answered (so a stream that breaks can be judged: only what is
 * still unanswered may be sent again or answered with an error), and each message for whoever
 * asked to see them (tools/list results, whose annotations say what is safe to repeat).
 */
export class AnswerTracker {
  readonly #pending = new Map<string, unknown>();
  readonly #decoder = new TextDecoder();
  #answered = 0;
  #parser: EventSourceParser | undefined;
  #json = "";
  /**
   * An event stream's chunks not read yet. What was answered matters only when the stream
   * breaks (`unanswered`, `answeredAny`); one that ends normally, as nearly all do, is never
   * parsed: parsing every chunk was about 2% of the warm path's CPU. Bounded by MAX_UNREAD.
   */
  #unread: Uint8Array[] = [];
  #unreadBytes = 0;

  constructor(
    /** The ids of the requests as sent upstream (rewritten ones for the pooled session). */
    requestIds: readonly unknown[],
    private readonly onMessage?: (message: Record<string, unknown>) => void,
  ) {
    for (const id of requestIds) this.#pending.set(keyOf(id), id);
  }

  /** Upstream ids of the requests no answer has arrived for yet. */
  unanswered(): unknown[] {
    this.#readUnread();
    return [...this.#pending.values()];
  }

  /** True once any request was answered: what follows a break can no longer repeat them all. */
  get answeredAny(): boolean {
    this.#readUnread();
    return this.#answered > 0;
  }

  /** One chunk of an SSE answer: read now when each message is watched, else kept until asked. */
  sse(chunk: Uint8Array): void {
    if (this.onMessage) {
      this.#feed(chunk);
      return;
    }
    this.#unread.push(chunk);
    this.#unreadBytes += chunk.byteLength;
    if (this.#unreadBytes > MAX_UNREAD) this.#readUnread();
  }

  #readUnread(): void {
    if (this.#unread.length === 0) return;
    const chunks = this.#unread;
    this.#unread = [];
    this.#unreadBytes = 0;
    for (const chunk of chunks) this.#feed(chunk);
  }

  #feed(chunk: Uint8Array): void {
    this.#parser ??= createParser({ onEvent: (event) => this.#event(event.data) });
    this.#parser.feed(this.#decoder.decode(chunk, { stream: true }));
  }

  /** One chunk of a JSON answer; `jsonEnd` reads it once complete. */
  json(chunk: Uint8Array): void {
    if (this.onMessage && this.#json.length <= MAX_INSPECTED_JSON) {
      this.#json += this.#decoder.decode(chunk, { stream: true });
    }
  }

  jsonEnd(text = this.#json): void {
    this.#json = "";
    if (!this.onMessage || text.length > MAX_INSPECTED_JSON) return;
    this.#messages(text);
  }

  #event(data: string): void {
    // Progress notifications carry neither; only answers (and tools/list results) are parsed.
    if (!this.onMessage && !data.includes('"result"') && !data.includes('"error"')) return;
    this.#messages(data);
  }

  #messages(text: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return; // not JSON-RPC (an error page): nothing to learn from it
    }
    for (const message of Array.isArray(parsed) ? parsed : [parsed]) {
      if (typeof message !== "object" || message === null) continue;
      if ("id" in message && ("result" in message || "error" in message)) {
        if (this.#pending.delete(keyOf(message.id))) this.#answered++;
      }
      this.onMessage?.(message as Record<string, unknown>);
    }
  }
}

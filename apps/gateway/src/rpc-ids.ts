import { createParser, type EventSourceMessage } from "eventsource-parser";

export type JsonRpcId = string | number | null;
export type JsonRpcMessage = Record<string, unknown> & { jsonrpc: "2.0"; id?: JsonRpcId; method?: string };

/** upstream id → the client's own id, for one forwarded request. */
export type IdMap = ReadonlyMap<string, JsonRpcId>;

const isRequest = (message: JsonRpcMessage) => typeof message.method === "string" && "id" in message;

/**
 * Mints request ids unique across every client sharing a pooled upstream session.
 * JSON-RPC ids are unique only per client; two session-less clients of one user both send
 * id 1, and an MCP server keys in-flight requests by id, so one would get the other's answer.
 */
export class IdRewriter {
  #next = 0;
  constructor(private readonly prefix: string) {}

  rewrite(messages: readonly JsonRpcMessage[]): { messages: JsonRpcMessage[]; ids: IdMap } {
    const ids = new Map<string, JsonRpcId>();
    const rewritten = messages.map((message) => {
      if (!isRequest(message)) return message;
      const upstreamId = `${this.prefix}-${++this.#next}`;
      ids.set(upstreamId, message.id as JsonRpcId);
      return { ...message, id: upstreamId };
    });
    return { messages: rewritten, ids };
  }
}

/** Restores client ids in one JSON-RPC message or batch (as parsed JSON). */
export function restoreIds(value: unknown, ids: IdMap): unknown {
  if (Array.isArray(value)) return value.map((item) => restoreIds(item, ids));
  if (value && typeof value === "object" && "id" in value) {
    const message = value as JsonRpcMessage;
    const isResponse = "result" in message || "error" in message;
    if (isResponse && typeof message.id === "string" && ids.has(message.id)) {
      return { ...message, id: ids.get(message.id) };
    }
  }
  return value;
}

/** Restores client ids in a JSON body or one SSE event's data; anything not JSON passes on untouched. */
export function restoreIdsInText(text: string, ids: IdMap): string {
  try {
    return JSON.stringify(restoreIds(JSON.parse(text), ids));
  } catch {
    return text; // not JSON (an upstream error page): pass it on as it came
  }
}

function serializeEvent(event: EventSourceMessage): string {
  let out = "";
  if (event.id !== undefined) out += `id: ${event.id}\n`;
  if (event.event !== undefined) out += `event: ${event.event}\n`;
  for (const line of event.data.split("\n")) out += `data: ${line}\n`;
  return `${out}\n`;
}

/**
 * An SSE pass-through that restores client ids in each event's JSON-RPC payload as it
 * arrives (never waiting for the stream to end), keeping event ids, retry hints and comments.
 */
export function restoreIdsInSse(ids: IdMap): TransformStream<Uint8Array, Uint8Array> {
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  let emit: (text: string) => void = () => {};
  const parser = createParser({
    onEvent: (event) => emit(serializeEvent({ ...event, data: restoreIdsInText(event.data, ids) })),
    onRetry: (retry) => emit(`retry: ${retry}\n\n`),
    onComment: (comment) => emit(`: ${comment}\n\n`),
  });
  return new TransformStream({
    transform(chunk, controller) {
      emit = (text) => controller.enqueue(encoder.encode(text));
      parser.feed(decoder.decode(chunk, { stream: true }));
    },
    flush(controller) {
      emit = (text) => controller.enqueue(encoder.encode(text));
      parser.feed(decoder.decode());
      parser.reset({ consume: true });
    },
  });
}

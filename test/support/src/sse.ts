/** One event of a server-sent event stream, as a client sees it. */
export interface SseEvent {
  id: string | undefined;
  data: string;
}

export interface EventStream {
  status: number;
  /** Events with data received so far, in order (priming events and comments left out). */
  events: SseEvent[];
  /** The last event id the stream carried (priming events included), as a reconnecting client sends it. */
  lastEventId(): string | undefined;
  /** Resolves when the stream ended or broke. */
  ended: Promise<void>;
  close(): void;
}

/** A GET of an SSE stream read as a browser's EventSource would, without its reconnecting. */
export async function openEventStream(url: string, headers: Record<string, string>): Promise<EventStream> {
  const controller = new AbortController();
  const response = await fetch(url, {
    headers: { accept: "text/event-stream", ...headers },
    signal: controller.signal,
  });
  const events: SseEvent[] = [];
  let lastId: string | undefined;
  const read = async () => {
    if (!response.body) return;
    const decoder = new TextDecoder();
    let buffer = "";
    for await (const chunk of response.body) {
      buffer += decoder.decode(chunk, { stream: true });
      for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let id: string | undefined;
        const data: string[] = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("id:")) id = line.slice(3).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (id !== undefined) lastId = id;
        if (data.join("\n")) events.push({ id, data: data.join("\n") });
      }
    }
  };
  const ended = read().catch(() => {});
  return {
    status: response.status,
    events,
    lastEventId: () => lastId,
    ended,
    close: () => controller.abort(),
  };
}

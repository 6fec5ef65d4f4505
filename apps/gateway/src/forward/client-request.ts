import { EventEmitter } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";

/**
 * Reads a request body from Node's stream, refusing it past `limit` bytes (declared or sent):
 * no web Request, no web stream in between. Null means too large.
 */
export async function readBody(incoming: IncomingMessage, limit: number): Promise<string | null> {
  if (Number(incoming.headers["content-length"] ?? 0) > limit) return null;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of incoming as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * Fires `abort` when the client goes away before its answer is complete. undici accepts an
 * EventEmitter as `signal`; building a web AbortSignal per request cost 2% of the gateway's
 * CPU in the warm-path profile (BENCHMARKS.md). Its flag is not named `aborted`: undici 8
 * treats any signal with that property as a web AbortSignal (`addEventListener`).
 */
export class ClientGone extends EventEmitter {
  left = false;

  static watch(response: ServerResponse): ClientGone {
    const gone = new ClientGone();
    response.once("close", () => {
      if (!response.writableFinished) {
        gone.left = true;
        gone.emit("abort");
      }
    });
    return gone;
  }
}

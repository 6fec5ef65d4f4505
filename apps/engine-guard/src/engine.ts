import { Readable } from "node:stream";
import { Agent, type Dispatcher } from "undici";

export interface EngineCall {
  method: "GET" | "HEAD" | "POST" | "DELETE";
  /** Path and query, built by the guard from checked parts (never the client's raw URL). */
  path: string;
  body?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** Engine answers passed on as they are: the rest are hop-by-hop, or wrong once a body is rewritten. */
const PASSED_HEADERS = ["content-type", "api-version", "docker-experimental", "ostype", "server", "date"];

/** The Docker engine on its Unix socket, through one keep-alive undici Agent. */
export class Engine {
  readonly #agent: Agent;

  constructor(socketPath: string) {
    // No timeouts of our own: pulls, followed logs and `wait` legitimately stay open for long;
    // a client that leaves aborts the call through its signal.
    this.#agent = new Agent({ connect: { socketPath }, headersTimeout: 0, bodyTimeout: 0 });
  }

  call({ method, path, body, headers, signal }: EngineCall): Promise<Dispatcher.ResponseData> {
    return this.#agent.request({
      origin: "http://docker",
      method,
      path,
      headers: { ...headers, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body }),
      ...(signal ? { signal } : {}),
    });
  }

  /** A call whose answer the guard reads whole (inspect, list): JSON when the engine sent JSON. */
  async json(call: EngineCall): Promise<{ status: number; headers: Headers; body: unknown; text: string }> {
    const answer = await this.call(call);
    const text = await answer.body.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status: answer.statusCode, headers: passedHeaders(answer.headers), body, text };
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}

export function passedHeaders(from: Dispatcher.ResponseData["headers"]): Headers {
  const headers = new Headers();
  for (const name of PASSED_HEADERS) {
    const value = from[name];
    if (typeof value === "string") headers.set(name, value);
  }
  return headers;
}

/** Streams the engine's answer to the client as it arrives (pull progress, logs). */
export function streamed(answer: Dispatcher.ResponseData, method: string): Response {
  const headers = passedHeaders(answer.headers);
  const status = answer.statusCode;
  if (method === "HEAD" || status === 204 || status === 304) {
    answer.body.resume();
    return new Response(null, { status, headers });
  }
  return new Response(Readable.toWeb(answer.body) as ReadableStream<Uint8Array>, { status, headers });
}

import {
  type Attributes,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_URL_FULL,
} from "@opentelemetry/semantic-conventions";
import { z } from "zod";

/**
 * The OTEL_* variables the broker decides on itself; the SDK reads the other standard ones
 * (OTEL_EXPORTER_OTLP_HEADERS, OTEL_TRACES_SAMPLER(_ARG), OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_*,
 * timeouts) from the environment, as every OpenTelemetry SDK does.
 */
export const tracingFields = {
  /** Unset (with the next one): tracing is off and nothing is registered. */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url().optional(),
  /** Used as is; the one above gets `/v1/traces` appended (OTLP exporter specification). */
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.url().optional(),
  /** The spec's default is http/protobuf; gRPC is not built in (one exporter less to ship). */
  OTEL_EXPORTER_OTLP_PROTOCOL: z.enum(["http/protobuf", "http/json"]).default("http/protobuf"),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: z.enum(["http/protobuf", "http/json"]).optional(),
  OTEL_SERVICE_NAME: z.string().min(1).optional(),
};

export type TracingVariables = {
  OTEL_EXPORTER_OTLP_ENDPOINT?: string | undefined;
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?: string | undefined;
  OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf" | "http/json";
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL?: "http/protobuf" | "http/json" | undefined;
  OTEL_SERVICE_NAME?: string | undefined;
};

export interface Tracing {
  /** Where spans go, and how. */
  endpoint: string;
  protocol: "http/protobuf" | "http/json";
  /** Exports what is buffered now (tests, benchmarks). */
  flush(): Promise<void>;
  /** Exports what is buffered, then unregisters everything: tracing is off again. */
  shutdown(): Promise<void>;
}

/** The tracer while tracing is on; null means every helper below just runs its function. */
let tracer: Tracer | null = null;

/** The OTLP traces URL the variables name, or null: tracing stays off. */
export function tracesEndpoint(variables: TracingVariables): string | null {
  if (variables.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return variables.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  const base = variables.OTEL_EXPORTER_OTLP_ENDPOINT;
  return base ? `${base.replace(/\/+$/, "")}/v1/traces` : null;
}

/**
 * Registers the OpenTelemetry SDK for this process when an OTLP endpoint is configured, and
 * does nothing otherwise: then the SDK is not even loaded, the API's no-op tracer stays in
 * place and the span helpers below cost a function call. One provider per process.
 */
export async function startTracing(
  variables: TracingVariables,
  service: { name: string; version?: string | undefined },
): Promise<Tracing | null> {
  const endpoint = tracesEndpoint(variables);
  if (!endpoint) return null;
  const protocol = variables.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? variables.OTEL_EXPORTER_OTLP_PROTOCOL;
  const { provider, propagator } = await import("./tracing-sdk.js").then((sdk) =>
    sdk.createProvider({ endpoint, protocol, serviceName: variables.OTEL_SERVICE_NAME ?? service.name, ...service }),
  );
  // Trace context only, no baggage: the upstream sees `traceparent`/`tracestate`, which the
  // header allow-list passes anyway, and nothing else a client sent.
  provider.register({ propagator });
  tracer = provider.getTracer("mcp-broker", service.version);
  return {
    endpoint,
    protocol,
    flush: () => provider.forceFlush(),
    async shutdown() {
      tracer = null;
      await provider.shutdown();
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
}

/** Whether spans are being made (cheap; for callers that would build attributes otherwise). */
export function tracingOn(): boolean {
  return tracer !== null;
}

/** The active span when it records, else undefined: set attributes on it only then. */
export function recordingSpan(): Span | undefined {
  if (!tracer) return undefined;
  const span = trace.getActiveSpan();
  return span?.isRecording() ? span : undefined;
}

export interface SpanOptions<T> {
  kind?: SpanKind;
  /** Called only when the span records, so a request that is not traced builds no attributes. */
  attributes?: () => Attributes;
  /**
   * Ends the span later than when `work` resolves (a response whose body is still streaming):
   * called with the result and the span's `end`. Without it the span ends when `work` settles.
   */
  endWhen?: (result: T, end: () => void, span: Span) => void;
}

/**
 * Runs `work` in a span, child of the active one, ended when `work` settles; an error marks it
 * failed with the error's `code` or class name only (messages can carry upstream text). With
 * tracing off it is `work(undefined)`.
 */
export function inSpan<T>(name: string, work: (span?: Span) => Promise<T>, options: SpanOptions<T> = {}): Promise<T> {
  if (!tracer) return work();
  return tracer.startActiveSpan(name, { kind: options.kind ?? SpanKind.INTERNAL }, async (span) => {
    if (options.attributes && span.isRecording()) span.setAttributes(options.attributes());
    let result: T;
    try {
      result = await work(span);
    } catch (error) {
      failSpan(span, error);
      span.end();
      throw error;
    }
    if (options.endWhen) options.endWhen(result, () => span.end(), span);
    else span.end();
    return result;
  });
}

/** Marks a span failed, naming the error by its code or class, never by its message. */
export function failSpan(span: Span, error: unknown): void {
  const type = (error as { code?: unknown })?.code ?? (error as Error)?.name ?? "Error";
  span.setAttribute(ATTR_ERROR_TYPE, String(type));
  span.setStatus({ code: SpanStatusCode.ERROR, message: String(type) });
}

/** What an HTTP client library answers with: a status, and a body stream that closes when read or dropped. */
interface HttpAnswer {
  statusCode: number;
  body: { once(event: "close", listener: () => void): unknown };
}

/**
 * An HTTP call as a client span that lasts until the answer's body closes (streamed answers
 * included); `send` gets the headers with this span's `traceparent` to send instead of `headers`.
 */
export function inClientSpan<T extends HttpAnswer>(
  name: string,
  request: { method: string; url: string; headers: Record<string, string> },
  send: (headers: Record<string, string>) => Promise<T>,
): Promise<T> {
  if (!tracer) return send(request.headers);
  return inSpan(name, () => send(injectTraceContext(request.headers)), {
    kind: SpanKind.CLIENT,
    attributes: () => ({ [ATTR_HTTP_REQUEST_METHOD]: request.method, [ATTR_URL_FULL]: request.url }),
    endWhen: (answer, end, span) => {
      span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, answer.statusCode);
      answer.body.once("close", end);
    },
  });
}

type Carrier = Record<string, string | string[] | undefined>;

/**
 * Runs `work` in a server span whose parent is the caller's `traceparent` (W3C trace context),
 * if it sent one. `work` ends the span: a streamed answer ends after its handler returns.
 */
export function inServerSpan<T>(
  incoming: Carrier,
  name: string,
  work: (span?: Span) => Promise<T>,
  attributes?: () => Attributes,
): Promise<T> {
  if (!tracer) return work();
  const parent = propagation.extract(ROOT_CONTEXT, incoming, {
    keys: (carrier) => Object.keys(carrier),
    get: (carrier, key) => carrier[key],
  });
  const span = tracer.startSpan(name, { kind: SpanKind.SERVER }, parent);
  if (attributes && span.isRecording()) span.setAttributes(attributes());
  return context.with(trace.setSpan(parent, span), () => work(span));
}

/** Writes the active span's `traceparent` (and `tracestate`) into outgoing headers; off: untouched. */
export function injectTraceContext(headers: Record<string, string>): Record<string, string> {
  if (!tracer) return headers;
  const withContext = { ...headers };
  propagation.inject(context.active(), withContext);
  return withContext;
}

export { type Attributes, type Span, SpanKind };

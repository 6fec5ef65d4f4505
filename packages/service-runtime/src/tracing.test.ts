import { context, type ProxyTracerProvider, propagation, trace } from "@opentelemetry/api";
import { z } from "zod";
import { parseEnv } from "./config.js";
import {
  injectTraceContext,
  inServerSpan,
  inSpan,
  startTracing,
  tracesEndpoint,
  tracingFields,
  tracingOn,
} from "./tracing.js";

const variables = (env: Record<string, string>) => parseEnv(z.object(tracingFields), env);
const delegate = () => (trace.getTracerProvider() as ProxyTracerProvider).getDelegate();
const CLIENT_PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

describe("tracing set-up (docs/architecture.md#tracing)", () => {
  it("registers nothing without an OTLP endpoint: no provider, no context manager, no propagation", async () => {
    const noop = delegate();
    expect(await startTracing(variables({ OTEL_SERVICE_NAME: "x" }), { name: "test" })).toBeNull();
    expect(tracingOn()).toBe(false);
    expect(delegate()).toBe(noop);
    expect(trace.getTracer("t").startSpan("s").isRecording()).toBe(false);
    // The helpers run the work as is: no span handed in, headers returned untouched.
    const headers = { traceparent: CLIENT_PARENT };
    expect(injectTraceContext(headers)).toBe(headers);
    await expect(inSpan("s", async (span) => span)).resolves.toBeUndefined();
    await expect(inServerSpan(headers, "s", async (span) => span)).resolves.toBeUndefined();
    const carrier: Record<string, string> = {};
    propagation.inject(context.active(), carrier);
    expect(carrier).toEqual({});
  });

  it("names the traces URL as the OTLP exporter specification says", () => {
    expect(tracesEndpoint(variables({}))).toBeNull();
    expect(tracesEndpoint(variables({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/" }))).toBe(
      "http://collector:4318/v1/traces",
    );
    const both = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:4318", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://b/t" };
    expect(tracesEndpoint(variables(both))).toBe("http://b/t");
  });

  it("refuses a protocol it cannot export with, by name", () => {
    expect(() => variables({ OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" })).toThrow(/OTEL_EXPORTER_OTLP_PROTOCOL/);
  });

  // Exporting is test/e2e's tracing.test.ts (the exporter loads node:http by a dynamic import,
  // which jest's CommonJS sandbox refuses): here the sampler keeps every span from recording.
  it("with an endpoint, registers a provider and W3C propagation, continues the caller's trace, and unregisters on shutdown", async () => {
    process.env.OTEL_TRACES_SAMPLER = "always_off";
    const noop = delegate();
    const tracing = await startTracing(variables({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9" }), {
      name: "test",
    });
    expect(tracing?.protocol).toBe("http/protobuf");
    expect(delegate()).not.toBe(noop);
    const sent = await inServerSpan({ traceparent: CLIENT_PARENT }, "server", async (server) => {
      const inner = await inSpan("child", async () => injectTraceContext({ accept: "*/*" }));
      server?.end();
      return inner;
    });
    // Same trace as the caller's, a new span id (the child's); not sampled (always_off).
    expect(sent.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-(?!b7ad6b7169203331)[0-9a-f]{16}-00$/);
    expect(sent.accept).toBe("*/*");
    await tracing?.shutdown();
    delete process.env.OTEL_TRACES_SAMPLER;
    expect(tracingOn()).toBe(false);
    expect(injectTraceContext({})).toEqual({});
  });
});

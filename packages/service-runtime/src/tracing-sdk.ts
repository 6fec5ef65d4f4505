import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter as JsonExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as ProtobufExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from "@opentelemetry/semantic-conventions";

/**
 * The OpenTelemetry SDK, loaded by `startTracing` only when tracing is on. The exporter and
 * batch processor read the other standard variables themselves (OTEL_EXPORTER_OTLP_HEADERS,
 * _TIMEOUT, _COMPRESSION, OTEL_BSP_*), the provider OTEL_TRACES_SAMPLER(_ARG) and span limits.
 */
export function createProvider(options: {
  endpoint: string;
  protocol: "http/protobuf" | "http/json";
  serviceName: string;
  version?: string | undefined;
}) {
  const { endpoint, protocol } = options;
  const exporter =
    protocol === "http/json" ? new JsonExporter({ url: endpoint }) : new ProtobufExporter({ url: endpoint });
  // OTEL_RESOURCE_ATTRIBUTES (envDetector) adds to, and may override, the service's own name.
  const resource = defaultResource()
    .merge(
      resourceFromAttributes({
        [ATTR_SERVICE_NAME]: options.serviceName,
        ...(options.version ? { [ATTR_SERVICE_VERSION]: options.version } : {}),
      }),
    )
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new NodeTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(exporter)] });
  return { provider, propagator: new W3CTraceContextPropagator() };
}

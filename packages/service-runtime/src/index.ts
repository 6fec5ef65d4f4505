export { CodedError } from "./coded-error.js";
export { ConfigError, envFields, parseEnv } from "./config.js";
export { type FetchHandler, type Listening, listen } from "./listen.js";
export { type MetricsRegistry, monitoringRoutes } from "./monitoring.js";
export { freePort } from "./ports.js";
export {
  parseSentinel,
  type RedisTarget,
  type RedisVariables,
  redisTarget,
  type SentinelAddress,
} from "./redis-target.js";
export {
  type Closable,
  runService,
  type ServiceDefinition,
  type ServiceLogger,
  type ServiceProcess,
} from "./run-service.js";
export {
  type Attributes,
  failSpan,
  inClientSpan,
  injectTraceContext,
  inServerSpan,
  inSpan,
  recordingSpan,
  type Span,
  SpanKind,
  type SpanOptions,
  startTracing,
  type Tracing,
  type TracingVariables,
  tracesEndpoint,
  tracingFields,
  tracingOn,
} from "./tracing.js";

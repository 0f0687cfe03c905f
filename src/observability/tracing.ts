// OpenTelemetry tracing, opt-in (OTEL_EXPORTER_OTLP_ENDPOINT). Instrumented code uses only @opentelemetry/api: with no
// tracer provider registered (the default) every span is the API's non-recording no-op, and the code that would
// build attributes or wrap contexts checks `isRecording()` first, so a gateway without tracing pays next to nothing.
// The SDK and the exporter are loaded only when tracing is turned on.
//
// One trace per HTTP request: the request's server span (src/http/observe.ts) is the parent of the GraphQL operation's
// span, of every SQL statement run for it (src/db/client.ts) and of every HeyGen attempt (src/observability/upstream.ts).
// Every span started under a request carries the request id (`gateway.request_id`), the one the request log, the
// audit trail and the X-Request-Id answer header carry.
import { context, createContextKey, propagation, trace, type Context, type Tracer } from '@opentelemetry/api';
import type { Sampler, Span, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace';

/** Attribute naming the gateway's request id on every span started while serving a request. */
export const REQUEST_ID_ATTRIBUTE = 'gateway.request_id';
/** Where the request id sits in the OpenTelemetry context of a request. */
export const REQUEST_ID_KEY = createContextKey('gateway.request_id');

/** The gateway's tracer (a no-op until a provider is registered, then that provider's). */
export const tracer: Tracer = trace.getTracer('heygen-gateway');

/** A context with the request id, for the spans started under it. */
export function withRequestId(parent: Context, requestId: string): Context {
  return parent.setValue(REQUEST_ID_KEY, requestId);
}

export type SamplerName = 'always_on' | 'always_off' | 'traceidratio' | 'parentbased_always_on' | 'parentbased_always_off' | 'parentbased_traceidratio';

export interface TracingSettings {
  /** True when an OTLP endpoint is configured (and OTEL_SDK_DISABLED is not true). */
  readonly enabled: boolean;
  /** `service.name` of the spans (OTEL_SERVICE_NAME). */
  readonly serviceName: string;
  /** OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG (ratio, for the traceidratio samplers). */
  readonly sampler: SamplerName;
  readonly samplerRatio: number;
}

export interface Tracing {
  /** Exports what is buffered. */
  flush(): Promise<void>;
  /** Exports what is buffered and unregisters the provider (the API is a no-op again). */
  shutdown(): Promise<void>;
}

/** Puts the request id of the context a span starts in on the span (SQL and HeyGen spans need not know it). */
class RequestIdSpanProcessor implements SpanProcessor {
  onStart(span: Span, parentContext: Context): void {
    const requestId = parentContext.getValue(REQUEST_ID_KEY);
    if (typeof requestId === 'string') span.setAttribute(REQUEST_ID_ATTRIBUTE, requestId);
  }
  onEnd(): void {}
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

export interface StartTracingOptions {
  /** Where spans go: the OTLP/HTTP exporter (configured by the standard OTEL_EXPORTER_OTLP_* variables) by default. */
  exporter?: SpanExporter;
  /** Export each span as it ends instead of in batches (tests). */
  immediate?: boolean;
}

/**
 * Registers a tracer provider, the AsyncLocalStorage context manager and the W3C trace-context propagator (an
 * incoming `traceparent` continues the caller's trace). Null when tracing is off: nothing is loaded or registered.
 */
export async function startTracing(settings: TracingSettings, opts: StartTracingOptions = {}): Promise<Tracing | null> {
  if (!settings.enabled && !opts.exporter) return null;
  const sdk = await import('@opentelemetry/sdk-trace');
  const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks');
  const { W3CTraceContextPropagator } = await import('@opentelemetry/core');
  const { detectResources, envDetector, resourceFromAttributes } = await import('@opentelemetry/resources');
  let exporter = opts.exporter;
  if (!exporter) {
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
    // Endpoint, headers (credentials of the tracing backend), timeout and compression come from the standard
    // OTEL_EXPORTER_OTLP_* variables, read by the exporter itself; they are never logged.
    exporter = new OTLPTraceExporter();
  }
  const ratio = new sdk.TraceIdRatioBasedSampler(settings.samplerRatio);
  const samplers: Record<SamplerName, () => Sampler> = {
    always_on: () => new sdk.AlwaysOnSampler(),
    always_off: () => new sdk.AlwaysOffSampler(),
    traceidratio: () => ratio,
    parentbased_always_on: () => new sdk.ParentBasedSampler({ root: new sdk.AlwaysOnSampler() }),
    parentbased_always_off: () => new sdk.ParentBasedSampler({ root: new sdk.AlwaysOffSampler() }),
    parentbased_traceidratio: () => new sdk.ParentBasedSampler({ root: ratio }),
  };
  const provider = new sdk.TracerProvider({
    // OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME (from the environment) win over the configured name.
    resource: resourceFromAttributes({ 'service.name': settings.serviceName }).merge(detectResources({ detectors: [envDetector] })),
    sampler: samplers[settings.sampler](),
    // SQL text is the longest attribute; a bulk statement is cut rather than exported whole.
    spanLimits: { attributeValueLengthLimit: 4096 },
    spanProcessors: [
      new RequestIdSpanProcessor(),
      opts.immediate ? new sdk.SimpleSpanProcessor({ exporter }) : new sdk.BatchSpanProcessor({ exporter }),
    ],
  });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  return {
    flush: () => provider.forceFlush(),
    async shutdown() {
      await provider.shutdown();
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
}

// What the gateway records of each HTTP attempt to HeyGen: a latency observation by operation and status, and a
// client span (under the request or operation that made the call, or a trace of its own for background work).
// Spans carry the operation, the method, the attempt and the status; never the URL's query, a body or a header.
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { Histogram } from 'prom-client';
import type { HeygenAttempt, HeygenAttemptResult, HeygenObserver } from '../heygen/types.js';
import { tracer } from './tracing.js';

/** Status label values of HTTP codes, made once (no string per call). */
const STATUS_LABELS = new Map<number, string>();
function statusLabel(result: HeygenAttemptResult): string {
  if (result.error !== null) return result.error;
  const status = result.status ?? 0;
  let label = STATUS_LABELS.get(status);
  if (label === undefined) {
    label = String(status);
    if (STATUS_LABELS.size < 1000) STATUS_LABELS.set(status, label);
  }
  return label;
}

export function observeHeygenCalls(duration: Histogram<'operation' | 'status'>): HeygenObserver {
  return (attempt: HeygenAttempt) => {
    const started = performance.now();
    const span = tracer.startSpan(`HeyGen ${attempt.op}`, {
      kind: SpanKind.CLIENT,
      attributes: { 'heygen.operation': attempt.op, 'http.request.method': attempt.method, 'heygen.attempt': attempt.attempt },
    });
    return (result: HeygenAttemptResult) => {
      const status = statusLabel(result);
      duration.observe({ operation: attempt.op, status }, (performance.now() - started) / 1000);
      if (!span.isRecording()) return;
      if (result.status !== null) span.setAttribute('http.response.status_code', result.status);
      // A 4xx is HeyGen's answer (a refusal the caller sees), not a failed call; 5xx, 429 and no answer are.
      if (result.error !== null || (result.status !== null && (result.status >= 500 || result.status === 429))) {
        span.setAttribute('error.type', result.error ?? status);
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      span.end();
    };
  };
}

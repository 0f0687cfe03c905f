// Load shedding: each process serves at most HTTP_MAX_IN_FLIGHT requests at once; one more is answered at once with
// 503, Retry-After and a typed body (OVERLOADED), before its body is read or anything is parsed, authenticated or
// written. A gateway that has fallen behind (more arriving than it can admit) would otherwise keep every waiting
// request — its body, its parsed document, its context, its promises — in memory for as long as the queue is long,
// and the memory of the process would grow with the offered load instead of with its capacity. Nothing of a shed
// request happened: the caller retries it as is (with the same idempotency key for a submission).
// Probes (/healthz, /readyz, /metrics) are never shed: an overloaded process is busy, not dead. HeyGen's webhooks are
// shed first, once half the bound is in flight: each is only a hint that a job may have ended (the poller reads every
// job in flight anyway), so the callers' own requests keep the other half (a burst of jobs finishing at once must not
// turn a campaign's submissions away).
// A request counts from its first middleware until its answer is ready (a streamed answer, such as a subscription's
// event stream, stops counting once its stream starts; subscriptions are bounded per caller on their own).
import type { Context, Next } from 'hono';
import type { GatewayMetrics } from '../observability/metrics.js';

/** What shed callers are told to wait: the queue that caused the shedding drains within about a second. */
export const OVERLOADED_RETRY_AFTER_SECONDS = 1;
const MESSAGE = 'the gateway is serving as many requests as it can; retry after the delay given (with the same idempotencyKey for submitJob)';
const PROBES = new Set(['/healthz', '/readyz', '/metrics']);
const HINTS = '/webhooks/';

/** The 503 of a shed request, in the error shape of the surface it was sent to. */
export function overloadedResponse(path: string): Response {
  const headers = { 'retry-after': String(OVERLOADED_RETRY_AFTER_SECONDS) };
  if (path === '/graphql') {
    return Response.json(
      { errors: [{ message: MESSAGE, extensions: { code: 'OVERLOADED', retryAfterSeconds: OVERLOADED_RETRY_AFTER_SECONDS } }] },
      { status: 503, headers },
    );
  }
  if (path === '/v3' || path.startsWith('/v3/')) {
    // HeyGen's error envelope (src/http/v3/errors.ts).
    return Response.json({ error: { code: 'service_unavailable', message: MESSAGE, param: null, doc_url: null } }, { status: 503, headers });
  }
  return Response.json({ error: MESSAGE, code: 'OVERLOADED', retryAfterSeconds: OVERLOADED_RETRY_AFTER_SECONDS }, { status: 503, headers });
}

/**
 * A Hono middleware that bounds the requests in flight (`limit` 0: no bound): it serves the request (`next`) or sets
 * the shed answer. Run inside the request-observing middleware (src/http/observe.ts), so that a shed request is
 * logged and measured like any other.
 */
export function shedOverload(limit: number, metrics: Pick<GatewayMetrics, 'httpRequestsInFlight' | 'httpRequestsShed'>): (c: Context, next: Next) => Promise<void> {
  let inFlight = 0;
  return async (c, next) => {
    if (PROBES.has(c.req.path)) return next();
    if (limit > 0 && inFlight >= (c.req.path.startsWith(HINTS) ? Math.ceil(limit / 2) : limit)) {
      metrics.httpRequestsShed.inc();
      c.res = overloadedResponse(c.req.path);
      return;
    }
    inFlight++;
    metrics.httpRequestsInFlight.inc();
    try {
      await next();
    } finally {
      inFlight--;
      metrics.httpRequestsInFlight.dec();
    }
  };
}

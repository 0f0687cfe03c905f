// The process's own Prometheus instruments: counted as things happen in this process (admissions, HeyGen calls,
// HTTP requests, webhook signatures). Figures that every replica must report alike (jobs, holds, the queue) are read
// from PostgreSQL at scrape time instead (src/http/metrics.ts). Names follow Prometheus conventions: base units,
// `_total` on counters, `_seconds` only for time. Credit-seconds are money, not time: they are named `_credits`.
// Instruments register with no registry here: each HTTP app's registry adds them (tests run several in one process).
import { Counter, Gauge, Histogram } from 'prom-client';

/** HTTP requests take milliseconds (a probe) to seconds (a submitJob that reads media and forwards). */
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** HeyGen answers in tens of milliseconds to seconds; an attempt is cut at HEYGEN_TIMEOUT_MS (30 s by default). */
const UPSTREAM_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface GatewayMetrics {
  /** submitJob admissions by outcome (admitted, refused, rejected) and reason. */
  readonly admissions: Counter<'outcome' | 'reason'>;
  /** Refusals by a cap, by project, refusing unit and reason (budget, pool, concurrency). */
  readonly admissionRefusals: Counter<'project' | 'unit' | 'reason'>;
  /** Each HTTP attempt to HeyGen, by operation and status (HTTP code, or timeout / network_error / response_too_large). */
  readonly heygenRequestDuration: Histogram<'operation' | 'status'>;
  /** Each HTTP request served, by method, route pattern and status. */
  readonly httpRequestDuration: Histogram<'method' | 'route' | 'status'>;
  /** HTTP requests being served now (probes excepted), bounded by HTTP_MAX_IN_FLIGHT (src/http/overload.ts). */
  readonly httpRequestsInFlight: Gauge;
  /** HTTP requests shed (503 OVERLOADED) because HTTP_MAX_IN_FLIGHT were already in flight. */
  readonly httpRequestsShed: Counter;
  /** Webhooks to a registered endpoint refused for their signature, by reason (missing, invalid). */
  readonly webhookVerificationFailures: Counter<'reason'>;
  /** Outbox delivery attempts by topic (app_callback, …) and outcome (delivered, failed, gave_up). */
  readonly outboxDeliveries: Counter<'topic' | 'outcome'>;
  /** Jobs this process's dispatcher took from the concurrency queue and started, by account. */
  readonly queueDispatches: Counter<'account'>;
  /** Trims of the memory malloc keeps freed (src/background/memory-trim.ts), by whether any was released. */
  readonly memoryTrims: Counter<'released'>;
  /** Bytes free in malloc's arenas at the trim's last look (before it trimmed). */
  readonly mallocFreeBytes: Gauge;
}

/** Series that exist from the start at 0, so that rate() and increase() see their first event. */
const INITIAL_ADMISSIONS = [
  ['admitted', 'new'],
  ['admitted', 'replayed'],
  ['admitted', 'queued'],
  ['refused', 'budget'],
  ['refused', 'pool'],
  ['refused', 'concurrency'],
  ['rejected', 'validation'],
] as const;

export function createGatewayMetrics(): GatewayMetrics {
  const metrics = makeMetrics();
  for (const [outcome, reason] of INITIAL_ADMISSIONS) metrics.admissions.inc({ outcome, reason }, 0);
  for (const reason of ['missing', 'invalid']) metrics.webhookVerificationFailures.inc({ reason }, 0);
  for (const outcome of ['delivered', 'failed', 'gave_up']) metrics.outboxDeliveries.inc({ topic: 'app_callback', outcome }, 0);
  for (const released of ['true', 'false']) metrics.memoryTrims.inc({ released }, 0);
  return metrics;
}

function makeMetrics(): GatewayMetrics {
  return {
    admissions: new Counter({
      name: 'gateway_admissions_total',
      help: 'submitJob admissions by outcome and reason: admitted (new, replayed, queued), refused by a cap (budget, pool, concurrency, policy, rate_limit), rejected (validation, not_found, forbidden, idempotency_conflict, upstream_error, unavailable, error).',
      labelNames: ['outcome', 'reason'] as const,
      registers: [],
    }),
    admissionRefusals: new Counter({
      name: 'gateway_admission_refusals_total',
      help: 'Admissions refused by a cap: reason budget (a HARD budget), pool (the account pool), concurrency, policy (a unit policy) or rate_limit; unit is the refusing unit id.',
      labelNames: ['project', 'unit', 'reason'] as const,
      registers: [],
    }),
    heygenRequestDuration: new Histogram({
      name: 'gateway_heygen_request_duration_seconds',
      help: 'Duration of each HTTP attempt to the HeyGen API (retries count once each), by operation and status: the HTTP status code, or timeout, network_error, response_too_large.',
      labelNames: ['operation', 'status'] as const,
      buckets: UPSTREAM_BUCKETS,
      registers: [],
    }),
    httpRequestDuration: new Histogram({
      name: 'gateway_http_request_duration_seconds',
      help: 'Duration of each HTTP request served, until its answer is ready, by method, route pattern (unmatched: no route) and status code.',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: HTTP_BUCKETS,
      registers: [],
    }),
    httpRequestsInFlight: new Gauge({
      name: 'gateway_http_requests_in_flight',
      help: 'HTTP requests this process is serving now (probes excepted); at HTTP_MAX_IN_FLIGHT, more are shed.',
      registers: [],
    }),
    httpRequestsShed: new Counter({
      name: 'gateway_http_requests_shed_total',
      help: 'HTTP requests answered 503 OVERLOADED (with Retry-After) without being served, because HTTP_MAX_IN_FLIGHT requests were in flight.',
      registers: [],
    }),
    webhookVerificationFailures: new Counter({
      name: 'gateway_webhook_verification_failures_total',
      help: 'Webhooks to a registered endpoint refused (401) for their signature: reason missing (no signature header) or invalid.',
      labelNames: ['reason'] as const,
      registers: [],
    }),
    outboxDeliveries: new Counter({
      name: 'gateway_outbox_deliveries_total',
      help: 'Outbox delivery attempts made by this process, by topic (app_callback) and outcome: delivered, failed (retried later) or gave_up (the last attempt, or one that cannot succeed).',
      labelNames: ['topic', 'outcome'] as const,
      registers: [],
    }),
    queueDispatches: new Counter({
      name: 'gateway_concurrency_queue_dispatches_total',
      help: "Jobs this process's dispatcher took from the concurrency queue (QUEUED) and started, by account name.",
      labelNames: ['account'] as const,
      registers: [],
    }),
    memoryTrims: new Counter({
      name: 'gateway_memory_trims_total',
      help: 'Times this process gave the memory malloc kept freed back to the system (MEMORY_TRIM_INTERVAL_MS, glibc only), by whether any was released.',
      labelNames: ['released'] as const,
      registers: [],
    }),
    mallocFreeBytes: new Gauge({
      name: 'gateway_malloc_free_bytes',
      help: "Bytes free in glibc malloc's arenas at the memory trim's last look, before it trimmed (MEMORY_TRIM_INTERVAL_MS; 0 until it first looks, and where it is off or not glibc).",
      registers: [],
    }),
  };
}

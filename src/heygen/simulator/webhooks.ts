import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';

export type DeliveryOutcome = 'pending' | 'delivered' | 'failed' | 'lost';

export interface WebhookDeliveryRecord {
  eventId: string;
  eventType: string;
  jobId: string;
  url: string;
  /** `endpoint`: a registered, signed endpoint; `callback_url`: the job's own URL, unsigned. */
  target: 'endpoint' | 'callback_url';
  endpointId: string | null;
  signed: boolean;
  body: string;
  attempts: number;
  outcome: DeliveryOutcome;
  lastStatus: number | null;
  lastError: string | null;
}

export interface WebhookCounters {
  attempts: number;
  delivered: number;
  failed: number;
  lost: number;
}

export interface DeliveryRequest {
  eventId: string;
  eventType: string;
  jobId: string;
  url: string;
  target: 'endpoint' | 'callback_url';
  endpointId: string | null;
  body: string;
  /** The endpoint secret; null sends the body unsigned. */
  secret: string | null;
  /** Decided by the caller's seeded PRNG: the delivery is recorded but never sent. */
  lost: boolean;
}

export interface DeliveryPolicy {
  signatureHeader: string;
  maxAttempts: number;
  retryBaseMs: number;
  timeoutMs: number;
}

/** Lowercase hex HMAC-SHA256 of the raw body, keyed with the whole secret string (`whsec_…`). */
export function signWebhookBody(secret: string, rawBody: string): string {
  return createHmac('sha256', secret).update(rawBody).digest('hex');
}

// Enough history for tests and the demo without growing without bound in benchmarks.
const MAX_RECORDS = 10_000;

export class WebhookDispatcher {
  private controller = new AbortController();
  private readonly inFlight = new Set<Promise<void>>();
  private records: WebhookDeliveryRecord[] = [];
  private counters: WebhookCounters = { attempts: 0, delivered: 0, failed: 0, lost: 0 };

  constructor(private readonly policy: () => DeliveryPolicy) {}

  dispatch(request: DeliveryRequest): void {
    const record: WebhookDeliveryRecord = {
      eventId: request.eventId,
      eventType: request.eventType,
      jobId: request.jobId,
      url: request.url,
      target: request.target,
      endpointId: request.endpointId,
      signed: request.secret !== null,
      body: request.body,
      attempts: 0,
      outcome: 'pending',
      lastStatus: null,
      lastError: null,
    };
    this.records.push(record);
    if (this.records.length > MAX_RECORDS) this.records.splice(0, this.records.length - MAX_RECORDS);
    if (request.lost) {
      record.outcome = 'lost';
      this.counters.lost += 1;
      return;
    }
    // Counters are bound now so that a delivery aborted by reset() cannot count into the fresh ones.
    const task = this.deliver(record, request.secret, this.controller.signal, this.counters).finally(() => {
      this.inFlight.delete(task);
    });
    this.inFlight.add(task);
  }

  history(): WebhookDeliveryRecord[] {
    return this.records.map((r) => ({ ...r }));
  }

  stats(): WebhookCounters & { pending: number } {
    return { ...this.counters, pending: this.inFlight.size };
  }

  /** Resolves once every delivery started so far has succeeded, failed for good, or been aborted. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** Aborts pending deliveries and forgets the history. */
  reset(): void {
    this.controller.abort();
    this.controller = new AbortController();
    this.records = [];
    this.counters = { attempts: 0, delivered: 0, failed: 0, lost: 0 };
  }

  async close(): Promise<void> {
    this.controller.abort();
    await this.idle();
  }

  private async deliver(
    record: WebhookDeliveryRecord,
    secret: string | null,
    signal: AbortSignal,
    counters: WebhookCounters,
  ): Promise<void> {
    const policy = this.policy();
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'heygen-simulator',
    };
    if (secret !== null) headers[policy.signatureHeader] = signWebhookBody(secret, record.body);

    for (let attempt = 1; attempt <= policy.maxAttempts; attempt++) {
      if (signal.aborted) break;
      record.attempts = attempt;
      counters.attempts += 1;
      try {
        const status = await postOnce(record.url, record.body, headers, policy.timeoutMs, signal);
        record.lastStatus = status;
        record.lastError = null;
        if (status >= 200 && status < 300) {
          record.outcome = 'delivered';
          counters.delivered += 1;
          return;
        }
      } catch (error) {
        record.lastError = error instanceof Error ? error.message : String(error);
      }
      if (attempt < policy.maxAttempts) await sleep(policy.retryBaseMs * 2 ** (attempt - 1), signal);
    }
    record.outcome = 'failed';
    counters.failed += 1;
  }
}

function postOnce(
  url: string,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const transport = target.protocol === 'https:' ? https : http;
    // agent: false so that no pooled socket outlives the simulator.
    const req = transport.request(
      target,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': Buffer.byteLength(body) },
        agent: false,
        timeout: timeoutMs,
        signal,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`webhook timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    timer.unref();
    signal.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

// The bench's load generator, run as its own process (node --import tsx) so that generating load never takes event
// loop time from the gateway or the simulator it measures. Reads one plan as JSON from argv[2], prints one result as
// JSON on stdout.
//
// open loop: requests are sent at fixed intervals whatever the answers do, and each latency is measured from the time
// the request was DUE, not from when it went out (no coordinated omission: a stalled server is charged for the wait).
// closed loop: `clients` connections each send their next request as soon as the previous answer arrived.
// Latency percentiles are of the successful answers; failures (a shed request's 503, an error) are counted apart.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import hdr from 'hdr-histogram-js';

export interface LoadPlan {
  url: string;
  path: string;
  headers: Record<string, string>;
  /** Body template: every `__UUID__` is replaced by a new UUID per request (idempotency keys). */
  body: string;
  /** Header whose value is a new UUID per request (e.g. HeyGen's Idempotency-Key), if any. */
  uuidHeader?: string;
  /** A 2xx answer counts as a success only if its body contains this text. */
  expect: string;
  mode: 'open' | 'closed';
  /** open: requests per second. */
  rate?: number;
  /** closed: concurrent clients. */
  clients?: number;
  /** Stop after this long (ms) ... */
  durationMs?: number;
  /** ... or after this many requests (closed loop). */
  total?: number;
}

export interface LoadResult {
  sent: number;
  ok: number;
  failed: number;
  /** First failure seen (status and start of the body), for the report. */
  firstFailure: string | null;
  elapsedMs: number;
  /** Successful answers per second over the run. */
  throughput: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

async function run(plan: LoadPlan): Promise<LoadResult> {
  const target = new URL(plan.path, plan.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: plan.mode === 'closed' ? plan.clients! : 256 });
  // Microseconds, 1 µs .. 120 s, 3 significant digits.
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
  let sent = 0;
  let ok = 0;
  let failed = 0;
  let firstFailure: string | null = null;

  const once = (dueAt: number): Promise<void> =>
    new Promise((resolve) => {
      sent++;
      const body = plan.body.includes('__UUID__') ? plan.body.replaceAll('__UUID__', randomUUID()) : plan.body;
      const headers: Record<string, string | number> = { ...plan.headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
      if (plan.uuidHeader) headers[plan.uuidHeader] = randomUUID();
      const req = http.request(target, { method: 'POST', agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const micros = Math.max(1, Math.round((performance.now() - dueAt) * 1000));
          const text = Buffer.concat(chunks).toString();
          // Latencies are those of successful answers: a refusal answered at once (a 503 of load shedding) is
          // counted as failed, not as a fast answer.
          if (res.statusCode! >= 200 && res.statusCode! < 300 && text.includes(plan.expect)) {
            ok++;
            histogram.recordValue(micros);
          } else {
            failed++;
            firstFailure ??= `${res.statusCode} ${text.slice(0, 300)}`;
          }
          resolve();
        });
        res.on('error', () => resolve());
      });
      req.on('error', (error) => {
        failed++;
        firstFailure ??= String(error);
        resolve();
      });
      req.end(body);
    });

  const started = performance.now();
  if (plan.mode === 'open') {
    const interval = 1000 / plan.rate!;
    const count = Math.max(1, Math.round((plan.durationMs! / 1000) * plan.rate!));
    const inFlight: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      const due = started + i * interval;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      inFlight.push(once(due));
    }
    await Promise.all(inFlight);
  } else {
    const deadline = plan.durationMs !== undefined ? started + plan.durationMs : Infinity;
    let remaining = plan.total ?? Infinity;
    const client = async () => {
      while (performance.now() < deadline && remaining > 0) {
        remaining--;
        await once(performance.now());
      }
    };
    await Promise.all(Array.from({ length: plan.clients! }, client));
  }
  const elapsedMs = performance.now() - started;
  agent.destroy();
  const ms = (micros: number) => Math.round(micros) / 1000;
  return {
    sent,
    ok,
    failed,
    firstFailure,
    elapsedMs: Math.round(elapsedMs),
    throughput: Math.round((ok / elapsedMs) * 1000 * 10) / 10,
    p50Ms: ms(histogram.getValueAtPercentile(50)),
    p95Ms: ms(histogram.getValueAtPercentile(95)),
    p99Ms: ms(histogram.getValueAtPercentile(99)),
    maxMs: ms(histogram.maxValue),
    meanMs: ms(histogram.mean),
  };
}

const plan = JSON.parse(process.argv[2]!) as LoadPlan;
const result = await run(plan);
process.stdout.write(`${JSON.stringify(result)}\n`);

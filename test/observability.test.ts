// Observability: the request log line, the request id, Prometheus metrics (checked by a strict exposition parser),
// and OpenTelemetry traces (in memory through the real HTTP server, and over OTLP/HTTP from a real gateway process).
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryRows } from '../src/db/client.js';
import { dispatchAccount, expireQueuedJobs } from '../src/jobs/queue.js';
import { settleJob } from '../src/jobs/settlement.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { signWebhookBody } from '../src/heygen/simulator/server.js';
import { startTracing, type Tracing } from '../src/observability/tracing.js';
import { startHarness, type Harness } from './support/harness.js';
import { avatarRequest, createTree, setBudget, type Tree } from './support/fixtures.js';
import { parsePrometheusText, type Family } from './support/prometheus-text.js';
import { spawnGateway } from './support/processes.js';

const API_KEY = 'sk_test_primary_key_0001';
const WEBHOOK_SECRET = 'whsec_observability_0123456789';
const IDEMPOTENCY_KEY = 'obs-idempotency-key-7f3a9c';
const SCRIPT = Array.from({ length: 20 }, (_, i) => `observed${i}`).join(' ');

const SUBMIT = `mutation SubmitJob($input: SubmitJobInput!) {
  submitJob(input: $input) {
    __typename
    ... on SubmitJobPayload { replayed job { id status } }
    ... on Error { message code }
  }
}`;

const memory = new InMemorySpanExporter();
let tracing: Tracing;
let h: Harness;
let tree: Tree;
let accountUuid: string;

beforeAll(async () => {
  // The test's tracer provider, registered as the gateway registers its own (with an in-memory exporter).
  tracing = (await startTracing({ enabled: true, serviceName: 'gateway-test', sampler: 'parentbased_always_on', samplerRatio: 1 }, { exporter: memory, immediate: true }))!;
  h = await startHarness({ workers: false });
  tree = await createTree(h, { webhookSecret: WEBHOOK_SECRET });
  accountUuid = decodeGlobalID(tree.accountId).id;
}, 60_000);
afterAll(async () => {
  await h?.close();
  await tracing?.shutdown();
});

async function submit(input: Record<string, unknown>, headers: Record<string, string> = {}) {
  const res = await fetch(`${h.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${h.adminToken}`, ...headers },
    body: JSON.stringify({ query: SUBMIT, variables: { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest(SCRIPT), ...input } } }),
  });
  return { res, body: (await res.json()) as { data: { submitJob: any } } };
}

/** The request log lines (msg "request"), parsed. */
function requestLines(): Record<string, any>[] {
  return h.logs.map((l) => JSON.parse(l) as Record<string, any>).filter((l) => l.msg === 'request');
}

async function scrape(): Promise<{ text: string; families: Map<string, Family> }> {
  const res = await fetch(`${h.url}/metrics`);
  expect(res.status).toBe(200);
  const text = await res.text();
  return { text, families: parsePrometheusText(text) };
}

function value(families: Map<string, Family>, series: string, labels: Record<string, string>): number {
  const family = [...families.values()].find((f) => f.samples.some((s) => s.name === series));
  const sample = family?.samples.find((s) => s.name === series && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return sample?.value ?? 0;
}

describe('one trace per request', () => {
  let spans: ReadableSpan[];
  let jobId: string;
  const requestId = 'obs-trace-0001';

  beforeAll(async () => {
    const { res, body } = await submit({ idempotencyKey: IDEMPOTENCY_KEY }, { 'x-request-id': requestId });
    expect(res.status).toBe(200);
    expect(body.data.submitJob).toMatchObject({ __typename: 'SubmitJobPayload', replayed: false, job: { status: 'SUBMITTED' } });
    jobId = decodeGlobalID(body.data.submitJob.job.id).id;
    expect(res.headers.get('x-request-id')).toBe(requestId);
    spans = memory.getFinishedSpans().filter((s) => s.attributes['gateway.request_id'] === requestId);
  });

  it('submitJob through the HTTP server: GraphQL, SQL and HeyGen spans under the request span, in one trace', () => {
    const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
    const ancestors = (span: ReadableSpan): string[] => {
      const out: string[] = [];
      for (let p = span.parentSpanContext?.spanId; p && byId.has(p); p = byId.get(p)!.parentSpanContext?.spanId) out.push(byId.get(p)!.name);
      return out;
    };
    const root = spans.find((s) => s.kind === SpanKind.SERVER);
    expect(root?.name).toBe('POST /graphql');
    expect(root!.parentSpanContext).toBeUndefined();
    expect(root!.attributes).toMatchObject({ 'http.request.method': 'POST', 'http.route': '/graphql', 'http.response.status_code': 200 });

    const operation = spans.find((s) => s.name === 'mutation SubmitJob');
    expect(operation?.attributes).toMatchObject({ 'graphql.operation.type': 'mutation', 'graphql.operation.name': 'SubmitJob' });
    expect(operation!.parentSpanContext?.spanId).toBe(root!.spanContext().spanId);

    const statements = spans.filter((s) => s.attributes['db.system.name'] === 'postgresql');
    // The admission (one call of gateway_admit, which writes the job) and forwarding's bookkeeping have their spans.
    const admission = statements.find((s) => s.attributes['db.operation.name'] === 'SELECT' && String(s.attributes['db.query.text']).includes('gateway_admit('));
    expect(admission, 'the admission has a span').toBeDefined();
    const bookkeeping = statements.find((s) => String(s.attributes['db.query.text']).includes('gateway_mark_submitted('));
    expect(bookkeeping, 'the forwarding bookkeeping has a span').toBeDefined();
    for (const statement of statements) expect(ancestors(statement)).toEqual(expect.arrayContaining(['mutation SubmitJob', 'POST /graphql']));

    const heygen = spans.filter((s) => s.name === 'HeyGen submitJob:AVATAR_VIDEO');
    expect(heygen).toHaveLength(1);
    expect(heygen[0]!.kind).toBe(SpanKind.CLIENT);
    expect(heygen[0]!.attributes).toMatchObject({ 'heygen.operation': 'submitJob:AVATAR_VIDEO', 'http.request.method': 'POST', 'heygen.attempt': 1 });
    expect(heygen[0]!.attributes['http.response.status_code']).toBeGreaterThanOrEqual(200);
    expect(heygen[0]!.attributes['http.response.status_code']).toBeLessThan(300);
    expect(ancestors(heygen[0]!)).toEqual(['mutation SubmitJob', 'POST /graphql']);

    // One trace id for all of them, and every span of the request carries the request id.
    expect(new Set(spans.map((s) => s.spanContext().traceId))).toEqual(new Set([root!.spanContext().traceId]));
    const sameTrace = memory.getFinishedSpans().filter((s) => s.spanContext().traceId === root!.spanContext().traceId);
    expect(sameTrace.length).toBe(spans.length);
    expect(spans.length).toBeGreaterThan(6);
  });

  it('spans carry no token, key, parameter value or document', () => {
    const attributes = JSON.stringify(spans.map((s) => ({ name: s.name, attributes: s.attributes, events: s.events })));
    for (const secret of [h.adminToken, API_KEY, IDEMPOTENCY_KEY, SCRIPT.split(' ')[5]!, 'avatar_id']) expect(attributes).not.toContain(secret);
    // Statements keep their placeholders.
    expect(attributes).toMatch(/\$1/);
  });

  it('the request log line, the audit event and the answer header carry the same request id', async () => {
    const line = requestLines().find((l) => l.requestId === requestId);
    expect(line).toMatchObject({ level: 30, method: 'POST', route: '/graphql', status: 200, requestId });
    expect(line!.traceId).toBe(spans[0]!.spanContext().traceId);
    expect(typeof line!.durationMs).toBe('number');
    expect(line!.subject).toEqual(expect.any(String));
    expect(JSON.stringify(line)).not.toContain(h.adminToken);
    const audit = await queryRows<{ n: number }>(
      h.services.db,
      sql`select count(*)::int as n from audit_events where action = 'job.submit' and entity_id = ${jobId} and request_id = ${requestId}`,
    );
    expect(Number(audit[0]!.n)).toBe(1);
  });

  it("a caller's traceparent is continued; an insane X-Request-Id is replaced by a fresh one, which is echoed", async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const res = await fetch(`${h.url}/readyz`, {
      headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01`, 'x-request-id': 'not a sane id; drop table' },
    });
    expect(res.status).toBe(200);
    const echoed = res.headers.get('x-request-id');
    expect(echoed).toMatch(/^[0-9a-f-]{36}$/);
    const spans = memory.getFinishedSpans().filter((s) => s.attributes['gateway.request_id'] === echoed);
    const span = spans.find((s) => s.kind === SpanKind.SERVER);
    expect(span?.name).toBe('GET /readyz');
    expect(span!.spanContext().traceId).toBe(traceId);
    expect(span!.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    // A statement through the pool (outside any transaction) is a child of the request's span too.
    const probe = spans.find((s) => s.attributes['db.query.text'] === 'select 1');
    expect(probe?.parentSpanContext?.spanId).toBe(span!.spanContext().spanId);
    // A probe is logged at debug.
    expect(requestLines().find((l) => l.requestId === echoed)).toMatchObject({ level: 20, route: '/readyz', status: 200 });
  });
});

describe('request id', () => {
  it('a fresh id made for an insane X-Request-Id is the one in the answer, the log line and the audit trail', async () => {
    const res = await fetch(`${h.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${h.adminToken}`, 'x-request-id': 'x'.repeat(101) },
      body: JSON.stringify({
        query: `mutation($input: CreateOrgUnitInput!) { createOrgUnit(input: $input) { __typename ... on CreateOrgUnitPayload { orgUnit { id } } } }`,
        variables: { input: { kind: 'PROJECT', name: 'Request id', parentId: tree.teamId } },
      }),
    });
    const body = (await res.json()) as { data: { createOrgUnit: { orgUnit: { id: string } } } };
    const echoed = res.headers.get('x-request-id');
    expect(echoed).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const unitId = decodeGlobalID(body.data.createOrgUnit.orgUnit.id).id;
    const audit = await queryRows<{ request_id: string }>(h.services.db, sql`select request_id from audit_events where entity_id = ${unitId}`);
    expect(audit.map((a) => a.request_id)).toEqual([echoed]);
    expect(requestLines().filter((l) => l.requestId === echoed)).toHaveLength(1);
  });
});

describe('request log', () => {
  it('names the route pattern, never the raw path, its query string or a token; unknown routes are "unmatched"', async () => {
    const before = h.logs.length;
    const unknown = await fetch(`${h.url}/nope/0b7e5c1d?token=query-secret-71`, { headers: { authorization: 'Bearer bearer-secret-72', 'x-request-id': 'obs-unmatched' } });
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('x-request-id')).toBe('obs-unmatched');
    const webhook = await fetch(`${h.url}/webhooks/heygen/${accountUuid}/callback?x=query-secret-73`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'obs-webhook' },
      body: JSON.stringify({ event_type: 'avatar_video.success', event_data: { video_id: 'v_none', callback_id: 'nobody' } }),
    });
    expect(webhook.status).toBe(202);
    const lines = requestLines();
    expect(lines.find((l) => l.requestId === 'obs-unmatched')).toMatchObject({ level: 30, method: 'GET', route: 'unmatched', status: 404 });
    expect(lines.find((l) => l.requestId === 'obs-webhook')).toMatchObject({ level: 30, method: 'POST', route: '/webhooks/heygen/:accountId/callback', status: 202 });
    const written = h.logs.slice(before).join('\n');
    for (const secret of ['query-secret-71', 'bearer-secret-72', 'query-secret-73', '/nope', '0b7e5c1d']) expect(written).not.toContain(secret);
    const requestLog = lines.filter((l) => l.requestId === 'obs-webhook').map((l) => JSON.stringify(l)).join('');
    expect(requestLog).not.toContain(accountUuid);
  });
});

describe('/metrics', () => {
  it('passes the strict exposition parser, and names follow Prometheus conventions', async () => {
    const { text, families } = await scrape();
    const expected: Record<string, Family['type']> = {
      gateway_jobs: 'gauge',
      gateway_holds_open: 'gauge',
      gateway_reserved_credits: 'gauge',
      gateway_queue_due_jobs: 'gauge',
      gateway_queue_lag_seconds: 'gauge',
      gateway_overrun_credits_total: 'counter',
      gateway_admissions_total: 'counter',
      gateway_admission_refusals_total: 'counter',
      gateway_heygen_request_duration_seconds: 'histogram',
      gateway_http_request_duration_seconds: 'histogram',
      gateway_http_requests_in_flight: 'gauge',
      gateway_http_requests_shed_total: 'counter',
      gateway_webhook_verification_failures_total: 'counter',
      gateway_outbox_deliveries_total: 'counter',
      gateway_outbox_pending_events: 'gauge',
      gateway_outbox_lag_seconds: 'gauge',
      gateway_outbox_dead_events: 'gauge',
      gateway_concurrency_queue_jobs: 'gauge',
      gateway_concurrency_queue_oldest_wait_seconds: 'gauge',
      gateway_concurrency_queue_expired_total: 'counter',
      gateway_concurrency_queue_dispatches_total: 'counter',
      gateway_memory_trims_total: 'counter',
      gateway_malloc_free_bytes: 'gauge',
    };
    for (const [name, type] of Object.entries(expected)) expect(families.get(name)?.type, name).toBe(type);
    const gateway = [...families.values()].filter((f) => f.name.startsWith('gateway_'));
    expect(gateway.map((f) => f.name).sort()).toEqual(Object.keys(expected).sort());
    for (const family of gateway) {
      expect(family.help, family.name).toBeTruthy();
      expect(family.name.endsWith('_total'), family.name).toBe(family.type === 'counter');
      // Credit-seconds are money: never a `_seconds` (time) metric.
      expect(family.name).not.toMatch(/credit_seconds/);
    }
    expect(text).not.toContain(API_KEY);
    expect(text).not.toContain(WEBHOOK_SECRET);
    expect(text).not.toContain(h.adminToken);
  });

  it('counts admissions by outcome and reason, and refusals by unit', async () => {
    const before = (await scrape()).families;
    const count = (f: Map<string, Family>, outcome: string, reason: string) => value(f, 'gateway_admissions_total', { outcome, reason });
    // A replay of the first submission, a refused one (a HARD budget of 1 cs on the other project), a malformed one.
    expect((await submit({ idempotencyKey: IDEMPOTENCY_KEY })).body.data.submitJob.replayed).toBe(true);
    await setBudget(h, { orgUnitId: tree.otherProjectId, accountId: tree.accountId, window: 'MONTHLY', limitCreditSeconds: '1' });
    expect((await submit({ projectId: tree.otherProjectId })).body.data.submitJob.code).toBe('BUDGET_EXCEEDED');
    expect((await submit({ request: { type: 'avatar', avatar_id: 'a1' } })).body.data.submitJob.code).toBe('VALIDATION_FAILED');
    expect((await submit({})).body.data.submitJob.__typename).toBe('SubmitJobPayload');
    const after = (await scrape()).families;
    expect(count(after, 'admitted', 'replayed') - count(before, 'admitted', 'replayed')).toBe(1);
    expect(count(after, 'refused', 'budget') - count(before, 'refused', 'budget')).toBe(1);
    expect(count(after, 'rejected', 'validation') - count(before, 'rejected', 'validation')).toBe(1);
    expect(count(after, 'admitted', 'new') - count(before, 'admitted', 'new')).toBe(1);
    const otherProject = decodeGlobalID(tree.otherProjectId).id;
    expect(value(after, 'gateway_admission_refusals_total', { project: otherProject, unit: otherProject, reason: 'budget' })).toBe(1);
  });

  it('HeyGen attempts and HTTP requests land in latency histograms by operation / route and status', async () => {
    const { families } = await scrape();
    expect(value(families, 'gateway_heygen_request_duration_seconds_count', { operation: 'submitJob:AVATAR_VIDEO', status: '200' })).toBeGreaterThanOrEqual(2);
    expect(value(families, 'gateway_heygen_request_duration_seconds_bucket', { operation: 'submitJob:AVATAR_VIDEO', status: '200', le: '+Inf' })).toBeGreaterThanOrEqual(2);
    expect(value(families, 'gateway_http_request_duration_seconds_count', { method: 'POST', route: '/graphql', status: '200' })).toBeGreaterThanOrEqual(5);
    expect(value(families, 'gateway_http_request_duration_seconds_count', { method: 'GET', route: 'unmatched', status: '404' })).toBeGreaterThanOrEqual(1);
    // The histogram's labels name routes, never raw paths.
    const routes = new Set(families.get('gateway_http_request_duration_seconds')!.samples.map((s) => s.labels.route));
    for (const route of routes) expect(['/graphql', '/healthz', '/readyz', '/metrics', '/webhooks/heygen/:accountId', '/webhooks/heygen/:accountId/callback', '/reports/chargeback.csv', '/reports/chargeback.focus.csv', 'unmatched']).toContain(route);
  });

  it('holds open, reserved credits, queue depth and lag agree with the database', async () => {
    const [held] = await queryRows<{ n: number; reserved: string }>(
      h.services.db,
      sql`select count(*)::int as n, (sum(reserved_micro_cs) / 1000000.0)::text as reserved from jobs where reserved_micro_cs > 0`,
    );
    expect(Number(held!.n)).toBe(2);
    // One job due for the worker two minutes ago, the other in an hour (workers are off in this file: nobody claims them).
    await queryRows(h.services.db, sql`update jobs set next_check_at = now() + interval '1 hour' where status = 'SUBMITTED'`);
    await queryRows(h.services.db, sql`update jobs set next_check_at = now() - interval '120 seconds', last_checked_at = null where id = (select id from jobs where status = 'SUBMITTED' order by created_at limit 1)`);
    const { families } = await scrape();
    expect(value(families, 'gateway_holds_open', { account: 'Primary' })).toBe(2);
    expect(value(families, 'gateway_reserved_credits', { account: 'Primary' })).toBeCloseTo(Number(held!.reserved), 6);
    expect(value(families, 'gateway_queue_due_jobs', { account: 'Primary' })).toBe(1);
    const lag = value(families, 'gateway_queue_lag_seconds', { account: 'Primary' });
    expect(lag).toBeGreaterThanOrEqual(120);
    expect(lag).toBeLessThan(180);
    expect(value(families, 'gateway_jobs', { account: 'Primary', status: 'SUBMITTED' })).toBe(2);
  });

  it('the concurrency queue: jobs waiting and the oldest wait per account, as the database has them; expiries; dispatches by this process', async () => {
    // Workers are off in this file: nothing dispatches or expires but the calls below.
    const queued = await createTree(h, { name: 'Queued', concurrencyLimit: 1 });
    const send = async () => {
      const res = await fetch(`${h.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${h.adminToken}` },
        body: JSON.stringify({ query: SUBMIT, variables: { input: { projectId: queued.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest(SCRIPT), queue: true } } }),
      });
      return decodeGlobalID(((await res.json()) as { data: { submitJob: { job: { id: string } } } }).data.submitJob.job.id).id;
    };
    const running = await send();
    const waiting = [await send(), await send()];
    // The first waiting job was admitted 90 s ago.
    await queryRows(h.services.db, sql`update jobs set created_at = now() - interval '90 seconds' where id = ${waiting[0]!}`);
    let { families } = await scrape();
    expect(value(families, 'gateway_concurrency_queue_jobs', { account: 'Queued' })).toBe(2);
    expect(value(families, 'gateway_concurrency_queue_jobs', { account: 'Primary' })).toBe(0);
    const oldest = value(families, 'gateway_concurrency_queue_oldest_wait_seconds', { account: 'Queued' });
    expect(oldest).toBeGreaterThanOrEqual(90);
    expect(oldest).toBeLessThan(150);
    expect(value(families, 'gateway_concurrency_queue_oldest_wait_seconds', { account: 'Primary' })).toBe(0);
    expect(value(families, 'gateway_concurrency_queue_expired_total', { account: 'Queued' })).toBe(0);

    // The oldest expires (QUEUE_TTL_SECONDS later); the running job ends and the dispatcher starts the other.
    const accountId = decodeGlobalID(queued.accountId).id;
    const expired = await expireQueuedJobs(h.services.jobDeps, h.services.queue, new Date(Date.now() + h.services.config.queue.ttlMs - 30_000));
    expect(expired).toBe(1);
    await settleJob(h.services.db, running, { type: 'expired', reason: 'hold_expired', message: 'ended for the test' });
    expect(await dispatchAccount(h.services.jobDeps, h.services.queue, accountId)).toBe(1);
    ({ families } = await scrape());
    expect(value(families, 'gateway_concurrency_queue_jobs', { account: 'Queued' })).toBe(0);
    expect(value(families, 'gateway_concurrency_queue_oldest_wait_seconds', { account: 'Queued' })).toBe(0);
    expect(value(families, 'gateway_concurrency_queue_expired_total', { account: 'Queued' })).toBe(1);
    expect(value(families, 'gateway_concurrency_queue_dispatches_total', { account: 'Queued' })).toBe(1);
  });

  it('counts webhook signature failures by reason', async () => {
    const body = JSON.stringify({ event_type: 'avatar_video.success', event_data: { video_id: 'v_none', callback_id: 'nobody' } });
    const post = (signature: string | null) =>
      fetch(`${h.url}/webhooks/heygen/${accountUuid}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(signature ? { [h.config.webhookSignature.header]: signature } : {}) },
        body,
      });
    const before = (await scrape()).families;
    expect((await post(null)).status).toBe(401);
    expect((await post(signWebhookBody('not-the-secret', body))).status).toBe(401);
    expect((await post(signWebhookBody('not-the-secret', body))).status).toBe(401);
    expect((await post(signWebhookBody(WEBHOOK_SECRET, body))).status).toBe(202);
    const after = (await scrape()).families;
    const failures = (f: Map<string, Family>, reason: string) => value(f, 'gateway_webhook_verification_failures_total', { reason });
    expect(failures(after, 'missing') - failures(before, 'missing')).toBe(1);
    expect(failures(after, 'invalid') - failures(before, 'invalid')).toBe(2);
  });

  it('the Grafana dashboard in docs/ queries exactly the metrics /metrics serves', async () => {
    const { families } = await scrape();
    const dashboard = JSON.parse(readFileSync(new URL('../docs/grafana-dashboard.json', import.meta.url), 'utf8')) as { panels: { type: string; targets?: { expr: string }[] }[] };
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    expect(exprs.length).toBeGreaterThan(10);
    const used = new Set<string>();
    for (const expr of exprs) {
      for (const [name] of expr.matchAll(/\bgateway_[a-z_]+/g)) {
        const family = families.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
        expect(families.get(family)?.name, `${name} in "${expr}"`).toBe(family);
        if (family !== name) expect(families.get(family)!.type).toBe('histogram');
        used.add(family);
      }
    }
    const served = [...families.keys()].filter((n) => n.startsWith('gateway_'));
    expect([...used].sort()).toEqual(served.sort());
  });

  it('the parser is strict: it refuses what Prometheus would refuse', () => {
    const ok = '# HELP a_total A.\n# TYPE a_total counter\na_total{x="1"} 3\n';
    expect(parsePrometheusText(ok).get('a_total')!.samples[0]!.value).toBe(3);
    // prom-client writes a NaN as `Nan`, which Prometheus (Go's ParseFloat) reads.
    expect(parsePrometheusText('# TYPE g gauge\ng{a="x"} Nan\ng{a="y"} +Inf\n').get('g')!.samples.map((s) => s.value)).toEqual([NaN, Infinity]);
    const bad = [
      'a_total{x="1"} 3', // no final newline
      '# TYPE a counter\na{x=1} 3\n', // unquoted label value
      '# TYPE a counter\na{x="\\q"} 3\n', // bad escape
      '# TYPE a gauge\na 1\na 2\n', // a series twice
      'a 1\n# TYPE a gauge\n', // TYPE after samples
      '# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x="2"} 1\n', // a family split
      '# TYPE 1a gauge\n', // bad metric name
      '# TYPE a gauge\na one\n', // not a float
      '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n', // not cumulative
      '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n', // +Inf ≠ count
      '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', // no +Inf bucket
      '# TYPE c counter\nc -1\n', // a negative counter
    ];
    for (const text of bad) expect(() => parsePrometheusText(text), JSON.stringify(text)).toThrow();
  });
});

describe('configuration', () => {
  const base = { DATA_DIR: 'memory://' };
  it('tracing is off unless an OTLP endpoint is set (and not disabled); bad values are refused', () => {
    expect(loadConfig(base).tracing).toEqual({ enabled: false, serviceName: 'heygen-gateway', sampler: 'parentbased_always_on', samplerRatio: 1 });
    expect(loadConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }).tracing.enabled).toBe(true);
    expect(loadConfig({ ...base, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://collector/v1/traces' }).tracing.enabled).toBe(true);
    expect(loadConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'true' }).tracing.enabled).toBe(false);
    expect(loadConfig({ ...base, OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' }).tracing).toMatchObject({ sampler: 'parentbased_traceidratio', samplerRatio: 0.25 });
    for (const bad of [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' },
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://collector' },
      { OTEL_TRACES_SAMPLER: 'sometimes' },
      { OTEL_TRACES_SAMPLER_ARG: '1.5' },
      { OTEL_SDK_DISABLED: 'yes' },
    ]) {
      expect(() => loadConfig({ ...base, ...bad }), JSON.stringify(bad)).toThrow(ConfigError);
    }
  });
});

describe('OTLP/HTTP export from a gateway process', () => {
  let collector: Server;
  const received: { path: string; body: string }[] = [];

  beforeAll(async () => {
    collector = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ path: req.url ?? '', body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => new Promise<void>((resolve) => collector.close(() => resolve())));

  it('OTEL_EXPORTER_OTLP_ENDPOINT sends the spans to the collector; the last ones are flushed on SIGTERM', async () => {
    const port = (collector.address() as { port: number }).port;
    const gateway = await spawnGateway({
      DATABASE_URL: h.database.url,
      GATEWAY_MASTER_KEY: h.config.masterKey!,
      HEYGEN_BASE_URL: h.sim.url,
      WORKERS_ENABLED: 'false',
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      OTEL_SERVICE_NAME: 'gateway-otlp-test',
    });
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const res = await fetch(`${gateway.url}/readyz`, { headers: { traceparent: `00-${traceId}-b7ad6b7169203331-01`, 'x-request-id': 'otlp-probe-1' } });
    expect(res.status).toBe(200);
    const exited = new Promise<number | null>((resolve) => gateway.child.once('exit', (code) => resolve(code)));
    gateway.child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const traces = received.filter((r) => r.path === '/v1/traces').map((r) => r.body).join('\n');
    expect(traces).toContain('gateway-otlp-test');
    expect(traces).toContain('GET /readyz');
    expect(traces).toContain(traceId);
    expect(traces).toContain('otlp-probe-1');
    // The readiness probe's SQL statement is a child span of the request.
    expect(traces).toContain('postgresql');
  });
});

describe('span status', () => {
  it('a HeyGen answer that fails is an error span with its status', async () => {
    const before = memory.getFinishedSpans().length;
    const observer = (await import('../src/observability/upstream.js')).observeHeygenCalls(h.services.metrics.heygenRequestDuration);
    observer({ op: 'getVideo', method: 'GET', attempt: 2 })({ status: 503, error: null });
    observer({ op: 'getVideo', method: 'GET', attempt: 3 })({ status: null, error: 'timeout' });
    observer({ op: 'getVideo', method: 'GET', attempt: 1 })({ status: 404, error: null });
    const spans = memory.getFinishedSpans().slice(before).filter((s) => s.name === 'HeyGen getVideo');
    expect(spans.map((s) => [s.attributes['heygen.attempt'], s.status.code, s.attributes['error.type'] ?? null])).toEqual([
      [2, SpanStatusCode.ERROR, '503'],
      [3, SpanStatusCode.ERROR, 'timeout'],
      [1, SpanStatusCode.UNSET, null],
    ]);
  });
});

// App callbacks from the outbox, against real PostgreSQL and the simulator as HeyGen, with a local receiver:
// - one signed delivery per job end (checked with the algorithm docs/app-callbacks.md gives the receiver), retried
//   after the receiver fails twice (three attempts logged, one success), never for another project's job;
// - two delivery workers on separate pools deliver each event once (no double success);
// - the event exists if and only if the settlement committed (a failure after the insert leaves neither), and a
//   settlement run again or raced writes it once;
// - hostile callback URLs are a typed ValidationError and write nothing.
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { avatarRequest, createTree, mustMutate, SUBMIT, type Tree } from './support/fixtures.js';
import { openDatabase, queryRows, type Database } from '../src/db/client.js';
import { runOutboxOnce, type OutboxDeps } from '../src/outbox/worker.js';
import { enqueueEvents } from '../src/outbox/outbox.js';
import { admitJob } from '../src/jobs/admission.js';
import { settleJob } from '../src/jobs/settlement.js';
import { checkCallbackUrl, STRICT_CALLBACK_POLICY } from '../src/jobs/callback.js';
import { APP_CALLBACK_TOPIC } from '../src/outbox/app-callback.js';

// --- The receiver's side, written only from docs/app-callbacks.md (no gateway code). ---
function verify(secret: string, header: string | undefined, rawBody: string, nowSeconds: number, toleranceSeconds = 300): boolean {
  if (!header) return false;
  const fields = Object.fromEntries(header.split(',').map((p) => p.split('=', 2) as [string, string]));
  const t = Number(fields.t);
  if (!Number.isInteger(t) || Math.abs(nowSeconds - t) > toleranceSeconds) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${rawBody}`).digest();
  const given = Buffer.from(fields.v1 ?? '', 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

class Receiver {
  readonly received: Received[] = [];
  /** Statuses to answer, in order; 200 once they run out. */
  answers: number[] = [];
  /** How long the receiver takes to answer (a slow receiver widens the window two workers could collide in). */
  delayMs = 0;
  private server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.received.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.statusCode = this.answers.shift() ?? 200;
      if (this.delayMs > 0) setTimeout(() => res.end('ok'), this.delayMs);
      else res.end('ok');
    });
  });
  url = '';
  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

let h: Harness;
let tree: Tree;
let receiver: Receiver;
let deps: OutboxDeps;
const app: { token: string; id: string; secret: string } = { token: '', id: '', secret: '' };
const other: { token: string; id: string; secret: string } = { token: '', id: '', secret: '' };

const ISSUE = `mutation($input: IssueServiceTokenInput!) { issueServiceToken(input: $input) {
  __typename ... on IssueServiceTokenPayload { token callbackSigningSecret serviceToken { id callbackSecretRotatedAt } } ... on Error { message code } } }`;
const JOB = `query($id: ID!) { job(id: $id) { id status request upstreamIds callback { host callbackId events {
  eventId eventType status attempts maxAttempts deliveredAt lastError payload deliveries { attempt outcome httpStatus error } } } } }`;

async function issue(projectId: string, name: string): Promise<{ token: string; id: string; secret: string }> {
  const p = await mustMutate(h, ISSUE, { input: { orgUnitId: projectId, name } }, 'issueServiceToken');
  expect(p.callbackSigningSecret).toMatch(/^gwcs_[A-Za-z0-9_-]{43}$/);
  return { token: p.token, id: decodeGlobalID(p.serviceToken.id).id, secret: p.callbackSigningSecret };
}

async function submit(token: string, projectId: string, request: Record<string, unknown>, idempotencyKey?: string) {
  const res = await h.gql(SUBMIT, { input: { projectId, kind: 'AVATAR_VIDEO', request, ...(idempotencyKey ? { idempotencyKey } : {}) } }, token);
  expect(res.errors).toBeUndefined();
  return res.data.submitJob;
}

const rawId = (globalId: string) => decodeGlobalID(globalId).id;

async function outboxRows(jobId?: string) {
  return queryRows<{ id: string; kind: string; status: string; attempts: number; dedupe_key: string }>(
    h.services.db,
    jobId ? sql`select id, kind, status, attempts, dedupe_key from outbox_events where job_id = ${jobId} order by dedupe_key` : sql`select id, kind, status, attempts, dedupe_key from outbox_events`,
  );
}

/** Runs outbox passes at `now` until one claims nothing. */
async function drain(d: OutboxDeps, now: Date): Promise<void> {
  while ((await runOutboxOnce(d, now)) > 0) {
    /* again */
  }
}

beforeAll(async () => {
  receiver = new Receiver();
  await receiver.start();
  h = await startHarness({
    env: { CALLBACK_ALLOW_HTTP: 'true', CALLBACK_ALLOW_PRIVATE: 'true', CALLBACK_RETRY_BASE_MS: '60000', CALLBACK_RETRY_MAX_MS: '3600000', CALLBACK_MAX_ATTEMPTS: '5' },
  });
  // The test drives deliveries itself, at pinned times (no sleeps): the process's own delivery loop is stopped.
  await h.services.outboxWorker?.stop();
  h.services.outboxWorker = null;
  // App callbacks only: settlements also write money events (topic money_event, docs/notifications.md), which
  // test/notifications.test.ts delivers; counting them here would blur what each pass claimed.
  deps = { ...h.services.outboxDeps, handlers: new Map([[APP_CALLBACK_TOPIC, h.services.outboxDeps.handlers.get(APP_CALLBACK_TOPIC)!]]) };
  tree = await createTree(h);
  Object.assign(app, await issue(tree.projectId, 'onboarding-app'));
  Object.assign(other, await issue(tree.otherProjectId, 'shorts-app'));
}, 60_000);
afterAll(async () => {
  await h?.close();
  await receiver?.close();
});

describe('an app callback', () => {
  it('is delivered once per job end, signed, after the receiver failed twice: 3 attempts logged, 1 success', async () => {
    const url = `${receiver.url}/hooks/heygen?app=onboarding`;
    const submitted = await submit(app.token, tree.projectId, { ...avatarRequest(), callback_url: url, callback_id: 'order-4711' });
    expect(submitted.__typename).toBe('SubmitJobPayload');
    const jobId = rawId(submitted.job.id);

    // HeyGen gets the gateway's own job id as callback_id and never the app's URL; the stored body has neither.
    const upstreamId = submitted.job.upstreamIds[0];
    const simJob = h.sim.job(upstreamId)!;
    expect(simJob.callbackId).toBe(jobId);
    expect(simJob.callbackUrl ?? '').not.toContain(receiver.url);
    const before = (await h.gql(JOB, { id: submitted.job.id }, app.token)).data.job;
    expect(before.request).not.toHaveProperty('callback_url');
    expect(before.request).not.toHaveProperty('callback_id');
    expect(before.callback).toEqual({ host: new URL(receiver.url).host, callbackId: 'order-4711', events: [] });

    await waitFor(async () => (await h.gql(JOB, { id: submitted.job.id }, app.token)).data.job.status === 'SUCCEEDED');
    const rows = await outboxRows(jobId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ kind: 'avatar_video.success', status: 'PENDING', attempts: 0 });

    receiver.received.length = 0;
    receiver.answers = [500, 503];
    const t0 = new Date(Date.now() + 1000);
    expect(await runOutboxOnce(deps, t0)).toBe(1); // fails (500)
    expect(await runOutboxOnce(deps, t0)).toBe(0); // not due again yet: backoff
    expect(await runOutboxOnce(deps, new Date(t0.getTime() + 2 * 3600_000))).toBe(1); // fails (503)
    expect(await runOutboxOnce(deps, new Date(t0.getTime() + 4 * 3600_000))).toBe(1); // delivered
    await drain(deps, new Date(t0.getTime() + 48 * 3600_000)); // nothing left
    expect(receiver.received).toHaveLength(3);

    const now = Math.floor(Date.now() / 1000);
    const eventIds = new Set<string>();
    for (const r of receiver.received) {
      expect(r.path).toBe('/hooks/heygen?app=onboarding');
      expect(r.headers['content-type']).toBe('application/json');
      expect(verify(app.secret, r.headers['x-gateway-signature'] as string, r.body, now)).toBe(true);
      // Another token's secret, a changed body, or a replay an hour later do not verify.
      expect(verify(other.secret, r.headers['x-gateway-signature'] as string, r.body, now)).toBe(false);
      expect(verify(app.secret, r.headers['x-gateway-signature'] as string, r.body.replace('order-4711', 'order-4712'), now)).toBe(false);
      expect(verify(app.secret, r.headers['x-gateway-signature'] as string, r.body, now + 3600)).toBe(false);
      // HeyGen's event shape, this job's ids, the app's callback_id; never the company key.
      const event = JSON.parse(r.body);
      expect(event).toMatchObject({
        event_type: 'avatar_video.success',
        event_id: rows[0]!.id,
        event_data: { video_id: upstreamId, callback_id: 'order-4711', gateway_job_id: jobId, gateway_status: 'SUCCEEDED' },
      });
      expect(Date.parse(event.created_at)).not.toBeNaN();
      // The output URL is read fresh from HeyGen at each attempt (the stored payload keeps none), and it downloads.
      expect(event.event_data.url).toMatch(new RegExp(`^${h.sim.url}/_sim/media/${upstreamId}\\.mp4`));
      expect(r.body).not.toContain('sk_test_primary_key_0001');
      expect(JSON.stringify(r.headers)).not.toContain('sk_test_primary_key_0001');
      expect(r.headers['x-gateway-event-id']).toBe(rows[0]!.id);
      eventIds.add(event.event_id);
    }
    expect(eventIds.size).toBe(1);
    const download = await fetch(JSON.parse(receiver.received[2]!.body).event_data.url);
    expect(download.status).toBe(200);
    await download.arrayBuffer();
    const [stored] = await queryRows<{ url: string | null }>(h.services.db, sql`select payload->'event_data'->>'url' as url from outbox_events where id = ${rows[0]!.id}`);
    expect(stored!.url).toBeNull();
    expect(receiver.received.map((r) => r.headers['x-gateway-delivery-attempt'])).toEqual(['1', '2', '3']);

    const after = (await h.gql(JOB, { id: submitted.job.id }, app.token)).data.job.callback;
    expect(after.events).toHaveLength(1);
    expect(after.events[0]).toMatchObject({ eventId: rows[0]!.id, eventType: 'avatar_video.success', status: 'DELIVERED', attempts: 3, maxAttempts: 5, lastError: null });
    expect(after.events[0].deliveries).toEqual([
      { attempt: 1, outcome: 'failed', httpStatus: 500, error: 'the receiver answered HTTP 500' },
      { attempt: 2, outcome: 'failed', httpStatus: 503, error: 'the receiver answered HTTP 503' },
      { attempt: 3, outcome: 'delivered', httpStatus: 200, error: null },
    ]);
    // Another project's app cannot read this job, its callback or its log.
    expect((await h.gql(JOB, { id: submitted.job.id }, other.token)).data.job).toBeNull();

    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metrics).toMatch(/gateway_outbox_deliveries_total\{topic="app_callback",outcome="delivered"\} 1\b/);
    expect(metrics).toMatch(/gateway_outbox_deliveries_total\{topic="app_callback",outcome="failed"\} 2\b/);
    expect(metrics).toMatch(/gateway_outbox_pending_events\{topic="app_callback"\} 0\b/);
    expect(metrics).toMatch(/gateway_outbox_lag_seconds\{topic="app_callback"\} 0\b/);
  }, 30_000);

  it('is never sent for another project\'s job, and a replay with another callback is a conflict', async () => {
    receiver.received.length = 0;
    receiver.answers = [];
    // The other project's app submits without a callback; an ADMIN submits in the first project without one.
    const foreign = await submit(other.token, tree.otherProjectId, avatarRequest());
    const admin = await submit(h.adminToken, tree.projectId, avatarRequest());
    for (const job of [foreign, admin]) {
      expect(job.__typename).toBe('SubmitJobPayload');
      await waitFor(async () => (await h.gql(JOB, { id: job.job.id })).data.job.status === 'SUCCEEDED');
      expect(await outboxRows(rawId(job.job.id))).toEqual([]);
    }
    await drain(deps, new Date(Date.now() + 72 * 3600_000));
    expect(receiver.received).toEqual([]);

    // Same idempotency key, same body but another callback: a conflict, not the first job.
    const body = { ...avatarRequest(), callback_url: `${receiver.url}/a`, callback_id: 'x' };
    expect((await submit(app.token, tree.projectId, body, 'replay-1')).__typename).toBe('SubmitJobPayload');
    expect((await submit(app.token, tree.projectId, body, 'replay-1')).replayed).toBe(true);
    expect((await submit(app.token, tree.projectId, { ...body, callback_url: `${receiver.url}/b` }, 'replay-1')).__typename).toBe('IdempotencyConflictError');
    expect((await submit(app.token, tree.projectId, { ...body, callback_id: 'y' }, 'replay-1')).__typename).toBe('IdempotencyConflictError');
    const [replayed] = await queryRows<{ id: string }>(h.services.db, sql`select id from jobs where idempotency_key = 'replay-1'`);
    await waitFor(async () => (await outboxRows(replayed!.id)).length > 0);
    await drain(deps, new Date(Date.now() + 80 * 3600_000));
    expect(receiver.received.map((r) => r.path)).toEqual(['/a']);
  }, 30_000);
});

describe('a translation into three languages', () => {
  it('tells its app once per output, as HeyGen would: three video_translate events, each with its own id and language', async () => {
    await drain(deps, new Date(Date.now() + 90 * 3600_000));
    receiver.received.length = 0;
    receiver.answers = [];
    const res = await h.gql(
      SUBMIT,
      {
        input: {
          projectId: tree.projectId,
          kind: 'VIDEO_TRANSLATION',
          request: { video: { type: 'asset_id', asset_id: 'src_1' }, output_languages: ['fr', 'de', 'es'], mode: 'precision', callback_url: `${receiver.url}/tr`, callback_id: 'tr-1' },
        },
      },
      app.token,
    );
    expect(res.data.submitJob.__typename).toBe('SubmitJobPayload');
    const jobId = rawId(res.data.submitJob.job.id);
    const ids: string[] = res.data.submitJob.job.upstreamIds;
    expect(ids).toHaveLength(3);
    await waitFor(async () => (await h.gql(JOB, { id: res.data.submitJob.job.id }, app.token)).data.job.status === 'SUCCEEDED');
    expect((await outboxRows(jobId)).map((r) => r.kind)).toEqual(['video_translate.success', 'video_translate.success', 'video_translate.success']);
    await drain(deps, new Date(Date.now() + 91 * 3600_000));
    const events = receiver.received.filter((r) => r.path === '/tr').map((r) => JSON.parse(r.body));
    expect(events).toHaveLength(3);
    expect(events.map((e) => e.event_data.video_translate_id).sort()).toEqual([...ids].sort());
    expect(events.map((e) => e.event_data.output_language).sort()).toEqual(['de', 'es', 'fr']);
    for (const e of events) {
      expect(e).toMatchObject({ event_type: 'video_translate.success', event_data: { callback_id: 'tr-1', gateway_job_id: jobId } });
      expect(e.event_data.url).toContain(`/_sim/media/${e.event_data.video_translate_id}`);
    }
    expect(new Set(events.map((e) => e.event_id)).size).toBe(3);
  }, 30_000);
});

describe('two delivery workers on separate pools', () => {
  let second: Database;
  beforeAll(async () => {
    second = await openDatabase({ databaseUrl: h.database.url, dataDir: 'unused', poolSize: 5 });
  });
  afterAll(async () => second?.close());

  it('deliver each event once: one success per event, no double delivery', async () => {
    await drain(deps, new Date(Date.now() + 96 * 3600_000));
    receiver.received.length = 0;
    receiver.answers = [];
    const N = 40;
    const now = new Date();
    await h.services.db.transaction((tx) =>
      enqueueEvents(
        tx,
        Array.from({ length: N }, (_, i) => ({
          topic: 'app_callback',
          kind: 'avatar_video.success',
          dedupeKey: `race:${i}`,
          payload: (eventId: string) => ({ event_type: 'avatar_video.success', event_id: eventId, event_data: { video_id: `v${i}`, callback_id: `c${i}` } }),
          destination: { url: `${receiver.url}/race`, tokenId: app.id },
          maxAttempts: 5,
        })),
        now,
      ),
    );
    const one: OutboxDeps = { ...deps, settings: { ...deps.settings, batchSize: 3, concurrency: 2 } };
    const two: OutboxDeps = { ...one, db: second.db };
    const at = new Date(now.getTime() + 1000);
    // Two independent loops, each claiming again as soon as its own batch is done, against a slow receiver.
    receiver.delayMs = 15;
    try {
      await Promise.all([drain(one, at), drain(two, at)]);
    } finally {
      receiver.delayMs = 0;
    }
    expect(await outboxRows().then((rows) => rows.filter((r) => r.dedupe_key.startsWith('race:') && r.status !== 'DELIVERED'))).toEqual([]);
    const paths = receiver.received.filter((r) => r.path === '/race').map((r) => JSON.parse(r.body).event_id as string);
    expect(paths).toHaveLength(N);
    expect(new Set(paths).size).toBe(N);
    const log = await queryRows<{ delivered: number; attempts: number; events: number }>(
      h.services.db,
      sql`select count(*) filter (where d.outcome = 'delivered')::int as delivered, count(*)::int as attempts, count(distinct d.event_id)::int as events
          from outbox_deliveries d join outbox_events e on e.id = d.event_id where e.dedupe_key like 'race:%'`,
    );
    expect(log[0]).toEqual({ delivered: N, attempts: N, events: N });
    const states = await queryRows<{ status: string; attempts: number; n: number }>(
      h.services.db,
      sql`select status, attempts, count(*)::int as n from outbox_events where dedupe_key like 'race:%' group by status, attempts`,
    );
    expect(states).toEqual([{ status: 'DELIVERED', attempts: 1, n: N }]);
  }, 30_000);
});

describe('a receiver that hangs', () => {
  it('holds up neither admissions nor settlements: they only write a row', async () => {
    await drain(deps, new Date(Date.now() + 100 * 3600_000));
    const hanging = http.createServer(() => {
      /* never answers */
    });
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    const hangUrl = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/hang`;
    const { appCallbackHandler } = await import('../src/outbox/app-callback.js');
    const slow: OutboxDeps = {
      ...deps,
      handlers: new Map([['app_callback', appCallbackHandler({ db: h.services.db, box: h.services.box, settings: { timeoutMs: 60_000, maxResponseBytes: 1024, allowPrivate: true } })]]),
      settings: { ...deps.settings, batchSize: 20, concurrency: 20, leaseMs: 120_000 },
    };
    const now = new Date();
    await h.services.db.transaction((tx) =>
      enqueueEvents(
        tx,
        Array.from({ length: 20 }, (_, i) => ({
          topic: 'app_callback',
          kind: 'avatar_video.success',
          dedupeKey: `hang:${i}`,
          payload: (eventId: string) => ({ event_id: eventId }),
          destination: { url: hangUrl, tokenId: app.id },
          maxAttempts: 3,
        })),
        now,
      ),
    );
    // A delivery pass is now stuck on twenty receivers that never answer...
    const pass = runOutboxOnce(slow);
    await waitFor(async () => (await queryRows<{ n: number }>(h.services.db, sql`select count(*)::int as n from outbox_events where dedupe_key like 'hang:%' and attempts = 1`))[0]!.n === 20);
    // ...while a job with a callback is admitted, forwarded, followed and settled, its event written.
    const submitted = await submit(app.token, tree.projectId, { ...avatarRequest(), callback_url: `${receiver.url}/while-hanging` });
    expect(submitted.__typename).toBe('SubmitJobPayload');
    await waitFor(async () => (await outboxRows(rawId(submitted.job.id))).length === 1);
    const [stuck] = await queryRows<{ n: number }>(
      h.services.db,
      sql`select count(*)::int as n from outbox_deliveries d join outbox_events e on e.id = d.event_id where e.dedupe_key like 'hang:%'`,
    );
    expect(stuck!.n).toBe(0); // not one hanging attempt has finished
    hanging.closeAllConnections();
    await pass;
    hanging.close();
    const log = await queryRows<{ outcome: string; n: number }>(
      h.services.db,
      sql`select d.outcome, count(*)::int as n from outbox_deliveries d join outbox_events e on e.id = d.event_id where e.dedupe_key like 'hang:%' group by d.outcome`,
    );
    expect(log).toEqual([{ outcome: 'failed', n: 20 }]);
    // Give them up so later passes do not retry them.
    await h.services.db.execute(sql`update outbox_events set status = 'DEAD', next_attempt_at = null where dedupe_key like 'hang:%'`);
  }, 30_000);
});

describe('crash safety', () => {
  it('the event exists if and only if the settlement committed; a settlement run again or raced writes it once', async () => {
    const actor = await h.services.tokens.authenticate(h.services.db, app.token);
    const { job } = await admitJob(
      h.services.db,
      actor,
      { projectId: rawId(tree.projectId), kind: 'AVATAR_VIDEO', request: { ...avatarRequest(), callback_url: `${receiver.url}/crash`, callback_id: 'boom' }, estimatedSeconds: null, idempotencyKey: null },
      h.services.admission,
    );
    expect(job.callback).toEqual({ url: `${receiver.url}/crash`, callbackId: 'boom', tokenId: app.id });
    // A failure after the outbox insert, inside the settlement's transaction (a crash before its commit).
    await h.services.db.execute(sql.raw(`
      create function fail_outbox() returns trigger language plpgsql as $$
      begin raise exception 'simulated crash after the outbox insert'; end $$;
      create trigger fail_outbox after insert on outbox_events for each row
        when (new.payload->'event_data'->>'callback_id' = 'boom') execute function fail_outbox();`));
    await expect(settleJob(h.services.db, job.id, { type: 'cancelled', by: actor })).rejects.toThrow();
    expect(await outboxRows(job.id)).toEqual([]);
    const [still] = await queryRows<{ status: string; reserved: string; releases: number }>(
      h.services.db,
      sql`select status, reserved_micro_cs::text as reserved, (select count(*)::int from ledger_entries where job_id = ${job.id} and entry_type = 'RELEASE') as releases from jobs where id = ${job.id}`,
    );
    expect(still).toEqual({ status: 'RESERVED', reserved: job.reservedMicroCs.toString(), releases: 0 });

    await h.services.db.execute(sql.raw('drop trigger fail_outbox on outbox_events; drop function fail_outbox();'));
    const results = await Promise.all(Array.from({ length: 5 }, () => settleJob(h.services.db, job.id, { type: 'cancelled', by: actor })));
    expect(results.filter((r) => r.changed)).toHaveLength(1);
    await settleJob(h.services.db, job.id, { type: 'cancelled', by: actor });
    const rows = await outboxRows(job.id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ kind: 'avatar_video.fail', dedupe_key: `job:${job.id}:end` });
    const [event] = await queryRows<{ payload: any }>(h.services.db, sql`select payload from outbox_events where id = ${rows[0]!.id}`);
    expect(event!.payload.event_data).toMatchObject({ video_id: null, callback_id: 'boom', gateway_status: 'CANCELLED', msg: 'the job ended CANCELLED' });
  }, 30_000);
});

describe('hostile callbacks', () => {
  const countWrites = async () =>
    (
      await queryRows<{ jobs: number; ledger: number; audit: number; outbox: number }>(
        h.services.db,
        sql`select (select count(*)::int from jobs) as jobs, (select count(*)::int from ledger_entries) as ledger,
                   (select count(*)::int from audit_events where action = 'job.submit') as audit, (select count(*)::int from outbox_events) as outbox`,
      )
    )[0];

  it('are a typed ValidationError naming the field, and nothing is written', async () => {
    const strict = [
      'http://example.com/hook', // http is for development only
      'https://127.0.0.1/hook',
      'https://10.1.2.3/hook',
      'https://192.168.0.10/hook',
      'https://169.254.169.254/latest/meta-data',
      'https://[::1]/hook',
      'https://[::ffff:127.0.0.1]/hook',
      'https://[fd00::1]/hook',
      'https://0x7f.0.0.1/hook',
      'https://2130706433/hook',
      'https://0.0.0.0/hook',
      'https://localhost/hook',
      'https://metadata.internal/hook',
      'https://intranet/hook',
    ];
    const always = [
      'file:///etc/passwd',
      'gopher://example.com/x',
      'javascript:alert(1)',
      'https://user:secret@example.com/hook',
      'https://token@example.com/hook',
      `https://example.com/${'a'.repeat(2100)}`,
      'https://exa mple.com/hook',
      'https://example.com/hook#frag',
      'not a url',
      '',
      42,
    ];
    const before = await countWrites();
    const saved = h.services.admission.callbacks;
    try {
      h.services.admission.callbacks = STRICT_CALLBACK_POLICY;
      for (const url of [...strict, ...always]) {
        const res = await submit(app.token, tree.projectId, { ...avatarRequest(), callback_url: url });
        expect(res, String(url)).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED', field: 'request.callback_url' });
      }
    } finally {
      h.services.admission.callbacks = saved;
    }
    // A public https URL passes the same check.
    expect(checkCallbackUrl('https://hooks.example.com/heygen?x=1', STRICT_CALLBACK_POLICY)).toBe('https://hooks.example.com/heygen?x=1');
    const afterStrict = await countWrites();
    expect(afterStrict).toEqual(before);
    // Even where private targets are allowed (tests), credentials, other schemes and overlong URLs are refused.
    for (const url of always) {
      const res = await submit(app.token, tree.projectId, { ...avatarRequest(), callback_url: url });
      expect(res, String(url)).toMatchObject({ __typename: 'ValidationError', field: 'request.callback_url' });
    }
    for (const [body, field] of [
      [{ callback_url: `${receiver.url}/x`, callback_id: 'x'.repeat(256) }, 'request.callback_id'],
      [{ callback_url: `${receiver.url}/x`, callback_id: 12 }, 'request.callback_id'],
      [{ callback_id: 'orphan' }, 'request.callback_id'],
    ] as const) {
      const res = await submit(app.token, tree.projectId, { ...avatarRequest(), ...body });
      expect(res, JSON.stringify(body)).toMatchObject({ __typename: 'ValidationError', field });
    }
    // Only an app (a service token, whose secret signs deliveries) may name a callback.
    const byAdmin = await submit(h.adminToken, tree.projectId, { ...avatarRequest(), callback_url: `${receiver.url}/x` });
    expect(byAdmin).toMatchObject({ __typename: 'ValidationError', field: 'request.callback_url' });
    expect(await countWrites()).toEqual(afterStrict);
  }, 30_000);

  it('a name that resolves to a private address is refused at delivery time, and the secret is never logged', async () => {
    const saved = h.services.outboxDeps;
    const strictDeps: OutboxDeps = {
      ...saved,
      handlers: new Map([[
        'app_callback',
        (await import('../src/outbox/app-callback.js')).appCallbackHandler({ db: h.services.db, box: h.services.box, settings: { timeoutMs: 2000, maxResponseBytes: 1024, allowPrivate: false } }),
      ]]),
    };
    await drain(deps, new Date(Date.now() + 120 * 3600_000));
    receiver.received.length = 0;
    const now = new Date();
    const [id] = await h.services.db.transaction((tx) =>
      enqueueEvents(
        tx,
        [{ topic: 'app_callback', kind: 'avatar_video.success', dedupeKey: 'rebind', payload: (eventId) => ({ event_id: eventId }), destination: { url: `http://localhost:${new URL(receiver.url).port}/rebind`, tokenId: app.id }, maxAttempts: 1 }],
        now,
      ),
    );
    expect(await runOutboxOnce(strictDeps, new Date(now.getTime() + 1000))).toBe(1);
    expect(receiver.received).toEqual([]);
    const [row] = await queryRows<{ status: string; last_error: string }>(h.services.db, sql`select status, last_error from outbox_events where id = ${id}`);
    expect(row).toEqual({ status: 'DEAD', last_error: 'the callback URL resolves to a private, loopback or link-local address' });
    for (const secret of [app.secret, other.secret]) expect(h.logs.join('\n')).not.toContain(secret);
    const stored = await queryRows<{ c: string }>(h.services.db, sql`select callback_secret_ciphertext as c from service_tokens where id = ${app.id}`);
    expect(stored[0]!.c).not.toContain(app.secret.slice(5, 20));
  }, 30_000);
});

describe('the callback signing secret', () => {
  const ROTATE = `mutation($input: RotateCallbackSecretInput!) { rotateCallbackSecret(input: $input) {
    __typename ... on RotateCallbackSecretPayload { callbackSigningSecret serviceToken { id callbackSecretRotatedAt } } ... on Error { message code } } }`;

  it('is rotated by the app itself, signs every later attempt, and is stored, logged and audited nowhere in plain text', async () => {
    const old = app.secret;
    const other2 = await h.gql(ROTATE, { input: { serviceTokenId: encodeGlobalID('ServiceToken', app.id) } }, other.token);
    expect(other2.data.rotateCallbackSecret.__typename).toBe('NotFoundError');
    const p = await mustMutate(h, ROTATE, { input: { serviceTokenId: encodeGlobalID('ServiceToken', app.id) } }, 'rotateCallbackSecret', app.token);
    expect(p.callbackSigningSecret).toMatch(/^gwcs_/);
    expect(p.callbackSigningSecret).not.toBe(old);
    app.secret = p.callbackSigningSecret;

    await drain(deps, new Date(Date.now() + 200 * 3600_000));
    receiver.received.length = 0;
    receiver.answers = [];
    const now = new Date();
    await h.services.db.transaction((tx) =>
      enqueueEvents(
        tx,
        [{ topic: 'app_callback', kind: 'avatar_video.success', dedupeKey: 'rotated', payload: (eventId) => ({ event_id: eventId }), destination: { url: `${receiver.url}/rotated`, tokenId: app.id }, maxAttempts: 3 }],
        now,
      ),
    );
    expect(await runOutboxOnce(deps, new Date(now.getTime() + 1000))).toBe(1);
    const [r] = receiver.received;
    const nowSeconds = Math.floor(Date.now() / 1000);
    expect(verify(app.secret, r!.headers['x-gateway-signature'] as string, r!.body, nowSeconds)).toBe(true);
    expect(verify(old, r!.headers['x-gateway-signature'] as string, r!.body, nowSeconds)).toBe(false);

    const dump = await queryRows<{ t: string }>(
      h.services.db,
      sql`select row_to_json(s)::text as t from service_tokens s union all select row_to_json(a)::text from audit_events a
          union all select row_to_json(o)::text from outbox_events o union all select row_to_json(d)::text from outbox_deliveries d`,
    );
    for (const secret of [old, app.secret, other.secret]) {
      for (const { t } of dump) expect(t).not.toContain(secret.slice(5));
      expect(h.logs.join('\n')).not.toContain(secret.slice(5));
    }
  }, 30_000);
});

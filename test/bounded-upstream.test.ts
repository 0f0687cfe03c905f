// Bounded memory and bounded upstream calls (issue "never down, never leaking", point 3):
// - HeyGen answers are read under HEYGEN_MAX_RESPONSE_BYTES, so a 1 GB answer does not grow the process;
// - webhooks and per-job callbacks only mark a job due, coalesced in PostgreSQL: one status read per job per
//   STATUS_READ_MIN_INTERVAL_MS, however many callbacks arrive at however many gateway processes;
// - stored request bodies are capped (JOB_REQUEST_MAX_BYTES) before anything is written.
import { createHmac, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startHarness, type Harness } from './support/harness.js';
import { spawnGateway, type GatewayProcess } from './support/processes.js';
import { avatarRequest, createTree, SUBMIT, type Tree } from './support/fixtures.js';
import { expectCountersEqualLedger } from './support/invariants.js';
import { queryRows } from '../src/db/client.js';
import { hintJob } from '../src/jobs/follow.js';
import { claimDueJobs, runWorkerOnce } from '../src/jobs/worker.js';

const API_KEY = 'sk_test_primary_key_0001';

async function waitFor<T>(check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function jobRow(h: Harness, jobId: string) {
  const [row] = await queryRows<{ status: string; reserved: string; actual: string | null; last_checked_at: Date | null; next_check_at: Date | null }>(
    h.services.db,
    sql`select status::text, reserved_micro_cs::text as reserved, actual_micro_cs::text as actual, last_checked_at, next_check_at from jobs where id = ${jobId}`,
  );
  return row!;
}

async function rowCounts(h: Harness): Promise<Record<string, number>> {
  const [row] = await queryRows<Record<string, number>>(
    h.services.db,
    sql`select (select count(*)::int from jobs) as jobs, (select count(*)::int from ledger_entries) as ledger,
               (select count(*)::int from usage_rollups) as rollups,
               (select count(*)::int from audit_events where action = 'job.submit') as audits`,
  );
  return row!;
}

/** Status reads HeyGen (the simulator) has answered: bulk and single. */
function statusReads(h: Harness): number {
  const requests = h.sim.stats().requests;
  return (requests['GET /v3/videos/statuses'] ?? 0) + (requests['GET /v3/videos/{video_id}'] ?? 0);
}

// node:http with a keep-alive agent: several times cheaper per request than fetch, which matters for 10,000 of them.
const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });

function callback(gatewayUrl: string, accountId: string, eventData: Record<string, unknown>): Promise<number> {
  const body = JSON.stringify({ event_type: 'avatar_video.success', event_id: randomUUID(), event_data: eventData });
  const url = new URL(`${gatewayUrl}/webhooks/heygen/${accountId}/callback`);
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { agent, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Runs `tasks` with at most `concurrency` in flight. */
async function pool<T>(count: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        results[i] = await task(i);
      }
    }),
  );
  return results;
}

function memoryOf(pid: number): { rssKb: number; peakKb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssKb: field('VmRSS'), peakKb: field('VmHWM') };
}

describe('stored request bodies are capped', () => {
  let h: Harness;
  let tree: Tree;
  beforeAll(async () => {
    h = await startHarness({ workers: false, env: { JOB_REQUEST_MAX_BYTES: '2048' } });
    tree = await createTree(h);
  });
  afterAll(async () => h?.close());

  it('a request over JOB_REQUEST_MAX_BYTES is a typed ValidationError and writes nothing', async () => {
    const before = await rowCounts(h);
    const requestsBefore = h.sim.stats().requests['POST /v3/videos'] ?? 0;
    // 3 × 1000 characters of script in scenes: valid for HeyGen, but above the 2 KiB stored-body limit.
    const request = { scenes: [1, 2, 3].map((n) => ({ script: `${'word '.repeat(199)}end${n}` })), voice_id: 'v1' };
    const res = await h.gql(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request, idempotencyKey: 'big-1' } });
    expect(res.errors).toBeUndefined();
    expect(res.data.submitJob).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED', field: 'request' });
    expect(res.data.submitJob.message).toMatch(/at most 2048/);
    expect(await rowCounts(h)).toEqual(before);
    expect(h.sim.stats().requests['POST /v3/videos'] ?? 0).toBe(requestsBefore);
  });

  it('a request within the limit is admitted, and job lists still return it', async () => {
    const res = await h.gql(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } });
    expect(res.data.submitJob.__typename).toBe('SubmitJobPayload');
    // Lists read jobs without their request column; `request` is loaded on demand.
    const list = await h.gql(`{ jobs(first: 10) { edges { node { id status request } } } }`);
    expect(list.errors).toBeUndefined();
    expect(list.data.jobs.edges).toHaveLength(1);
    expect(list.data.jobs.edges[0].node.request).toEqual(avatarRequest());
  });

  it('the default limit is 64 KiB', async () => {
    const { loadConfig } = await import('../src/config.js');
    expect(loadConfig({}).jobRequestMaxBytes).toBe(64 * 1024);
    expect(loadConfig({}).heygen.maxResponseBytes).toBe(4 * 1024 * 1024);
    expect(loadConfig({ POLL_MIN_INTERVAL_MS: '7000' }).workers.statusReadMinIntervalMs).toBe(7000);
    expect(loadConfig({ STATUS_READ_MIN_INTERVAL_MS: '2500' }).workers.statusReadMinIntervalMs).toBe(2500);
    expect(() => loadConfig({ HEYGEN_MAX_RESPONSE_BYTES: '12' })).toThrow(/HEYGEN_MAX_RESPONSE_BYTES/);
  });
});

describe('webhook coalescing in PostgreSQL', () => {
  let h: Harness;
  let tree: Tree;
  beforeAll(async () => {
    h = await startHarness({ workers: false, sim: { autoComplete: false }, env: { STATUS_READ_MIN_INTERVAL_MS: '60000' } });
    tree = await createTree(h);
  });
  afterAll(async () => h?.close());

  it('50 concurrent hints for one job move its due time once; after a read, the next one waits the interval', async () => {
    const res = await h.gql(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } });
    expect(res.data.submitJob.job.status).toBe('SUBMITTED');
    const jobId = decodeGlobalID(res.data.submitJob.job.id).id;
    const videoId: string = res.data.submitJob.job.upstreamIds[0];
    const accountId = decodeGlobalID(tree.accountId).id;
    const deps = h.services.jobDeps;
    const interval = deps.follow.statusReadMinIntervalMs;
    expect(interval).toBe(60_000);

    const hint = (i: number) => hintJob(h.services.db, accountId, i % 2 ? { jobId, upstreamId: null } : { jobId: null, upstreamId: videoId }, interval);
    // As after a read: the poller's backoff has the job due in 5 minutes.
    await h.services.db.execute(sql`update jobs set next_check_at = now() + interval '5 minutes' where id = ${jobId}`);
    const first = await Promise.all(Array.from({ length: 50 }, (_, i) => hint(i)));
    expect(first.every((r) => r.accountKnown && r.jobId === jobId)).toBe(true);
    expect(first.filter((r) => r.scheduled)).toHaveLength(1);
    expect(first.find((r) => r.scheduled)!.dueNow).toBe(true);

    // One claim (one read) for it, and a second claim finds nothing.
    expect((await claimDueJobs(deps)).map((j) => j.id)).toEqual([jobId]);
    expect(await claimDueJobs(deps)).toEqual([]);
    const claimed = await jobRow(h, jobId);
    expect(claimed.last_checked_at).not.toBeNull();

    // The read ends with the job scheduled by the poller's backoff (here 5 minutes away); hints then bring it
    // forward to one interval after the read, once; the rest write nothing.
    await h.services.db.execute(sql`update jobs set next_check_at = now() + interval '5 minutes' where id = ${jobId}`);
    const second = await Promise.all(Array.from({ length: 50 }, (_, i) => hint(i)));
    expect(second.filter((r) => r.scheduled)).toHaveLength(1);
    expect(second.some((r) => r.dueNow)).toBe(false);
    const scheduled = await jobRow(h, jobId);
    expect(new Date(scheduled.next_check_at!).getTime() - new Date(claimed.last_checked_at!).getTime()).toBe(60_000);

    // Even a job made due by some other path is not read again within the interval.
    await h.services.db.execute(sql`update jobs set next_check_at = now() - interval '1 second' where id = ${jobId}`);
    expect(await claimDueJobs(deps)).toEqual([]);
    await h.services.db.execute(sql`update jobs set last_checked_at = now() - interval '61 seconds' where id = ${jobId}`);
    expect((await claimDueJobs(deps)).map((j) => j.id)).toEqual([jobId]);

    // Wrong account, unknown job: nothing.
    expect(await hintJob(h.services.db, randomUUID(), { jobId, upstreamId: videoId }, interval)).toEqual({
      accountKnown: false,
      jobId: null,
      scheduled: false,
      dueNow: false,
    });
    expect(await hintJob(h.services.db, accountId, { jobId: randomUUID(), upstreamId: 'nope' }, interval)).toEqual({
      accountKnown: true,
      jobId: null,
      scheduled: false,
      dueNow: false,
    });
  });
});

describe('a webhook that arrives while the job is still being forwarded', () => {
  let h: Harness;
  let tree: Tree;
  beforeAll(async () => {
    // HeyGen answers creates slowly, so the hint lands while the job is RESERVED (forwarding in flight).
    h = await startHarness({ workers: false, sim: { autoComplete: false, latencyMs: 1500 }, env: { POLL_MIN_INTERVAL_MS: '60000', POLL_MAX_INTERVAL_MS: '60000' } });
    tree = await createTree(h);
  });
  afterAll(async () => h?.close());

  it("is remembered once, and the job is due as soon as HeyGen's acceptance is recorded", async () => {
    const accountId = decodeGlobalID(tree.accountId).id;
    const submitting = h.gql(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } });
    const jobId = await waitFor(
      async () => (await queryRows<{ id: string }>(h.services.db, sql`select id::text from jobs where status = 'RESERVED' and submit_attempts = 1`))[0]?.id,
      5000,
      'the forwarding',
    );
    const hints = await Promise.all(Array.from({ length: 20 }, () => hintJob(h.services.db, accountId, { jobId, upstreamId: null }, 100)));
    expect(hints.filter((r) => r.scheduled)).toHaveLength(1);
    expect(hints.some((r) => r.dueNow)).toBe(false);
    const res = await submitting;
    expect(res.data.submitJob.job.status).toBe('SUBMITTED');
    // Not POLL_MIN_INTERVAL_MS (a minute) away: due at once, and the hint is spent.
    const [row] = await queryRows<{ due: boolean; hinted: boolean }>(
      h.services.db,
      sql`select next_check_at <= now() as due, hinted_at is not null as hinted from jobs where id = ${jobId}`,
    );
    expect(row).toEqual({ due: true, hinted: false });
  });
});

describe('signed webhooks are read at once, through the same claim', () => {
  let h: Harness;
  let tree: Tree;
  const SECRET = 'whsec_bounded_upstream_1';
  beforeAll(async () => {
    // No background work: a read can only come from a signed webhook's prompt handling or an explicit worker pass.
    h = await startHarness({ workers: false, sim: { autoComplete: false } });
    tree = await createTree(h, { webhookSecret: SECRET });
  });
  afterAll(async () => h?.close());

  function signed(accountId: string, body: string) {
    return fetch(`${h.url}/webhooks/heygen/${accountId}`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', 'x-heygen-signature': createHmac('sha256', SECRET).update(body).digest('hex') },
    });
  }

  it('a signed webhook reads and settles the job without the poller; an unsigned callback waits for a worker pass', async () => {
    const accountId = decodeGlobalID(tree.accountId).id;
    const res = await h.gql(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } });
    const jobId = decodeGlobalID(res.data.submitJob.job.id).id;
    const videoId: string = res.data.submitJob.job.upstreamIds[0];
    const body = JSON.stringify({ event_type: 'avatar_video.success', event_data: { video_id: videoId, callback_id: jobId } });

    const before = statusReads(h);
    expect((await signed(accountId, body)).status).toBe(202);
    await waitFor(() => statusReads(h) === before + 1, 20_000, 'the prompt read');

    // HeyGen completes it; once the interval since that read has passed, its webhook is read at once and settles.
    // Waiting also for the read to be recorded (its claim, a lease of 30 s and more, replaced by the poll schedule)
    // sends the webhook about when the job falls due by that schedule: a hint whose statement started before the due
    // time but checked the row after it once answered "not due", and no read followed (workers are off here).
    expect(h.sim.completeNow(videoId, { durationSeconds: 12 })).toBe(true);
    await waitFor(
      async () => (await queryRows<{ ok: boolean }>(h.services.db, sql`select now() >= last_checked_at + interval '100 milliseconds' and next_check_at < now() + interval '10 seconds' as ok from jobs where id = ${jobId}`))[0]!.ok,
      20_000,
      'the read interval',
    );
    expect((await signed(accountId, body)).status).toBe(202);
    const settled = await waitFor(async () => {
      const row = await jobRow(h, jobId);
      return row.status === 'SUCCEEDED' ? row : undefined;
    }, 20_000, 'settlement');
    expect(settled.actual).toBe('72000000');

    // An unsigned per-job callback only marks a job due: the next worker pass reads it.
    const second = await h.gql(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } });
    const secondId = decodeGlobalID(second.data.submitJob.job.id).id;
    const reads = statusReads(h);
    expect(await callback(h.url, accountId, { video_id: second.data.submitJob.job.upstreamIds[0], callback_id: secondId })).toBe(202);
    expect(new Date((await jobRow(h, secondId)).next_check_at!).getTime()).toBeLessThanOrEqual(Date.now());
    expect(await runWorkerOnce(h.services.jobDeps)).toBe(1);
    expect(statusReads(h)).toBe(reads + 1);
    await expectCountersEqualLedger(h.services.db);
  });
});

describe('a 1 GB answer and 10,000 callbacks against real gateway processes', () => {
  const READ_INTERVAL_MS = 1000;
  let h: Harness;
  let tree: Tree;
  let accountId: string;
  const gateways: GatewayProcess[] = [];

  beforeAll(async () => {
    // The test process does no background work: the two child gateways do all the forwarding and following.
    h = await startHarness({ workers: false, sim: { autoComplete: false } });
    tree = await createTree(h);
    accountId = decodeGlobalID(tree.accountId).id;
    const env = {
      DATABASE_URL: h.config.databaseUrl!,
      GATEWAY_MASTER_KEY: h.config.masterKey!,
      HEYGEN_BASE_URL: h.sim.url,
      WORKER_INTERVAL_MS: '50',
      POLL_MIN_INTERVAL_MS: '100',
      POLL_MAX_INTERVAL_MS: '400',
      STATUS_READ_MIN_INTERVAL_MS: String(READ_INTERVAL_MS),
      HEYGEN_TIMEOUT_MS: '20000',
      WALLET_SYNC_ENABLED: 'false',
      RATE_LIMIT_PER_MINUTE: '0',
      DB_POOL_SIZE: '10',
    };
    gateways.push(...(await Promise.all([spawnGateway(env), spawnGateway(env)])));
  }, 60_000);

  afterAll(async () => {
    agent.destroy();
    await Promise.all(gateways.map((g) => g.stop()));
    await h?.close();
  });

  it('callbacks for unknown jobs and accounts cost no upstream call', async () => {
    const total = () => Object.values(h.sim.stats().requests).reduce((a, b) => a + b, 0);
    const before = total();
    const statuses = await pool(400, 16, (i) => {
      const g = gateways[i % 2]!;
      switch (i % 4) {
        case 0:
          return callback(g.url, accountId, { video_id: `unknown_${i}`, callback_id: randomUUID() });
        case 1:
          return callback(g.url, accountId, { video_id: `unknown_${i}` });
        case 2:
          return callback(g.url, randomUUID(), { video_id: `unknown_${i}`, callback_id: randomUUID() });
        default:
          return callback(g.url, 'not-a-uuid', { video_id: `unknown_${i}` });
      }
    });
    expect(new Set(statuses)).toEqual(new Set([202, 404]));
    // Ids PostgreSQL cannot hold are unknown ids too, not errors.
    expect(await callback(gateways[0]!.url, accountId, { video_id: 'v\u0000x', callback_id: 'c\u0000' })).toBe(202);
    expect(total()).toBe(before);
  });

  it('RSS stays under 300 MB, status reads stay within one per interval, and the job settles once the fault is gone', async () => {
    const [g1, g2] = gateways as [GatewayProcess, GatewayProcess];
    let worstKb = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        for (const g of gateways) worstKb = Math.max(worstKb, memoryOf(g.child.pid!).rssKb);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    // 1. The create's answer is 1 GB (streamed, no Content-Length): the job exists upstream but the gateway
    // cannot read the answer, so the job is SUBMIT_UNKNOWN and the worker retries it with the same key.
    h.sim.configure({ oversizedNext: 1, oversizedBytes: 1024 ** 3, oversizedDeclareLength: false });
    const submitted = await fetch(`${g1.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${h.adminToken}` },
      body: JSON.stringify({ query: SUBMIT, variables: { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } } }),
    }).then((r) => r.json() as Promise<any>);
    expect(submitted.errors).toBeUndefined();
    expect(submitted.data.submitJob.job.status).toBe('SUBMIT_UNKNOWN');
    const jobId = decodeGlobalID(submitted.data.submitJob.job.id).id;
    expect(h.sim.stats().faults.oversized).toBe(1);
    await waitFor(async () => (await jobRow(h, jobId)).status === 'SUBMITTED', 20_000, 'the retried create');
    expect(h.sim.stats().jobsCreated[API_KEY]).toBe(1);
    expect(h.sim.stats().idempotency.replays).toBeGreaterThanOrEqual(1);
    const videoId = h.sim.jobs(API_KEY)[0]!.id;

    // 2. Every status read now gets a 1 GB answer, while 10,000 callbacks for the job (and 500 for unknown ids)
    // arrive at both processes.
    h.sim.configure({ oversizedNext: 1_000_000 });
    const oversizedBefore = h.sim.stats().faults.oversized;
    const readsBefore = statusReads(h);
    const started = Date.now();
    const statuses = await pool(10_500, 48, (i) => {
      const g = i % 2 === 0 ? g1 : g2;
      if (i % 21 === 20) return callback(g.url, accountId, { video_id: `unknown_${i}`, callback_id: randomUUID() });
      return callback(g.url, accountId, i % 3 === 0 ? { video_id: videoId } : { video_id: videoId, callback_id: jobId });
    });
    const elapsedMs = Date.now() - started;
    const reads = statusReads(h) - readsBefore;
    expect(statuses.filter((s) => s === 202)).toHaveLength(10_500);
    // Claims of one job are at least READ_INTERVAL_MS apart (by the database clock); one more may have been in
    // flight when the window opened.
    expect(reads).toBeLessThanOrEqual(Math.floor(elapsedMs / READ_INTERVAL_MS) + 2);
    expect(reads).toBeGreaterThanOrEqual(1);
    // Every one of those reads was a 1 GB answer, cut off by the gateway.
    expect(h.sim.stats().faults.oversized - oversizedBefore).toBeGreaterThanOrEqual(reads);
    expect((await jobRow(h, jobId)).status).toBe('SUBMITTED');

    sampling = false;
    await sampler;
    for (const g of gateways) {
      expect(g.child.exitCode).toBeNull();
      const { rssKb, peakKb } = memoryOf(g.child.pid!);
      worstKb = Math.max(worstKb, rssKb, peakKb);
    }
    console.log(`bounded-upstream: ${reads} status reads in ${elapsedMs} ms of callbacks; worst gateway RSS ${Math.round(worstKb / 1024)} MB`);
    expect(worstKb).toBeLessThan(300 * 1024);

    // 3. The fault goes away and HeyGen completes the video: the job settles at the fetched duration.
    h.sim.configure({ oversizedNext: 0 });
    expect(h.sim.completeNow(videoId, { durationSeconds: 12 })).toBe(true);
    const settled = await waitFor(async () => {
      const row = await jobRow(h, jobId);
      return row.status === 'SUCCEEDED' ? row : undefined;
    }, 20_000, 'settlement');
    expect(settled.reserved).toBe('0');
    expect(settled.actual).toBe('72000000'); // 12 s × 6 cs/s
    expect(h.sim.stats().jobsCreated[API_KEY]).toBe(1);
    await expectCountersEqualLedger(h.services.db);
    for (const g of gateways) expect(g.child.exitCode).toBeNull();
  }, 240_000);
});

// Holds expire for real: a job past HOLD_TTL_HOURS is read from HeyGen once more and settled, or released and
// EXPIRED (audited, with a drift note when HeyGen may still bill it). The worker is driven by hand, one pass at a time.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { sql } from 'drizzle-orm';
import { startHarness, type Harness } from './support/harness.js';
import { createTree, JOB_QUERY, SUBMIT, avatarRequest, type Tree } from './support/fixtures.js';
import { expectCountersEqualLedger } from './support/invariants.js';
import { queryRows } from '../src/db/client.js';
import { runWorkerOnce } from '../src/jobs/worker.js';

describe('expired holds', () => {
  let h: Harness;
  let tree: Tree;
  beforeAll(async () => {
    h = await startHarness({ workers: false, sim: { fixedDurationSeconds: 10, autoComplete: false }, env: { HEYGEN_TIMEOUT_MS: '300', HEYGEN_MAX_ATTEMPTS: '1' } });
    tree = await createTree(h);
  });
  afterAll(async () => h?.close());

  async function submit() {
    const res = await h.gql(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } });
    expect(res.errors).toBeUndefined();
    expect(res.data.submitJob.__typename).toBe('SubmitJobPayload');
    return res.data.submitJob.job as { id: string; status: string; upstreamIds: string[] };
  }
  const rawId = (id: string) => decodeGlobalID(id).id;
  const job = async (id: string) => (await h.gql(JOB_QUERY, { id })).data.job;
  /** Moves the job's hold deadline (and, optionally, its admission) into the past and makes it due now. */
  async function age(id: string, opts: { holdExpiredHoursAgo: number; createdHoursAgo?: number }) {
    await h.services.db.execute(sql`update jobs set hold_expires_at = now() - make_interval(hours => ${opts.holdExpiredHoursAgo}),
      created_at = now() - make_interval(hours => ${opts.createdHoursAgo ?? 0}), next_check_at = now(), last_checked_at = null where id = ${rawId(id)}`);
  }
  const driftNotes = (id: string) => queryRows<{ reason: string; released: string }>(h.services.db, sql`select reason, released_micro_cs::text as released from drift_notes where job_id = ${rawId(id)}`);
  const audits = (id: string, action: string) =>
    queryRows<{ actor_role: string; after: Record<string, unknown> }>(h.services.db, sql`select actor_role, after from audit_events where entity_id = ${rawId(id)} and action = ${action}`);

  it('a job HeyGen is still rendering past its deadline: hold released, EXPIRED, audited, drift noted', async () => {
    const submitted = await submit();
    expect(submitted.status).toBe('SUBMITTED');
    await age(submitted.id, { holdExpiredHoursAgo: 1 });
    const statusReads = h.sim.stats().requests['GET /v3/videos/statuses'] ?? 0;
    await runWorkerOnce(h.services.jobDeps);
    // One last read of HeyGen before giving up.
    expect((h.sim.stats().requests['GET /v3/videos/statuses'] ?? 0) - statusReads).toBe(1);
    const expired = await job(submitted.id);
    expect(expired.status).toBe('EXPIRED');
    expect(expired.reservedCreditSeconds).toBe('0');
    expect(expired.actualCreditSeconds).toBe('0');
    expect(expired.failureCode).toBe('hold_expired');
    expect(await driftNotes(submitted.id)).toEqual([{ reason: 'hold_expired', released: '52800000' }]);
    const [audit] = await audits(submitted.id, 'job.expire');
    expect(audit!.actor_role).toBe('SYSTEM');
    expect(audit!.after).toMatchObject({ status: 'EXPIRED', mayStillBill: true, releasedMicroCs: '52800000' });
    await expectCountersEqualLedger(h.services.db);
    // Settling again moves nothing: a later pass leaves the job alone.
    await runWorkerOnce(h.services.jobDeps);
    expect((await job(submitted.id)).status).toBe('EXPIRED');
  });

  it('a job HeyGen finished by the time the deadline passed is settled from HeyGen, not expired', async () => {
    const submitted = await submit();
    h.sim.completeNow(submitted.upstreamIds[0]!, { durationSeconds: 7 });
    await age(submitted.id, { holdExpiredHoursAgo: 1 });
    await runWorkerOnce(h.services.jobDeps);
    const settled = await job(submitted.id);
    expect(settled.status).toBe('SUCCEEDED');
    expect(settled.actualCreditSeconds).toBe('42');
    expect(await driftNotes(submitted.id)).toEqual([]);
    expect(await audits(submitted.id, 'job.expire')).toEqual([]);
    await expectCountersEqualLedger(h.services.db);
  });

  it('an unreadable HeyGen past the deadline: kept for a day, then expired', async () => {
    const submitted = await submit();
    await age(submitted.id, { holdExpiredHoursAgo: 1 });
    // HeyGen unreachable: nothing listens on port 9 of this host.
    await h.services.db.execute(sql`update accounts set base_url = 'http://127.0.0.1:9' where id = ${rawId(tree.accountId)}`);
    try {
      await runWorkerOnce(h.services.jobDeps);
      expect((await job(submitted.id)).status).toBe('SUBMITTED');
      await age(submitted.id, { holdExpiredHoursAgo: 25 });
      await runWorkerOnce(h.services.jobDeps);
    } finally {
      await h.services.db.execute(sql`update accounts set base_url = ${h.sim.url} where id = ${rawId(tree.accountId)}`);
    }
    expect((await job(submitted.id)).status).toBe('EXPIRED');
    expect(await driftNotes(submitted.id)).toHaveLength(1);
    await expectCountersEqualLedger(h.services.db);
  });

  it('the 23-hour give-up: a submission whose outcome stayed unknown is EXPIRED with a drift note, never resent', async () => {
    h.sim.configure({ fail5xxRate: 1 });
    let submitted: Awaited<ReturnType<typeof submit>>;
    try {
      submitted = await submit();
      expect(submitted.status).toBe('SUBMIT_UNKNOWN');
      // Within HeyGen's replay window the worker retries with the same key.
      await h.services.db.execute(sql`update jobs set next_check_at = now() where id = ${rawId(submitted.id)}`);
      const posts = h.sim.stats().requests['POST /v3/videos'] ?? 0;
      await runWorkerOnce(h.services.jobDeps);
      expect((h.sim.stats().requests['POST /v3/videos'] ?? 0) - posts).toBe(1);
      expect((await job(submitted.id)).status).toBe('SUBMIT_UNKNOWN');
      // 23 h and more after admission (the hold itself still valid): the next attempt gives up.
      await h.services.db.execute(sql`update jobs set created_at = now() - interval '23 hours 1 minute', next_check_at = now() where id = ${rawId(submitted.id)}`);
      await runWorkerOnce(h.services.jobDeps);
    } finally {
      h.sim.configure({ fail5xxRate: 0 });
    }
    const expired = await job(submitted!.id);
    expect(expired.status).toBe('EXPIRED');
    expect(expired.failureCode).toBe('submit_unresolved');
    expect(expired.reservedCreditSeconds).toBe('0');
    expect(await driftNotes(submitted!.id)).toEqual([{ reason: 'submit_unresolved', released: '52800000' }]);
    // Never sent again after giving up.
    await h.services.db.execute(sql`update jobs set next_check_at = now() where id = ${rawId(submitted!.id)}`);
    const posts = h.sim.stats().requests['POST /v3/videos'] ?? 0;
    await runWorkerOnce(h.services.jobDeps);
    expect(h.sim.stats().requests['POST /v3/videos'] ?? 0).toBe(posts);
    await expectCountersEqualLedger(h.services.db);
  });

  it('a job never sent to HeyGen expires without a drift note (nothing can be billed)', async () => {
    // Admitted through the domain function, which (unlike submitJob) does not forward: no attempt is ever counted.
    const { admitJob } = await import('../src/jobs/admission.js');
    const actor = { subject: 'admin:test', role: 'ADMIN' as const, unitId: null, unitPath: [], tokenId: null };
    const admitted = await admitJob(
      h.services.db,
      actor,
      { projectId: rawId(tree.projectId), kind: 'AVATAR_VIDEO', request: avatarRequest(), estimatedSeconds: null, idempotencyKey: null },
      h.services.admission,
    );
    await h.services.db.execute(sql`update jobs set hold_expires_at = now() - interval '1 hour', next_check_at = now() where id = ${admitted.job.id}`);
    const posts = h.sim.stats().requests['POST /v3/videos'] ?? 0;
    await runWorkerOnce(h.services.jobDeps);
    expect(h.sim.stats().requests['POST /v3/videos'] ?? 0).toBe(posts);
    const [row] = await queryRows<{ status: string; reserved: string }>(h.services.db, sql`select status::text, reserved_micro_cs::text as reserved from jobs where id = ${admitted.job.id}`);
    expect(row).toEqual({ status: 'EXPIRED', reserved: '0' });
    expect(await queryRows(h.services.db, sql`select 1 from drift_notes where job_id = ${admitted.job.id}`)).toEqual([]);
    const [audit] = await queryRows<{ after: Record<string, unknown> }>(h.services.db, sql`select after from audit_events where entity_id = ${admitted.job.id} and action = 'job.expire'`);
    expect(audit!.after).toMatchObject({ mayStillBill: false });
    await expectCountersEqualLedger(h.services.db);
  });
});

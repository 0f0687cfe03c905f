// Group commit after admission (src/jobs/follow.ts, FOLLOW_GROUP_COMMIT_MAX): forwarding's bookkeeping of concurrent
// submissions, and the settlements of a worker pass's jobs of one account, go together in one transaction each
// (gateway_follow_batch), every job with the outcome it would have had alone;
// a batch that fails as a whole is made again call by call, so that only the bad job fails.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { decodeGlobalID } from '@pothos/plugin-relay';
import pg from 'pg';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { createTree, issueServiceToken, setBudget, SUBMIT, avatarRequest, type Tree } from './support/fixtures.js';
import { expectCountersEqualLedger } from './support/invariants.js';
import { queryRows } from '../src/db/client.js';
import { runClaimed, runWorkerOnce } from '../src/jobs/worker.js';

let h: Harness;
const raw = (globalId: string) => decodeGlobalID(globalId).id;

beforeAll(async () => {
  h = await startHarness({ workers: false, sim: { renderMs: 0 }, env: { POLL_MIN_INTERVAL_MS: '10', STATUS_READ_MIN_INTERVAL_MS: '10' } });
  expect(h.services.jobDeps.follow.groupCommitMax).toBeGreaterThan(1);
});
afterAll(async () => h?.close());

/** Every statement text the gateway's database client sends while `run` runs. */
async function counted<T>(run: () => Promise<T>): Promise<{ value: T; statements: string[] }> {
  const statements: string[] = [];
  h.services.database.onQuery = (text) => statements.push(text);
  try {
    return { value: await run(), statements };
  } finally {
    h.services.database.onQuery = undefined;
  }
}

async function submitMany(tree: Tree, token: string, n: number): Promise<string[]> {
  const answers = await Promise.all(
    Array.from({ length: n }, () => h.gql(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } }, token)),
  );
  return answers.map((a) => {
    expect(a.errors).toBeUndefined();
    return raw(a.data.submitJob.job.id as string);
  });
}

const jobsOf = (ids: string[]) =>
  queryRows<{ id: string; status: string; items: number; entries: string; events: number }>(
    h.services.db,
    sql`select j.id::text, j.status::text,
          (select count(*)::int from job_items i where i.job_id = j.id) as items,
          (select string_agg(e.entry_type::text, ',' order by e.entry_type::text) from ledger_entries e where e.job_id = j.id) as entries,
          (select count(*)::int from outbox_events o where o.topic = 'money_event' and o.dedupe_key = 'job.finished:' || j.id::text) as events
        from jobs j where j.id = any(${`{${ids.join(',')}}`}::uuid[])`,
  );

/** Worker passes until none of `ids` is left to read (each pass reads and settles the due jobs). */
async function passes(ids: string[]): Promise<void> {
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 20));
    await runWorkerOnce(h.services.jobDeps);
    if ((await jobsOf(ids)).every((j) => j.status !== 'SUBMITTED' && j.status !== 'PROCESSING')) return;
  }
}

describe('group commit after admission', () => {
  it('concurrent submissions record HeyGen’s acceptance in fewer transactions than jobs, each job with its own items', async () => {
    const tree = await createTree(h, { name: 'MarkBatched' });
    const { token } = await issueServiceToken(h, tree.projectId);
    const { value: ids, statements } = await counted(() => submitMany(tree, token, 24));
    const marks = statements.filter((s) => /gateway_mark_submitted\(|gateway_follow_batch\('mark'/.test(s));
    expect(marks.some((s) => s.includes("gateway_follow_batch('mark'"))).toBe(true);
    expect(marks.length).toBeLessThan(24);
    const jobs = await jobsOf(ids);
    expect(jobs).toHaveLength(24);
    for (const j of jobs) expect(j).toMatchObject({ status: 'SUBMITTED', items: 1, entries: 'HOLD' });
    await expectCountersEqualLedger(h.services.db);
    // Settled here, so that the next test's pass counts its own jobs only.
    await passes(ids);
    for (const j of await jobsOf(ids)) expect(j).toMatchObject({ status: 'SUCCEEDED', entries: 'DEBIT,HOLD,RELEASE', events: 1 });
  });

  it("a worker pass settles one account's jobs in batches of at most FOLLOW_GROUP_COMMIT_MAX, each once, the counters equal to the ledger", async () => {
    const tree = await createTree(h, { name: 'SettleBatched' });
    await setBudget(h, { orgUnitId: tree.teamId, accountId: tree.accountId, window: 'MONTHLY', limitCreditSeconds: '100000' });
    const { token } = await issueServiceToken(h, tree.projectId);
    const ids = await submitMany(tree, token, 21);
    const max = h.services.jobDeps.follow.groupCommitMax;
    h.services.jobDeps.follow.groupCommitMax = 4;
    try {
      await new Promise((r) => setTimeout(r, 30));
      const { statements } = await counted(() => runWorkerOnce(h.services.jobDeps));
      const settles = statements.filter((s) => /gateway_settle_followed\(|gateway_follow_batch\('settle'/.test(s));
      // The first alone, the 20 that arrived while it was in flight in 5 batches of 4.
      expect(settles.filter((s) => s.includes("gateway_follow_batch('settle'"))).toHaveLength(5);
      expect(settles).toHaveLength(6);
    } finally {
      h.services.jobDeps.follow.groupCommitMax = max;
    }
    const jobs = await jobsOf(ids);
    for (const j of jobs) expect(j).toMatchObject({ status: 'SUCCEEDED', entries: 'DEBIT,HOLD,RELEASE', events: 1 });
    await expectCountersEqualLedger(h.services.db);
    // A second pass finds nothing to move: each job settled once.
    await runWorkerOnce(h.services.jobDeps);
    expect((await jobsOf(ids)).map((j) => j.entries)).toEqual(jobs.map((j) => j.entries));
  });

  it('a settlement that fails inside a batch fails alone: the batch is made again job by job, and the job settles once it can', async () => {
    const tree = await createTree(h, { name: 'SettleOneBad' });
    const { token } = await issueServiceToken(h, tree.projectId);
    const ids = await submitMany(tree, token, 8);
    // The pass takes its jobs in id order, and the first goes alone: the last one is in the batch.
    const bad = [...ids].sort().at(-1)!;
    // A fault only this job's settlement meets: its items cannot be written.
    await h.services.db.execute(sql.raw(`
      create function test_refuse_item() returns trigger language plpgsql as $$
      begin raise exception 'item of job % refused by the test', new.job_id; end $$;
      create trigger test_refuse_item before update on job_items for each row
        when (new.job_id = '${bad}'::uuid) execute function test_refuse_item()`));
    try {
      await new Promise((r) => setTimeout(r, 30));
      const { statements } = await counted(() => runWorkerOnce(h.services.jobDeps));
      const settles = statements.filter((s) => /gateway_settle_followed\(|gateway_follow_batch\('settle'/.test(s));
      // The first alone, the other seven in one batch that failed, then each of the seven alone.
      expect(settles.map((s) => s.includes("gateway_follow_batch('settle'"))).toEqual([false, true, ...Array(7).fill(false)]);
      const jobs = new Map((await jobsOf(ids)).map((j) => [j.id, j]));
      expect(jobs.get(bad)).toMatchObject({ status: 'SUBMITTED', entries: 'HOLD', events: 0 });
      for (const id of ids.filter((i) => i !== bad)) expect(jobs.get(id)).toMatchObject({ status: 'SUCCEEDED', entries: 'DEBIT,HOLD,RELEASE', events: 1 });
      await expectCountersEqualLedger(h.services.db);
    } finally {
      await h.services.db.execute(sql.raw('drop trigger test_refuse_item on job_items; drop function test_refuse_item()'));
    }
    // The failed job was rescheduled; with the fault gone, a later pass settles it.
    await h.services.db.execute(sql`update jobs set next_check_at = now(), last_checked_at = null where id = ${bad}::uuid`);
    await passes([bad]);
    expect((await jobsOf([bad]))[0]).toMatchObject({ status: 'SUCCEEDED', entries: 'DEBIT,HOLD,RELEASE', events: 1 });
    await expectCountersEqualLedger(h.services.db);
  });

  it('two reads of one job at once in one process: the second settlement waits for the first and moves nothing', async () => {
    const tree = await createTree(h, { name: 'SettleTwice' });
    const { token } = await issueServiceToken(h, tree.projectId);
    const [id] = await submitMany(tree, token, 1);
    await new Promise((r) => setTimeout(r, 30));
    const claim = { id: id!, status: 'SUBMITTED' as const, holdExpiresAt: new Date(Date.now() + 3600_000) };
    const details = () => h.sim.stats().requests['GET /v3/videos/{video_id}'] ?? 0;
    const before = details();
    // The job's row held here until both reads have HeyGen's answer: the first settlement then waits in the database,
    // the second in the process, behind it.
    const blocker = new pg.Client({ connectionString: h.database.url });
    await blocker.connect();
    const { statements } = await counted(async () => {
      try {
        await blocker.query('begin');
        await blocker.query('select 1 from jobs where id = $1 for update', [id]);
        const reads = Promise.all([runClaimed(h.services.jobDeps, [claim], { detailFirst: true }), runClaimed(h.services.jobDeps, [claim], { detailFirst: true })]);
        await waitFor(async () => details() - before === 2 || undefined, 10_000, 5);
        await blocker.query('commit');
        await reads;
      } finally {
        await blocker.end();
      }
    });
    // One after the other, each alone: the first settles, the second finds the job settled.
    expect(statements.filter((s) => /gateway_settle_followed\(|gateway_follow_batch\('settle'/.test(s)).map((s) => s.includes('gateway_follow_batch('))).toEqual([false, false]);
    expect((await jobsOf([id!]))[0]).toMatchObject({ status: 'SUCCEEDED', entries: 'DEBIT,HOLD,RELEASE', events: 1 });
    await expectCountersEqualLedger(h.services.db);
  });
});

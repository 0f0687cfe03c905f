// A signed webhook followed with fewer statements and HeyGen calls: its hint claims the job in its own statement
// (hintAndClaimJob), by the worker claim's rules, and the job's detail is read at once, without the bulk status first.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHmac, randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { avatarRequest, createTree, SUBMIT, type Tree } from './support/fixtures.js';
import { expectCountersEqualLedger } from './support/invariants.js';
import { logStatements, type StatementLog } from './support/statement-log.js';
import { queryRows } from '../src/db/client.js';
import { hintAndClaimJob, hintJob } from '../src/jobs/follow.js';
import { claimDueJobs } from '../src/jobs/worker.js';

// Every statement a pg client of this process sends to the harness's database (log.database, set once it exists).
let log: StatementLog;
beforeAll(() => {
  log = logStatements();
});
afterAll(() => {
  log.restore();
});

async function jobRow(h: Harness, jobId: string) {
  const [row] = await queryRows<{ status: string; actual: string | null; check_attempts: number; last_checked_at: Date | null; next_check_at: Date | null }>(
    h.services.db,
    sql`select status::text, actual_micro_cs::text as actual, check_attempts, last_checked_at, next_check_at from jobs where id = ${jobId}`,
  );
  return row!;
}

async function submit(h: Harness, tree: Tree): Promise<{ id: string; videoId: string }> {
  const res = await h.gql(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } });
  expect(res.data.submitJob.job.status).toBe('SUBMITTED');
  return { id: decodeGlobalID(res.data.submitJob.job.id).id, videoId: res.data.submitJob.job.upstreamIds[0] };
}

const reads = (h: Harness) => {
  const requests = h.sim.stats().requests;
  return { bulk: requests['GET /v3/videos/statuses'] ?? 0, detail: requests['GET /v3/videos/{video_id}'] ?? 0 };
};

describe('a hint that claims', () => {
  let h: Harness;
  let tree: Tree;
  beforeAll(async () => {
    h = await startHarness({ workers: false, sim: { autoComplete: false }, env: { STATUS_READ_MIN_INTERVAL_MS: '60000' } });
    tree = await createTree(h);
  });
  afterAll(async () => h?.close());

  it("claims a readable job once, as the worker's claim would; a read job is only scheduled, as by hintJob", async () => {
    const { id: jobId, videoId } = await submit(h, tree);
    const accountId = decodeGlobalID(tree.accountId).id;
    const deps = h.services.jobDeps;
    const interval = deps.follow.statusReadMinIntervalMs;
    const leaseMs = Math.ceil(deps.follow.leaseMs / 1000) * 1000;
    const hint = (i: number) => hintAndClaimJob(h.services.db, accountId, i % 2 ? { jobId, upstreamId: null } : { jobId: null, upstreamId: videoId }, interval, deps.follow.leaseMs);

    // As after a read long ago: due in 5 minutes by the backoff, readable now.
    await h.services.db.execute(sql`update jobs set next_check_at = now() + interval '5 minutes', last_checked_at = now() - interval '61 seconds' where id = ${jobId}`);
    const first = await Promise.all(Array.from({ length: 50 }, (_, i) => hint(i)));
    expect(first.every((r) => r.accountKnown && r.jobId === jobId)).toBe(true);
    const claimed = first.filter((r) => r.claimed);
    expect(claimed).toHaveLength(1);
    expect(claimed[0]!.claimed).toMatchObject({ id: jobId, status: 'SUBMITTED' });
    expect(claimed[0]!.claimed!.holdExpiresAt.getTime()).toBeGreaterThan(Date.now());
    // The row as the worker's claim leaves it: leased, one attempt, read now.
    const row = await jobRow(h, jobId);
    expect(row.check_attempts).toBe(1);
    expect(new Date(row.next_check_at!).getTime() - new Date(row.last_checked_at!).getTime()).toBe(leaseMs);
    // The others, queued on the row lock, found it read: no second claim, here or by the worker.
    expect(await claimDueJobs(deps)).toEqual([]);

    // After the read (the backoff has it due in 5 minutes): hints bring it forward to one interval after the read,
    // once, and claim nothing.
    await h.services.db.execute(sql`update jobs set next_check_at = now() + interval '5 minutes' where id = ${jobId}`);
    const second = await Promise.all(Array.from({ length: 50 }, (_, i) => hint(i)));
    expect(second.some((r) => r.claimed)).toBe(false);
    expect(second.filter((r) => r.scheduled)).toHaveLength(1);
    expect(second.some((r) => r.dueNow)).toBe(false);
    const scheduled = await jobRow(h, jobId);
    expect(new Date(scheduled.next_check_at!).getTime() - new Date(row.last_checked_at!).getTime()).toBe(interval);

    // Wrong account, unknown job: nothing, as hintJob.
    for (const [account, jobHint] of [
      [randomUUID(), { jobId, upstreamId: videoId }],
      [accountId, { jobId: randomUUID(), upstreamId: 'nope' }],
    ] as const) {
      const plain = await hintJob(h.services.db, account, jobHint, interval);
      expect(await hintAndClaimJob(h.services.db, account, jobHint, interval, deps.follow.leaseMs)).toEqual({ ...plain, claimed: null });
    }
  });
});

describe('a signed webhook', () => {
  let h: Harness;
  let tree: Tree;
  const SECRET = 'whsec_follow_batch_1';
  beforeAll(async () => {
    // No background work: a read can only come from the webhook.
    h = await startHarness({ workers: false, sim: { autoComplete: false } });
    log.database = new URL(h.database.url).pathname.slice(1);
    tree = await createTree(h, { webhookSecret: SECRET });
  });
  afterAll(async () => {
    log.database = '';
    await h?.close();
  });

  it('claims the job in its hint and reads its detail alone: the hint, the read and the settling call, one HeyGen call', async () => {
    const accountId = decodeGlobalID(tree.accountId).id;
    const { id: jobId, videoId } = await submit(h, tree);
    expect(h.sim.completeNow(videoId, { durationSeconds: 5 })).toBe(true);
    const body = JSON.stringify({ event_type: 'avatar_video.success', event_data: { video_id: videoId, callback_id: jobId } });
    const before = reads(h);
    log.sent.length = 0;
    const res = await fetch(`${h.url}/webhooks/heygen/${accountId}`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', 'x-heygen-signature': createHmac('sha256', SECRET).update(body).digest('hex') },
    });
    expect(res.status).toBe(202);
    const settled = await waitFor(async () => {
      const row = await jobRow(h, jobId);
      return row.status === 'SUCCEEDED' ? row : undefined;
    }, 20_000);
    expect(settled.actual).toBe('30000000');
    expect(reads(h)).toEqual({ bulk: before.bulk, detail: before.detail + 1 });
    // The gateway's statements (this test's own reads of the job left out).
    const gateway = log.sent.filter((s) => !s.startsWith('select status::text, actual_micro_cs::text as actual, check_attempts'));
    const shown = gateway.map((s) => s.replace(/\s+/g, ' ').slice(0, 120)).join('\n');
    // The signed endpoint reads the account's secret; then the hint (with the claim), the status read, the settling call.
    expect(gateway, shown).toHaveLength(4);
    expect(gateway[0], shown).toMatch(/^select "id", "name", .* from "accounts"/s);
    expect(gateway[1], shown).toMatch(/^with target as .*make_interval\(secs => \$3\)/s);
    expect(gateway[2], shown).toMatch(/^select j\.id, j\.account_id/);
    expect(gateway[3], shown).toMatch(/^select gateway_settle_followed\(/);
    await expectCountersEqualLedger(h.services.db);
  });
});

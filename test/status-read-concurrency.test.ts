// A worker pass reads the details of an account's finished jobs (their durations, which the money depends on) a few
// at a time (STATUS_READ_CONCURRENCY), not one after the other: with HeyGen's round trip of a few hundred ms from the
// gateway, 50 finished jobs read one by one took a pass of seconds, and settlements fell behind a burst. The bound is
// what HeyGen sees: the simulator counts the reads it answers at once.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startHarness, type Harness } from './support/harness.js';
import { createTree, issueServiceToken, SUBMIT, avatarRequest, type Tree } from './support/fixtures.js';
import { expectCountersEqualLedger } from './support/invariants.js';
import { queryRows } from '../src/db/client.js';
import { runWorkerOnce } from '../src/jobs/worker.js';

let h: Harness;
let tree: Tree;
let token: string;

beforeAll(async () => {
  // Every HeyGen call answers after 250 ms (longer than opening the pool's connections takes on a loaded machine);
  // jobs are done as soon as they are created.
  h = await startHarness({ workers: false, sim: { renderMs: 0, latencyMs: 250 }, env: { STATUS_READ_CONCURRENCY: '4', POLL_MIN_INTERVAL_MS: '10', STATUS_READ_MIN_INTERVAL_MS: '10' } });
  tree = await createTree(h);
  token = (await issueServiceToken(h, tree.projectId, 'reads')).token;
});
afterAll(async () => h?.close());

/**
 * Submits `n` jobs at once (forwarded inline), makes them due, and runs one worker pass (`before` runs just before
 * it); returns their statuses.
 */
async function onePass(n: number, before?: () => void): Promise<string[]> {
  const answers = await Promise.all(
    Array.from({ length: n }, () => h.gql(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } }, token)),
  );
  const ids = answers.map((a) => {
    expect(a.errors).toBeUndefined();
    expect(a.data.submitJob.job.status).toBe('SUBMITTED');
    return decodeGlobalID(a.data.submitJob.job.id as string).id;
  });
  const idList = `{${ids.join(',')}}`;
  await h.services.db.execute(sql`update jobs set next_check_at = now() where id = any(${idList}::uuid[])`);
  before?.();
  expect(await runWorkerOnce(h.services.jobDeps)).toBe(n);
  return (await queryRows<{ status: string }>(h.services.db, sql`select status::text from jobs where id = any(${idList}::uuid[])`)).map((r) => r.status);
}

it('reads the finished jobs of a pass at most STATUS_READ_CONCURRENCY at a time, and settles every one', async () => {
  expect(h.services.jobDeps.follow.statusReadConcurrency).toBe(4);
  // Nothing was read before the pass (submissions are creates).
  const statuses = await onePass(12, () => expect(h.sim.stats().maxReadsInFlight).toBe(0));
  expect(statuses).toEqual(Array(12).fill('SUCCEEDED'));
  // One bulk status read, then twelve details, four at a time.
  expect(h.sim.stats().requests['GET /v3/videos/{video_id}']).toBe(12);
  expect(h.sim.stats().maxReadsInFlight).toBe(4);
  await expectCountersEqualLedger(h.services.db);
});

it('a read that fails fails the pass: no read is started after it, and a later pass settles every job once', async () => {
  const heygen = h.services.jobDeps.heygen;
  const getVideo = heygen.getVideo;
  let reads = 0;
  // HeyGen's answer lost for every detail read (the client's retries spent): the first failure ends the pass.
  heygen.getVideo = async () => {
    reads += 1;
    throw new Error('HeyGen did not answer');
  };
  let statuses: string[];
  try {
    statuses = await onePass(10);
  } finally {
    heygen.getVideo = getVideo;
  }
  // The reads already in flight when the first one failed, at most the bound; the rest were never started.
  expect(reads).toBeGreaterThanOrEqual(1);
  expect(reads).toBeLessThanOrEqual(4);
  expect(statuses).toEqual(Array(10).fill('SUBMITTED'));
  // The jobs were rescheduled (backoff); made due again, one pass settles them all.
  await h.services.db.execute(sql`update jobs set next_check_at = now() where status = 'SUBMITTED'`);
  expect(await runWorkerOnce(h.services.jobDeps)).toBe(10);
  const left = await queryRows<{ n: number }>(h.services.db, sql`select count(*)::int as n from jobs where status <> 'SUCCEEDED'`);
  expect(left[0]!.n).toBe(0);
  await expectCountersEqualLedger(h.services.db);
});

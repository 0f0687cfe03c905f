// Fair share measured in slot-seconds (docs/governance.md, "Concurrency queue"), on a virtual clock: the real
// dispatcher (gateway_dispatch, in PostgreSQL) is called at fixed instants, each dispatched job is recorded as taken
// by HeyGen at that instant (submitted_at) and settled when its render ends (settled_at), and the slot-seconds are
// read back from those columns. No process waits for anything: a run of minutes of renders takes a second or two.
// A (weight 2) floods the queue, B (weight 1) arrives later; over B's busy period (its first start to its last),
// A:B slot-seconds must be 2:1 ± 10 %, when A's renders take twice B's, when B's take twice A's, and when the
// account's limit does not divide by the weights (7 and 5 slots: 2:1 is 4.67:2.33 and 3.33:1.67 slots).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { sql } from 'drizzle-orm';
import { startHarness, type Harness } from './support/harness.js';
import { SUBMIT, avatarRequest, createTree, mustMutate, type Tree } from './support/fixtures.js';
import { expectCountersEqualLedger } from './support/invariants.js';
import { queryRows } from '../src/db/client.js';
import { IN_FLIGHT_STATUSES, nextStatus } from '../src/jobs/lifecycle.js';
import { settleJob } from '../src/jobs/settlement.js';

let h: Harness;

beforeAll(async () => {
  // No background work: nothing dispatches, polls or expires but the test.
  h = await startHarness({ workers: false, sim: { autoComplete: false } });
});
afterAll(async () => h?.close());

const rawId = (id: string) => decodeGlobalID(id).id;

async function submit(projectId: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const res = await h.gql(SUBMIT, { input: { projectId, kind: 'AVATAR_VIDEO', request: avatarRequest(), queue: true } });
    expect(res.data.submitJob.__typename).toBe('SubmitJobPayload');
    ids.push(rawId(res.data.submitJob.job.id));
  }
  return ids;
}

interface Run {
  unit: 'A' | 'B';
  start: number;
  end: number;
}

/** One scenario: `limit` slots, A's and B's render seconds; B's `bJobs` arrive after `aheadSeconds` of A alone. */
async function scenario(name: string, limit: number, renderA: number, renderB: number, aJobs: number, bJobs: number, aheadSeconds: number) {
  const tree: Tree = await createTree(h, { name, concurrencyLimit: limit });
  await mustMutate(
    h,
    `mutation($input: SetConcurrencySharesInput!) { setConcurrencyShares(input: $input) { __typename ... on Error { message code } } }`,
    { input: { accountId: tree.accountId, shares: [{ orgUnitId: tree.teamId, weight: 2 }, { orgUnitId: tree.otherTeamId, weight: 1 }] } },
    'setConcurrencyShares',
  );
  const accountId = rawId(tree.accountId);
  const unitOf = new Map<string, 'A' | 'B'>();
  // The first `limit` start at once (forwarded to the simulator): they fill the account, so the rest wait.
  const blockers = await submit(tree.projectId, limit);
  for (const id of await submit(tree.projectId, aJobs)) unitOf.set(id, 'A');
  const base = Date.now() + 3600_000;
  const at = (t: number) => new Date(base + t * 1000);
  // The blockers end at virtual 0, after an ordinary render of A: every slot is free, the queue full of A.
  await queryRows(h.services.db, sql`update jobs set submitted_at = ${at(-renderA)} where id in (${sql.join(blockers.map((id) => sql`${id}`), sql`, `)})`);
  for (const id of blockers) expect((await settleJob(h.services.db, id, { type: 'expired', reason: 'hold_expired', message: 'test' }, at(0))).changed).toBe(true);

  const running = new Map<string, number>(); // job id → virtual end
  const runs = new Map<string, Run>();
  let t = 0;
  let bArrived = false;
  const fill = async () => {
    for (;;) {
      const [row] = await queryRows<{ r: { outcome: string; job?: { id: string } } | string }>(
        h.services.db,
        sql`select gateway_dispatch(${JSON.stringify({
          account_id: accountId,
          in_flight_statuses: IN_FLIGHT_STATUSES,
          status: nextStatus('QUEUED', 'DISPATCH'),
          now: at(t).toISOString(),
          lease_until: at(t + 3600).toISOString(),
          hold_expires_at: at(t + 7200).toISOString(),
        })}::jsonb) as r`,
      );
      const answer = typeof row!.r === 'string' ? JSON.parse(row!.r) : row!.r;
      if (answer.outcome !== 'dispatched') break;
      const id = answer.job.id as string;
      const unit = unitOf.get(id)!;
      // HeyGen takes it at once: the slot is held from this instant to the render's end.
      await queryRows(h.services.db, sql`update jobs set status = 'SUBMITTED', submitted_at = ${at(t)}, next_check_at = null where id = ${id}`);
      running.set(id, t + (unit === 'A' ? renderA : renderB));
    }
  };
  let bQueued = Infinity;
  while (bQueued > 0 || [...running.keys()].some((id) => unitOf.get(id) === 'B')) {
    await fill();
    if (!bArrived && t >= aheadSeconds) {
      // B arrives: the account is full, its jobs wait.
      for (const id of await submit(tree.otherProjectId, bJobs)) unitOf.set(id, 'B');
      bArrived = true;
      await fill();
    }
    const next = Math.min(...running.values());
    t = bArrived ? next : Math.min(next, aheadSeconds);
    for (const [id, end] of [...running]) {
      if (end > t) continue;
      await settleJob(h.services.db, id, { type: 'expired', reason: 'hold_expired', message: 'rendered' }, at(end));
      running.delete(id);
    }
    if (bArrived) {
      const [q] = await queryRows<{ n: number }>(h.services.db, sql`select count(*)::int as n from jobs where project_id = ${rawId(tree.otherProjectId)} and queued_at is not null`);
      bQueued = Number(q!.n);
    }
    expect(t, 'the run ends').toBeLessThan(10_000);
  }
  // The record: every job's slot, from HeyGen taking it to its end, as the jobs table has it.
  const rows = await queryRows<{ id: string; submitted_at: string; settled_at: string }>(
    h.services.db,
    sql`select id, submitted_at, settled_at from jobs where account_id = ${accountId} and submitted_at is not null and settled_at is not null and settled_at >= ${at(0)}`,
  );
  for (const r of rows) {
    const unit = unitOf.get(r.id);
    if (unit) runs.set(r.id, { unit, start: (new Date(r.submitted_at).getTime() - base) / 1000, end: (new Date(r.settled_at).getTime() - base) / 1000 });
  }
  const bRuns = [...runs.values()].filter((r) => r.unit === 'B').sort((x, y) => x.start - y.start);
  expect(bRuns).toHaveLength(bJobs);
  const from = bRuns[0]!.start;
  const to = bRuns.at(-1)!.start;
  const slotSeconds = (unit: 'A' | 'B') =>
    [...runs.values()].filter((r) => r.unit === unit).reduce((sum, r) => sum + Math.max(0, Math.min(r.end, to) - Math.max(r.start, from)), 0);
  const ratio = slotSeconds('A') / slotSeconds('B');
  // Clean up: what still runs ends now; A's jobs still waiting keep their holds (counted as such).
  for (const id of running.keys()) await settleJob(h.services.db, id, { type: 'expired', reason: 'hold_expired', message: 'rendered' }, at(t));
  await expectCountersEqualLedger(h.services.db);
  return { ratio, firstBWait: from - aheadSeconds, window: to - from };
}

describe('A:B slot-seconds 2:1 ± 10 % over B\'s busy period, on a virtual clock', () => {
  for (const [name, limit, renderA, renderB] of [
    ['equal renders, 6 slots', 6, 1, 1],
    ["A's renders twice B's, 6 slots", 6, 2, 1],
    ["B's renders twice A's, 6 slots", 6, 1, 2],
    ["A's renders twice B's, 7 slots", 7, 2, 1],
    ['equal renders, 5 slots', 5, 1, 1],
  ] as const) {
    it(name, async () => {
      const { ratio, firstBWait, window } = await scenario(name, limit, renderA, renderB, 140, 30, 3.5);
      // B's first job took the first slot freed after it arrived.
      expect(firstBWait).toBeLessThanOrEqual(Math.max(renderA, renderB));
      expect(window).toBeGreaterThan(5);
      expect(ratio, `A:B slot-seconds ${ratio.toFixed(3)}`).toBeGreaterThanOrEqual(1.8);
      expect(ratio, `A:B slot-seconds ${ratio.toFixed(3)}`).toBeLessThanOrEqual(2.2);
    }, 120_000);
  }
});

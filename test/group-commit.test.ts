// Group commit (src/jobs/admission.ts, gateway_admit_batch): admissions of one account that arrive while another is in
// flight are admitted together in one transaction, in arrival order, each with the outcome it would have had alone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startHarness, type Harness } from './support/harness.js';
import { createTree, setBudget, avatarRequest, type Tree } from './support/fixtures.js';
import { expectCountersEqualLedger } from './support/invariants.js';
import { admitJob, type Admitted } from '../src/jobs/admission.js';
import { BudgetExceededError, ConcurrencyLimitError, IdempotencyConflictError } from '../src/errors.js';
import type { Actor } from '../src/auth/actor.js';

const admin: Actor = { subject: 'admin:test', role: 'ADMIN', unitId: null, unitPath: [], tokenId: null };
let h: Harness;
const raw = (globalId: string) => decodeGlobalID(globalId).id;
const HOLD = 52_800_000n; // 8 s × 6 cs × 1.10 per avatarRequest()

beforeAll(async () => {
  h = await startHarness({ workers: false });
  expect(h.services.admission.groupCommitMax).toBeGreaterThan(1);
});
afterAll(async () => h?.close());

function admitMany(tree: Tree, n: number, key?: (i: number) => string | null, request?: (i: number) => unknown) {
  const statements: string[] = [];
  h.services.database.onQuery = (text) => statements.push(text);
  const all = Array.from({ length: n }, (_, i) =>
    admitJob(
      h.services.db,
      admin,
      { projectId: raw(tree.projectId), kind: 'AVATAR_VIDEO', request: request?.(i) ?? avatarRequest(), estimatedSeconds: null, idempotencyKey: key?.(i) ?? null },
      h.services.admission,
      new Date('2026-06-10T12:00:00Z'),
    ).then(
      (admitted): { admitted: Admitted } | { error: unknown } => ({ admitted }),
      (error: unknown) => ({ error }),
    ),
  );
  return Promise.all(all).finally(() => (h.services.database.onQuery = undefined)).then((results) => ({ results, statements }));
}

describe('group commit', () => {
  it('40 concurrent admissions into a HARD budget that fits 13: exactly 13 admitted, in fewer transactions than admissions', async () => {
    const tree = await createTree(h, { name: 'Batched' });
    await setBudget(h, { orgUnitId: tree.teamId, accountId: tree.accountId, window: 'MONTHLY', limitCreditSeconds: '700' }); // 13 × 52.8 = 686.4
    const { results, statements } = await admitMany(tree, 40);
    const admitted = results.filter((r) => 'admitted' in r);
    const refused = results.flatMap((r) => ('error' in r ? [r.error] : []));
    expect(admitted).toHaveLength(13);
    expect(refused).toHaveLength(27);
    // Every refusal came after the 13th admission (the holds are all the same size): each saw what was left then.
    for (const r of refused) {
      expect(r).toBeInstanceOf(BudgetExceededError);
      expect((r as BudgetExceededError).availableMicroCs).toBe(700_000_000n - 13n * HOLD);
      expect((r as BudgetExceededError).message).toMatch(/^refused: the job would exceed the HARD budget of "Video" \(MONTHLY 2026-06\)/);
    }
    const batches = statements.filter((s) => s.includes('gateway_admit_batch('));
    expect(batches.length).toBeGreaterThan(0);
    expect(statements.filter((s) => /gateway_admit(_batch)?\(/.test(s)).length).toBeLessThan(40);
    await expectCountersEqualLedger(h.services.db);
  });

  it('in one batch, the concurrency limit counts the admissions before it', async () => {
    const tree = await createTree(h, { name: 'BatchedConcurrency', concurrencyLimit: 5 });
    const { results } = await admitMany(tree, 30);
    expect(results.filter((r) => 'admitted' in r)).toHaveLength(5);
    for (const r of results) if ('error' in r) expect(r.error).toBeInstanceOf(ConcurrencyLimitError);
    await expectCountersEqualLedger(h.services.db);
  });

  it('one idempotency key sent many times at once: one job, the others replay it; another body conflicts', async () => {
    const tree = await createTree(h, { name: 'BatchedIdempotency' });
    const { results } = await admitMany(tree, 20, () => 'batch-key-1');
    const jobs = new Set(results.flatMap((r) => ('admitted' in r ? [r.admitted.job.id] : [])));
    expect(jobs.size).toBe(1);
    expect(results.filter((r) => 'admitted' in r && !r.admitted.replayed)).toHaveLength(1);
    expect(results.filter((r) => 'admitted' in r && r.admitted.replayed)).toHaveLength(19);
    const other = await admitMany(tree, 1, () => 'batch-key-1', () => avatarRequest('another body entirely'));
    expect('error' in other.results[0]! && other.results[0].error).toBeInstanceOf(IdempotencyConflictError);
    const [holds] = (await h.services.db.execute<{ n: number }>(sql`select count(*)::int as n from ledger_entries e join jobs j on j.id = e.job_id where j.idempotency_key = 'batch-key-1' and e.entry_type = 'HOLD'`)).rows;
    expect(Number(holds!.n)).toBe(1);
    await expectCountersEqualLedger(h.services.db);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { createTree, setBudget, SUBMIT, avatarRequest, JOB_QUERY, type Tree } from './support/fixtures.js';
import { expectCountersEqualLedger } from './support/invariants.js';
import { queryRows } from '../src/db/client.js';

let h: Harness;

beforeAll(async () => {
  // Jobs stay in flight until the test completes them: holds do not move under our feet.
  h = await startHarness({ sim: { autoComplete: false } });
});
afterAll(async () => h?.close());

async function submit(tree: Tree, extra: Record<string, unknown> = {}, projectId = tree.projectId) {
  const res = await h.gql(SUBMIT, { input: { projectId, kind: 'AVATAR_VIDEO', request: avatarRequest(), ...extra } });
  expect(res.errors).toBeUndefined();
  return res.data.submitJob;
}

async function count(table: string): Promise<number> {
  const [row] = await queryRows<{ n: number }>(h.services.db, sql.raw(`select count(*)::int as n from ${table}`));
  return Number(row!.n);
}

describe('budgets on the path', () => {
  it('the tighter budget wins wherever it sits, and SOFT never refuses', async () => {
    const tree = await createTree(h, { name: 'Budgets' });
    // Each job holds 52.8 cs. Department allows 10 jobs, team 2.
    await setBudget(h, { orgUnitId: tree.deptId, accountId: tree.accountId, window: 'MONTHLY', limitCreditSeconds: '528' });
    const team = await setBudget(h, { orgUnitId: tree.teamId, accountId: tree.accountId, window: 'MONTHLY', limitCreditSeconds: '105.6' });
    expect((await submit(tree)).__typename).toBe('SubmitJobPayload');
    expect((await submit(tree)).__typename).toBe('SubmitJobPayload');
    const refused = await submit(tree);
    expect(refused.__typename).toBe('BudgetExceededError');
    expect(refused.code).toBe('BUDGET_EXCEEDED');
    expect(refused.orgUnitId).toBe(tree.teamId);
    expect(refused.limitCreditSeconds).toBe('105.6');
    expect(refused.availableCreditSeconds).toBe('0');
    expect(refused.requestedCreditSeconds).toBe('52.8');
    expect(team.budget.limitCreditSeconds).toBe('105.6');

    // The sibling team is bound by the department only: 10 − 2 = 8 more jobs fit there.
    for (let i = 0; i < 8; i++) expect((await submit(tree, {}, tree.otherProjectId)).__typename).toBe('SubmitJobPayload');
    const deptRefusal = await submit(tree, {}, tree.otherProjectId);
    expect(deptRefusal.__typename).toBe('BudgetExceededError');
    expect(deptRefusal.orgUnitId).toBe(tree.deptId);

    // A SOFT budget far below usage never refuses.
    await setBudget(h, { orgUnitId: tree.teamId, accountId: tree.accountId, window: 'MONTHLY', limitCreditSeconds: '1', enforcement: 'SOFT' });
    await setBudget(h, { orgUnitId: tree.deptId, accountId: tree.accountId, window: 'MONTHLY', limitCreditSeconds: '100000' });
    expect((await submit(tree)).__typename).toBe('SubmitJobPayload');

    const budgets = await h.gql(`query($id: ID!) { orgUnit(id: $id) { budgets { enforcement limitCreditSeconds reservedCreditSeconds settledCreditSeconds availableCreditSeconds } } }`, { id: tree.teamId });
    expect(budgets.data.orgUnit.budgets).toEqual([
      { enforcement: 'SOFT', limitCreditSeconds: '1', reservedCreditSeconds: '158.4', settledCreditSeconds: '0', availableCreditSeconds: '-157.4' },
    ]);
    await expectCountersEqualLedger(h.services.db);
  });

  it('allowOverage: false refuses once the included pool is used up', async () => {
    const tree = await createTree(h, { name: 'Pool', apiKey: 'sk_test_primary_key_0001' });
    // A huge HARD budget that forbids overage: the account pool (600,000 cs) is what binds.
    await setBudget(h, { orgUnitId: tree.teamId, accountId: tree.accountId, window: 'MONTHLY', limitCreditSeconds: '10000000', allowOverage: false });
    const big = await submit(tree, { request: { type: 'avatar', avatar_id: 'a', voice_id: 'v', audio_asset_id: 'as_1' }, estimatedSeconds: '14400' });
    expect(big.__typename).toBe('SubmitJobPayload'); // the caller raises the 600 s audio maximum: 14400 × 6 × 1.1 = 95,040 cs
    const results = [];
    for (let i = 0; i < 6; i++) {
      results.push(await submit(tree, { request: { type: 'avatar', avatar_id: 'a', voice_id: 'v', audio_asset_id: 'as_1' }, estimatedSeconds: '14400' }));
    }
    // 6 × 95,040 = 570,240 ≤ 600,000 but 7 × 95,040 = 665,280 > 600,000: the sixth extra one is refused.
    expect(results.map((r) => r.__typename)).toEqual(['SubmitJobPayload', 'SubmitJobPayload', 'SubmitJobPayload', 'SubmitJobPayload', 'SubmitJobPayload', 'BudgetExceededError']);
    // The refusal names the unit whose budget forbids overage, the pool's period and the amounts in cs and USD
    // (600,000 − 6 × 95,040 = 29,760 cs left; at the $0.00833 overage rate).
    expect(results[5].message).toMatch(
      /^refused: the job would exceed the account's pool \(no overage allowed\) for "Video" \(included pool \d{4}-\d{2}\): limit 600000 cs \(\$4998\.00\), available 29760 cs \(\$247\.90\), requested 95040 cs \(\$791\.68\)$/,
    );
  });
});

describe('concurrency limit', () => {
  it('queue: false: the 4th simultaneous job is refused with retryAfterSeconds; a slot frees when a job ends', async () => {
    const tree = await createTree(h, { name: 'Concurrency', concurrencyLimit: 3 });
    const results = await Promise.all(Array.from({ length: 4 }, () => submit(tree, { queue: false })));
    const admitted = results.filter((r) => r.__typename === 'SubmitJobPayload');
    const refused = results.filter((r) => r.__typename === 'ConcurrencyLimitError');
    expect(admitted).toHaveLength(3);
    expect(refused).toHaveLength(1);
    expect(refused[0].code).toBe('CONCURRENCY_LIMIT');
    expect(refused[0].retryAfterSeconds).toBeGreaterThan(0);

    const inFlight = await h.gql(`{ accounts { name inFlightJobs concurrencyLimit } }`);
    expect(inFlight.data.accounts.find((a: any) => a.name === 'Concurrency')).toEqual({ name: 'Concurrency', inFlightJobs: 3, concurrencyLimit: 3 });

    // End one job upstream; once settled, its slot is free.
    const first = admitted[0].job;
    expect(h.sim.completeNow(first.upstreamIds[0])).toBe(true);
    await waitFor(async () => (await h.gql(JOB_QUERY, { id: first.id })).data.job.status === 'SUCCEEDED');
    expect((await submit(tree, { queue: false })).__typename).toBe('SubmitJobPayload');
    expect((await submit(tree, { queue: false })).__typename).toBe('ConcurrencyLimitError');
  });
});

describe('idempotency', () => {
  it('same key and body, also concurrently: one job, one upstream call, one hold; other body: conflict', async () => {
    const tree = await createTree(h, { name: 'Idempotency' });
    const before = h.sim.stats().requests['POST /v3/videos'] ?? 0;
    const holdsBefore = await count(`ledger_entries where entry_type = 'HOLD'`);
    const same = await Promise.all(Array.from({ length: 5 }, () => submit(tree, { idempotencyKey: 'order-42' })));
    const again = await submit(tree, { idempotencyKey: 'order-42' });
    const ids = new Set([...same, again].map((r) => r.job.id));
    expect(ids.size).toBe(1);
    expect([...same, again].filter((r) => r.replayed === false)).toHaveLength(1);
    expect((h.sim.stats().requests['POST /v3/videos'] ?? 0) - before).toBe(1);
    expect((await count(`ledger_entries where entry_type = 'HOLD'`)) - holdsBefore).toBe(1);

    const conflict = await submit(tree, { idempotencyKey: 'order-42', request: avatarRequest('a different script') });
    expect(conflict.__typename).toBe('IdempotencyConflictError');
    expect(conflict.code).toBe('IDEMPOTENCY_CONFLICT');
    expect((await count(`ledger_entries where entry_type = 'HOLD'`)) - holdsBefore).toBe(1);
  });
});

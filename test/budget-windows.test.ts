// Budget windows at their boundaries, with fixed clocks, in the account's time zone (docs/budgets.md, Windows):
// - a new month must not forget last month's open holds, and a budget over all accounts counts each account's own
//   month (usage is booked in the account's time zone);
// - DAILY, WEEKLY, QUARTERLY and CUSTOM budgets refuse up to the last second of their window and start afresh at
//   the first second of the next one, across daylight-saving changes (a 23-hour and a 25-hour day);
// - a MONTHLY budget's rollover carries exactly last month's unused limit, up to its cap, without compounding;
// - threshold events are armed again in each new window;
// - concurrent admissions under a DAILY HARD budget admit exactly as many jobs as fit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { eq, sql } from 'drizzle-orm';
import { startHarness, type Harness } from './support/harness.js';
import { createTree, setBudget, avatarRequest, type Tree } from './support/fixtures.js';
import { expectCountersEqualLedger } from './support/invariants.js';
import { expectBudgetFunctionsAgree } from './support/budget-functions.js';
import { admitJob } from '../src/jobs/admission.js';
import { settleJob } from '../src/jobs/settlement.js';
import { recordUsageAdjustment } from '../src/billing/adjustments.js';
import { recordMovement } from '../src/ledger/ledger.js';
import { budgetsWithUsage, setBudget as setBudgetAt, type SetBudgetInput } from '../src/budgets/budgets.js';
import { orgUnitsTable } from '../src/db/schema.js';
import { queryRows } from '../src/db/client.js';
import { BudgetExceededError, ValidationError } from '../src/errors.js';
import type { Actor } from '../src/auth/actor.js';

const admin: Actor = { subject: 'admin:test', role: 'ADMIN', unitId: null, unitPath: [], tokenId: null };
let h: Harness;

beforeAll(async () => {
  h = await startHarness({ workers: false });
});
afterAll(async () => h?.close());

const raw = (globalId: string) => decodeGlobalID(globalId).id;
const HOLD = 52_800_000n; // one avatarRequest() hold: 52.8 cs

function admit(tree: Tree, at: string) {
  return admitJob(
    h.services.db,
    admin,
    { projectId: raw(tree.projectId), kind: 'AVATAR_VIDEO', request: avatarRequest(), estimatedSeconds: null, idempotencyKey: null },
    h.services.admission,
    new Date(at),
  );
}

/** Admitted at `at`, and the hold released at once: the window's settled usage is what the test booked. */
async function admitted(tree: Tree, at: string): Promise<void> {
  const { job } = await admit(tree, at);
  expect(job.status).toBe('RESERVED');
  await settleJob(h.services.db, job.id, { type: 'cancelled', by: admin }, new Date(at));
}

async function refused(tree: Tree, at: string): Promise<BudgetExceededError> {
  const error = await admit(tree, at).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BudgetExceededError);
  return error as BudgetExceededError;
}

/** Settled usage of the tree's project booked on an account-local day (an adjustment, through the ledger). */
async function settledOn(tree: Tree, day: string, creditSeconds: number): Promise<void> {
  const [project] = await h.services.db.select().from(orgUnitsTable).where(eq(orgUnitsTable.id, raw(tree.projectId)));
  await h.services.db.transaction((tx) =>
    recordMovement(tx, 'ADJUSTMENT', {
      jobId: null,
      accountId: raw(tree.accountId),
      orgUnitId: project!.id,
      path: project!.path,
      period: day.slice(0, 7),
      day,
      amountMicroCs: BigInt(creditSeconds) * 1_000_000n,
      note: 'test usage',
    }),
  );
}

async function budgetAt(tree: Tree, input: Partial<SetBudgetInput> & Pick<SetBudgetInput, 'window'>, at: string) {
  return h.services.db.transaction((tx) =>
    setBudgetAt(
      tx,
      {
        orgUnitId: raw(tree.teamId),
        accountId: raw(tree.accountId),
        limitCreditSeconds: '100',
        enforcement: 'HARD',
        allowOverage: true,
        alertThresholds: null,
        ...input,
      },
      new Date(at),
    ),
  );
}

async function usageAt(budgetId: string, at: string) {
  const [row] = await budgetsWithUsage(h.services.db, { budgetIds: [budgetId] }, new Date(at));
  return row!.usage;
}

describe('monthly windows', () => {
  it("a hold admitted last month still counts after midnight, until it is settled or released", async () => {
    const tree = await createTree(h, { name: 'Boundary', timezone: 'UTC' });
    // Room for one 52.8 cs hold a month.
    await setBudget(h, { orgUnitId: tree.teamId, accountId: tree.accountId, window: 'MONTHLY', limitCreditSeconds: '60' });
    const { job } = await admit(tree, '2026-01-31T23:59:00Z');
    await expect(admit(tree, '2026-02-01T00:01:00Z')).rejects.toBeInstanceOf(BudgetExceededError);
    await settleJob(h.services.db, job.id, { type: 'cancelled', by: admin }, new Date('2026-02-01T00:02:00Z'));
    expect((await admit(tree, '2026-02-01T00:03:00Z')).job.status).toBe('RESERVED');
    await expectCountersEqualLedger(h.services.db);
  });

  it("a budget over all accounts uses each account's own month", async () => {
    const la = await createTree(h, { name: 'Los Angeles', timezone: 'America/Los_Angeles' });
    await setBudget(h, { orgUnitId: la.deptId, window: 'MONTHLY', limitCreditSeconds: '100' });
    // 50 cs settled in the account's January (Los Angeles time).
    await recordUsageAdjustment(h.services.db, admin, {
      orgUnitId: raw(la.projectId),
      accountId: raw(la.accountId),
      period: '2026-01',
      creditSeconds: '50',
      reason: 'usage before the gateway',
    });
    // 03:00 UTC on 1 February is still 31 January in Los Angeles: January's 50 cs count, 50 + 52.8 > 100.
    const refusal = await admit(la, '2026-02-01T03:00:00Z').catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(BudgetExceededError);
    expect((refusal as BudgetExceededError).availableMicroCs).toBe(50_000_000n);
    // 09:00 UTC is 1 February in Los Angeles: a new month.
    expect((await admit(la, '2026-02-01T09:00:00Z')).job.status).toBe('RESERVED');
    await expectCountersEqualLedger(h.services.db);
  });
});

describe('sub-month and quarterly windows', () => {
  it('DAILY in New York: refused until local midnight, across the 23-hour day clocks spring forward', async () => {
    const tree = await createTree(h, { name: 'New York', timezone: 'America/New_York' });
    const budget = await budgetAt(tree, { window: 'DAILY' }, '2026-03-01T12:00:00Z');
    await settledOn(tree, '2026-03-07', 60);
    // 04:59 UTC on 8 March is 23:59 on the 7th (EST, UTC−5): 60 + 52.8 > 100.
    const refusal = await refused(tree, '2026-03-08T04:59:59Z');
    expect(refusal.availableMicroCs).toBe(40_000_000n);
    expect(refusal.message).toContain('(DAILY 2026-03-07)');
    expect(await usageAt(budget.id, '2026-03-08T04:59:59Z')).toMatchObject({ windowFrom: '2026-03-07', windowTo: '2026-03-07', settledMicroCs: 60_000_000n });
    // 05:00 UTC is midnight of the 8th: a new day.
    await admitted(tree, '2026-03-08T05:00:00Z');
    // The 8th has 23 hours (02:00 EST → 03:00 EDT): it ends at 04:00 UTC on the 9th (EDT, UTC−4).
    await settledOn(tree, '2026-03-08', 60);
    await refused(tree, '2026-03-09T03:59:59Z');
    expect((await usageAt(budget.id, '2026-03-09T03:59:59Z')).windowFrom).toBe('2026-03-08');
    await admitted(tree, '2026-03-09T04:00:00Z');
    expect(await usageAt(budget.id, '2026-03-09T04:00:00Z')).toMatchObject({ windowFrom: '2026-03-09', settledMicroCs: 0n });
    await expectCountersEqualLedger(h.services.db);
  });

  it('WEEKLY in Berlin: an ISO week (Monday to Sunday) whose last day has 25 hours as clocks fall back', async () => {
    const tree = await createTree(h, { name: 'Berlin', timezone: 'Europe/Berlin' });
    const budget = await budgetAt(tree, { window: 'WEEKLY' }, '2026-10-01T12:00:00Z');
    // Monday 19 October, the week's first day; the Sunday before belongs to the week before.
    await settledOn(tree, '2026-10-18', 90);
    await settledOn(tree, '2026-10-19', 60);
    expect(await usageAt(budget.id, '2026-10-19T12:00:00Z')).toMatchObject({ windowFrom: '2026-10-19', windowTo: '2026-10-25', settledMicroCs: 60_000_000n });
    // Sunday 25 October runs from 22:00 UTC on the 24th (CEST) to 23:00 UTC on the 25th (CET): 25 hours.
    const refusal = await refused(tree, '2026-10-25T22:59:59Z');
    expect(refusal.message).toContain('(WEEKLY 2026-10-19..2026-10-25)');
    // Monday 26 October at midnight CET: a new week.
    await admitted(tree, '2026-10-25T23:00:00Z');
    expect(await usageAt(budget.id, '2026-10-25T23:00:00Z')).toMatchObject({ windowFrom: '2026-10-26', windowTo: '2026-11-01', settledMicroCs: 0n });
    await expectCountersEqualLedger(h.services.db);
  });

  it('QUARTERLY in Tokyo: a calendar quarter of periods, until midnight of its last day', async () => {
    const tree = await createTree(h, { name: 'Tokyo', timezone: 'Asia/Tokyo' });
    const budget = await budgetAt(tree, { window: 'QUARTERLY' }, '2026-01-01T12:00:00Z');
    await settledOn(tree, '2025-12-31', 90);
    await settledOn(tree, '2026-01-15', 60);
    expect(await usageAt(budget.id, '2026-03-31T14:59:59Z')).toMatchObject({ windowFrom: '2026-01', windowTo: '2026-03', settledMicroCs: 60_000_000n });
    // 14:59 UTC on 31 March is 23:59 in Tokyo (UTC+9).
    expect((await refused(tree, '2026-03-31T14:59:59Z')).message).toContain('(QUARTERLY 2026-01..2026-03)');
    await admitted(tree, '2026-03-31T15:00:00Z');
    expect(await usageAt(budget.id, '2026-03-31T15:00:00Z')).toMatchObject({ windowFrom: '2026-04', windowTo: '2026-06', settledMicroCs: 0n });
    await expectCountersEqualLedger(h.services.db);
  });

  it('CUSTOM in Los Angeles: from (inclusive) to (exclusive) account-local days, nothing admitted outside', async () => {
    const tree = await createTree(h, { name: 'Custom LA', timezone: 'America/Los_Angeles' });
    const budget = await budgetAt(tree, { window: 'CUSTOM', windowFrom: '2026-06-10', windowTo: '2026-06-13' }, '2026-06-01T12:00:00Z');
    expect(await usageAt(budget.id, '2026-06-11T12:00:00Z')).toMatchObject({ windowFrom: '2026-06-10', windowTo: '2026-06-12' });
    // 06:59 UTC on 10 June is 23:59 on the 9th (PDT, UTC−7): before the window.
    const before = await refused(tree, '2026-06-10T06:59:59Z');
    expect(before.availableMicroCs).toBe(0n);
    expect(before.message).toContain('(CUSTOM 2026-06-10..2026-06-12)');
    await admitted(tree, '2026-06-10T07:00:00Z');
    await settledOn(tree, '2026-06-09', 90); // before the window: not counted
    await settledOn(tree, '2026-06-12', 60);
    expect((await refused(tree, '2026-06-12T12:00:00Z')).availableMicroCs).toBe(40_000_000n);
    // Midnight of the 13th (the exclusive end) in Los Angeles: after the window.
    expect((await refused(tree, '2026-06-13T07:00:00Z')).availableMicroCs).toBe(0n);
    await expectCountersEqualLedger(h.services.db);
  });

  it("a DAILY budget over all accounts counts each account's own day", async () => {
    const tokyo = await createTree(h, { name: 'All Tokyo', timezone: 'Asia/Tokyo' });
    await setBudget(h, { orgUnitId: tokyo.deptId, window: 'DAILY', limitCreditSeconds: '100' });
    // 20:00 UTC on 1 July is 05:00 on the 2nd in Tokyo: the 1st's usage is yesterday's.
    await settledOn(tokyo, '2026-07-01', 60);
    await admitted(tokyo, '2026-07-01T20:00:00Z');
    await settledOn(tokyo, '2026-07-02', 60);
    await refused(tokyo, '2026-07-01T20:00:01Z');
  });

  it('setBudget answers typed validation errors for windows and rollover', async () => {
    const tree = await createTree(h, { name: 'Validation', timezone: 'UTC' });
    const cases: [Partial<SetBudgetInput> & Pick<SetBudgetInput, 'window'>, string][] = [
      [{ window: 'CUSTOM' }, 'windowFrom'],
      [{ window: 'CUSTOM', windowFrom: '2026-06-10' }, 'windowTo'],
      [{ window: 'CUSTOM', windowFrom: '2026-02-30', windowTo: '2026-03-10' }, 'windowFrom'],
      [{ window: 'CUSTOM', windowFrom: '2026-06-10', windowTo: '2026-06-10' }, 'windowTo'],
      [{ window: 'DAILY', windowFrom: '2026-06-10', windowTo: '2026-06-11' }, 'windowFrom'],
      [{ window: 'WEEKLY', rolloverCapCreditSeconds: '10' }, 'rolloverCapCreditSeconds'],
      [{ window: 'MONTHLY', rolloverCapCreditSeconds: '-1' }, 'rolloverCapCreditSeconds'],
      [{ window: 'MONTHLY', rolloverCapCreditSeconds: '10', rolloverCapUsd: '1' }, 'rolloverCapCreditSeconds'],
    ];
    for (const [input, field] of cases) {
      const error = await budgetAt(tree, input, '2026-06-01T00:00:00Z').catch((e: unknown) => e);
      expect(error, JSON.stringify(input)).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).field).toBe(field);
    }
    // Through GraphQL: the error union, never a 500.
    const { status, data } = await h.gql(
      `mutation($input: SetBudgetInput!) { setBudget(input: $input) { __typename ... on ValidationError { field } } }`,
      { input: { orgUnitId: tree.teamId, accountId: tree.accountId, window: 'CUSTOM', windowFrom: '2026-06-10', limitCreditSeconds: '1' } },
    );
    expect(status).toBe(200);
    expect(data.setBudget).toEqual({ __typename: 'ValidationError', field: 'windowTo' });
  });
});

describe('monthly rollover', () => {
  it("carries exactly last month's unused limit, up to the cap, from the first whole month, never compounding", async () => {
    const tree = await createTree(h, { name: 'Rollover', timezone: 'UTC' });
    // Set in April with a 30 cs cap: April is not a whole month of it, so May carries nothing.
    const set = (cap: string) => budgetAt(tree, { window: 'MONTHLY', rolloverCapCreditSeconds: cap }, '2026-04-15T00:00:00Z');
    const budget = await set('30');
    expect(budget.rolloverFrom).toBe('2026-05');
    expect((await usageAt(budget.id, '2026-05-01T00:00:00Z')).carriedMicroCs).toBe(0n);
    await settledOn(tree, '2026-05-20', 80);
    const may = await refused(tree, '2026-05-31T23:59:59Z');
    expect([may.limitMicroCs, may.availableMicroCs]).toEqual([100_000_000n, 20_000_000n]);

    // June: May left 20 cs unused (under the cap): June's limit is 120.
    expect(await usageAt(budget.id, '2026-06-01T00:00:00Z')).toMatchObject({ carriedMicroCs: 20_000_000n, settledMicroCs: 0n });
    await settledOn(tree, '2026-06-02', 60);
    const { job } = await admit(tree, '2026-06-03T00:00:00Z'); // 60 + 52.8 ≤ 120 (it would not fit 100)
    const june = await refused(tree, '2026-06-03T00:00:01Z');
    expect([june.limitMicroCs, june.availableMicroCs]).toEqual([120_000_000n, 7_200_000n]);
    await settleJob(h.services.db, job.id, { type: 'cancelled', by: admin }, new Date('2026-06-03T00:00:02Z'));

    // July: June left 100 − 60 = 40 of its own limit (not of its 120: no compounding), capped at 30.
    expect((await usageAt(budget.id, '2026-07-01T00:00:00Z')).carriedMicroCs).toBe(30_000_000n);
    // Raising the cap keeps the rollover's start and carries the whole 40.
    expect((await set('1000')).rolloverFrom).toBe('2026-05');
    expect((await usageAt(budget.id, '2026-07-01T00:00:00Z')).carriedMicroCs).toBe(40_000_000n);
    // An overrun month carries nothing (never a negative carry).
    await settledOn(tree, '2026-07-10', 150);
    expect((await usageAt(budget.id, '2026-08-01T00:00:00Z')).carriedMicroCs).toBe(0n);
    await expectCountersEqualLedger(h.services.db);
  });
});

describe('threshold events', () => {
  it('a DAILY budget crosses its thresholds again each day', async () => {
    const tree = await createTree(h, { name: 'Alerts', timezone: 'Asia/Kolkata' });
    const budget = await budgetAt(tree, { window: 'DAILY', alertThresholds: [50] }, '2026-08-01T00:00:00Z');
    // 52.8 of 100 crosses 50 % on the 2nd and again on the 3rd (Kolkata, UTC+5:30).
    await admitted(tree, '2026-08-02T10:00:00Z');
    await admitted(tree, '2026-08-02T11:00:00Z'); // the same window: no second event
    await admitted(tree, '2026-08-02T18:30:00Z'); // 00:00 on the 3rd
    const rows = await queryRows<{ from: string; to: string; used: string }>(
      h.services.db,
      sql`select payload->'data'->>'windowFrom' as from, payload->'data'->>'windowTo' as to, payload->'data'->>'usedMicroCs' as used
          from outbox_events where topic = 'money_event' and kind = 'budget.threshold_crossed' and payload->'data'->>'budgetId' = ${budget.id}
          order by created_at`,
    );
    expect(rows).toEqual([
      { from: '2026-08-02', to: '2026-08-02', used: HOLD.toString() },
      { from: '2026-08-03', to: '2026-08-03', used: HOLD.toString() },
    ]);
  });
});

describe('concurrency', () => {
  it('40 concurrent admissions under a DAILY HARD budget that fits 7: exactly 7 admitted', async () => {
    const tree = await createTree(h, { name: 'Daily burst', timezone: 'America/Sao_Paulo', concurrencyLimit: 1000 });
    const budget = await budgetAt(tree, { window: 'DAILY', limitCreditSeconds: (Number(7n * HOLD + 10n * 1_000_000n) / 1e6).toString() }, '2026-09-01T00:00:00Z');
    // Yesterday's usage is outside the window; today's 10 cs is in it.
    await settledOn(tree, '2026-09-14', 1000);
    await settledOn(tree, '2026-09-15', 10);
    const at = '2026-09-15T15:00:00Z';
    const results = await Promise.allSettled(Array.from({ length: 40 }, () => admit(tree, at)));
    const admittedJobs = results.filter((r) => r.status === 'fulfilled');
    expect(admittedJobs).toHaveLength(7);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(BudgetExceededError);
    const usage = await usageAt(budget.id, at);
    expect(usage.reservedMicroCs + usage.settledMicroCs).toBe(7n * HOLD + 10_000_000n);
    await expectCountersEqualLedger(h.services.db);
  });
});

describe("the reads' inlined window functions", () => {
  // Last: every budget the tests above set (every window, rollovers, budgets over all accounts, in six time zones).
  it("answer as the admission's for every budget, at every instant the tests above used", async () => {
    const instants = [
      '2026-01-01T12:00:00Z',
      '2026-01-31T23:59:00Z',
      '2026-02-01T00:01:00Z',
      '2026-02-01T00:02:00Z',
      '2026-02-01T00:03:00Z',
      '2026-02-01T03:00:00Z',
      '2026-02-01T09:00:00Z',
      '2026-03-01T12:00:00Z',
      '2026-03-08T04:59:59Z',
      '2026-03-08T05:00:00Z',
      '2026-03-09T03:59:59Z',
      '2026-03-09T04:00:00Z',
      '2026-03-31T14:59:59Z',
      '2026-03-31T15:00:00Z',
      '2026-04-15T00:00:00Z',
      '2026-05-01T00:00:00Z',
      '2026-05-31T23:59:59Z',
      '2026-06-01T00:00:00Z',
      '2026-06-01T12:00:00Z',
      '2026-06-03T00:00:00Z',
      '2026-06-03T00:00:01Z',
      '2026-06-03T00:00:02Z',
      '2026-06-10T06:59:59Z',
      '2026-06-10T07:00:00Z',
      '2026-06-11T12:00:00Z',
      '2026-06-12T12:00:00Z',
      '2026-06-13T07:00:00Z',
      '2026-07-01T00:00:00Z',
      '2026-07-01T20:00:00Z',
      '2026-07-01T20:00:01Z',
      '2026-08-01T00:00:00Z',
      '2026-08-02T10:00:00Z',
      '2026-08-02T11:00:00Z',
      '2026-08-02T18:30:00Z',
      '2026-09-01T00:00:00Z',
      '2026-09-15T15:00:00Z',
      '2026-10-01T12:00:00Z',
      '2026-10-19T12:00:00Z',
      '2026-10-25T22:59:59Z',
      '2026-10-25T23:00:00Z',
      new Date().toISOString(),
    ];
    // The windows no test above sets: LIFETIME, and CONTRACT_TERM on terms without dates (lifetime too), with usage.
    const tree = await createTree(h, { name: 'Every window', timezone: 'Asia/Kolkata' });
    await budgetAt(tree, { window: 'LIFETIME' }, '2026-05-01T00:00:00Z');
    await budgetAt(tree, { window: 'CONTRACT_TERM' }, '2026-05-01T00:00:00Z');
    await setBudget(h, { orgUnitId: tree.deptId, window: 'QUARTERLY', limitCreditSeconds: '100' });
    await settledOn(tree, '2026-05-02', 5);
    const windows = await expectBudgetFunctionsAgree(h.services.db, instants);
    for (const w of ['CUSTOM', 'DAILY', 'WEEKLY', 'MONTHLY', 'QUARTERLY', 'CONTRACT_TERM', 'LIFETIME']) expect(windows[w], w).toBeGreaterThan(0);
  });
});

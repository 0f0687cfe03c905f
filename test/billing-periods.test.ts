// Period accounting across time zones and DST, credit packages over their term, and budgets given in USD.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectBudgetFunctionsAgree } from './support/budget-functions.js';
import { sql } from 'drizzle-orm';
import { startHarness, type Harness } from './support/harness.js';
import { SUBMIT, avatarRequest, mustMutate, setBudget } from './support/fixtures.js';
import { parse } from 'csv-parse/sync';
import { adjust, createBillingAccount, createBillingTree, fetchCsv, lineOf, rawId, report, sumCents, type BillingTree } from './support/billing.js';
import { expectCountersEqualLedger } from './support/invariants.js';
import { settleJob } from '../src/jobs/settlement.js';

let h: Harness;

beforeAll(async () => {
  // No background workers: the tests settle jobs themselves, at instants of their choosing.
  h = await startHarness({ workers: false, sim: { autoComplete: false } });
});
afterAll(async () => h?.close());

/** Submits a job through GraphQL, marks its output completed (100 s → 600 cs) and settles it at `at`. */
async function settleAt(tree: BillingTree, at: string): Promise<string | null> {
  const res = await h.gql(SUBMIT, { input: { projectId: tree.projectA, kind: 'AVATAR_VIDEO', request: avatarRequest() } });
  expect(res.data.submitJob.__typename).toBe('SubmitJobPayload');
  const jobId = rawId(res.data.submitJob.job.id);
  await h.services.db.execute(
    sql`update job_items set status = 'completed', duration_seconds = '100', cost_micro_cs = 600000000 where job_id = ${jobId}`,
  );
  const { job } = await settleJob(h.services.db, jobId, { type: 'upstream_terminal' }, new Date(at));
  expect(job.status).toBe('SUCCEEDED');
  return job.settledPeriod;
}

describe('usage belongs to the period of its settlement, in the account time zone', () => {
  it('23:30 UTC on 31 January: January in Los Angeles, February in Tokyo', async () => {
    const la = await createBillingTree(h, await createBillingAccount(h, { name: 'LA', timezone: 'America/Los_Angeles' }), 'LA');
    const tokyo = await createBillingTree(h, await createBillingAccount(h, { name: 'Tokyo', timezone: 'Asia/Tokyo' }), 'Tokyo');
    const utc = await createBillingTree(h, await createBillingAccount(h, { name: 'UTC' }), 'UTC');
    expect(await settleAt(la, '2026-01-31T23:30:00Z')).toBe('2026-01'); // 15:30 PST on the 31st
    expect(await settleAt(tokyo, '2026-01-31T23:30:00Z')).toBe('2026-02'); // 08:30 JST on 1 February
    expect(await settleAt(utc, '2026-01-31T23:30:00Z')).toBe('2026-01');

    const laJan = await report(h, la.accountId, '2026-01');
    expect(laJan).toMatchObject({ usedCreditSeconds: '600', timezone: 'America/Los_Angeles', periodStart: '2026-01-01T08:00:00.000Z', periodEnd: '2026-02-01T08:00:00.000Z' });
    expect(lineOf(laJan, la.projectA).creditSeconds).toBe('600');
    expect((await report(h, la.accountId, '2026-02')).usedCreditSeconds).toBe('0');
    const tokyoFeb = await report(h, tokyo.accountId, '2026-02');
    expect(tokyoFeb).toMatchObject({ usedCreditSeconds: '600', periodStart: '2026-01-31T15:00:00.000Z', periodEnd: '2026-02-28T15:00:00.000Z' });
    expect((await report(h, tokyo.accountId, '2026-01')).usedCreditSeconds).toBe('0');
    const period = await h.gql(`query($id: ID!) { node(id: $id) { ... on Account { period(period: "2026-02") { usedCreditSeconds overageCreditSeconds projectedInvoiceUsd } } } }`, { id: tokyo.accountId });
    expect(period.data.node.period).toEqual({ usedCreditSeconds: '600', overageCreditSeconds: '0', projectedInvoiceUsd: '5000.00' });
    await expectCountersEqualLedger(h.services.db);
  });

  it('month boundaries move with daylight saving time', async () => {
    const la = await createBillingTree(h, await createBillingAccount(h, { name: 'LA DST', timezone: 'America/Los_Angeles' }), 'LA DST');
    expect(await settleAt(la, '2026-03-01T07:59:59Z')).toBe('2026-02'); // 23:59:59 PST
    expect(await settleAt(la, '2026-03-01T08:00:00Z')).toBe('2026-03'); // 00:00 PST
    expect(await settleAt(la, '2026-04-01T06:59:59Z')).toBe('2026-03'); // 23:59:59 PDT
    expect(await settleAt(la, '2026-04-01T07:00:00Z')).toBe('2026-04'); // 00:00 PDT
    expect(await settleAt(la, '2026-11-01T07:30:00Z')).toBe('2026-11'); // 00:30 PDT, before the clocks go back
    const march = await report(h, la.accountId, '2026-03');
    // March runs from midnight PST to midnight PDT: one hour short.
    expect(march).toMatchObject({ usedCreditSeconds: '1200', periodStart: '2026-03-01T08:00:00.000Z', periodEnd: '2026-04-01T07:00:00.000Z' });
    expect((await report(h, la.accountId, '2026-11')).periodEnd).toBe('2026-12-01T08:00:00.000Z');
  });

  it('a settlement whose period is already closed lands in the next open period', async () => {
    const la = await createBillingTree(h, await createBillingAccount(h, { name: 'LA closed', timezone: 'America/Los_Angeles' }), 'LA closed');
    expect(await settleAt(la, '2026-02-10T12:00:00Z')).toBe('2026-02');
    await mustMutate(
      h,
      `mutation($input: ClosePeriodInput!) { closePeriod(input: $input) { __typename ... on Error { message } } }`,
      { input: { accountId: la.accountId, period: '2026-02' } },
      'closePeriod',
    );
    const frozen = JSON.stringify(await report(h, la.accountId, '2026-02'));
    expect(await settleAt(la, '2026-02-20T12:00:00Z')).toBe('2026-03');
    expect(JSON.stringify(await report(h, la.accountId, '2026-02'))).toBe(frozen);
    expect((await report(h, la.accountId, '2026-03')).usedCreditSeconds).toBe('600');
    await expectCountersEqualLedger(h.services.db);
  });
});

describe('credit package', () => {
  it('draws down across months, shows the remaining balance, and forfeits the rest at term end', async () => {
    // 100,000 cs at $0.008 for January to March 2026; forfeited credits go to the Sales department.
    const account = await createBillingAccount(h, {
      name: 'Package',
      effectiveFrom: '2026-01',
      creditPackage: { totalCreditSeconds: '100000', pricePerCreditSecondUsd: '0.008', termStart: '2026-01-01', termEnd: '2026-03-31' },
    });
    const tree = await createBillingTree(h, account, 'Pkg');
    await mustMutate(
      h,
      `mutation($input: SetAccountTermsInput!) { setAccountTerms(input: $input) { __typename ... on Error { message } } }`,
      { input: { accountId: account, effectiveFrom: '2026-01', costCentreUnitId: tree.salesId } },
      'setAccountTerms',
    );
    await adjust(h, account, tree.projectA, '2026-01', '30000');
    await adjust(h, account, tree.projectA, '2026-02', '20000');
    await adjust(h, account, tree.projectB, '2026-02', '30000');
    await adjust(h, account, tree.projectB, '2026-03', '5000');

    const jan = await report(h, account, '2026-01');
    expect(jan).toMatchObject({
      billingModel: 'CREDIT_PACKAGE',
      policy: null,
      invoiceTotalUsd: '240.00',
      drawdownUsd: '240.00',
      mmcUsd: '0.00',
      includedCreditSeconds: '100000',
      usedCreditSeconds: '30000',
      remainingCreditSeconds: '70000',
      forfeitedUsd: '0.00',
    });
    expect(lineOf(jan, tree.projectA).costUsd).toBe('240.00');

    const feb = await report(h, account, '2026-02');
    expect(feb).toMatchObject({ invoiceTotalUsd: '400.00', includedCreditSeconds: '70000', usedCreditSeconds: '50000', remainingCreditSeconds: '20000' });
    expect([lineOf(feb, tree.teamA).costUsd, lineOf(feb, tree.teamB).costUsd]).toEqual(['160.00', '240.00']);
    const period = await h.gql(
      `query($id: ID!) { node(id: $id) { ... on Account { period(period: "2026-02") { includedCreditSeconds usedCreditSeconds remainingIncludedCreditSeconds projectedInvoiceUsd } } } }`,
      { id: account },
    );
    expect(period.data.node.period).toEqual({ includedCreditSeconds: '70000', usedCreditSeconds: '50000', remainingIncludedCreditSeconds: '20000', projectedInvoiceUsd: '400.00' });

    // March ends the term: 5,000 cs used ($40.00), 15,000 cs forfeited ($120.00) on the cost centre.
    const mar = await report(h, account, '2026-03');
    expect(mar).toMatchObject({
      invoiceTotalUsd: '160.00',
      drawdownUsd: '40.00',
      forfeitedUsd: '120.00',
      forfeitedCreditSeconds: '15000',
      includedCreditSeconds: '20000',
      remainingCreditSeconds: '15000',
    });
    expect(lineOf(mar, tree.salesId)).toMatchObject({ ownCostUsd: '120.00', costUsd: '120.00' });
    expect(lineOf(mar, tree.projectB).costUsd).toBe('40.00');
    expect(lineOf(mar, tree.orgId).costUsd).toBe('160.00');

    // FOCUS: prepaid credits were billed when bought (BilledCost 0); EffectiveCost carries the month, with the
    // forfeiture as its own row on the cost centre.
    const focus = await fetchCsv(h, `/reports/chargeback.focus.csv?account=${encodeURIComponent(account)}&period=2026-03`);
    const rows: Record<string, string>[] = parse(focus.body, { columns: true });
    expect(sumCents(rows.map((r) => r.EffectiveCost!))).toBe(16_000n);
    expect(sumCents(rows.map((r) => r.BilledCost!))).toBe(0n);
    expect(rows.find((r) => r.CommitmentDiscountStatus === 'Unused')).toMatchObject({ SubAccountId: rawId(tree.salesId), EffectiveCost: '120.00', ConsumedQuantity: '0' });
    expect(rows.find((r) => r.SubAccountId === rawId(tree.projectB))).toMatchObject({ EffectiveCost: '40.00', ConsumedQuantity: '5000' });
  });

  it('a total price is billed exactly: $10,000 for 1,500,000 cs', async () => {
    const account = await createBillingAccount(h, {
      name: 'Package total',
      effectiveFrom: '2026-01',
      creditPackage: { totalCreditSeconds: '1500000', totalPriceUsd: '10000', termStart: '2026-01-01', termEnd: '2026-12-31' },
    });
    const tree = await createBillingTree(h, account, 'Total');
    await adjust(h, account, tree.projectA, '2026-01', '1000');
    await adjust(h, account, tree.projectB, '2026-01', '12345');
    const jan = await report(h, account, '2026-01');
    // 13,345 cs × $10,000 / 1,500,000 = $88.9666… → $88.97; lines 1,000/150 = 6.666… and 12,345/150 = 82.30.
    expect(jan.invoiceTotalUsd).toBe('88.97');
    expect([lineOf(jan, tree.projectA).costUsd, lineOf(jan, tree.projectB).costUsd]).toEqual(['6.67', '82.30']);
    const terms = await h.gql(`query($id: ID!) { node(id: $id) { ... on Account { terms(period: "2026-01") { pricePerCreditSecondUsd totalPriceUsd totalCreditSeconds } } } }`, { id: account });
    expect(terms.data.node.terms).toEqual({ pricePerCreditSecondUsd: '0.006666666667', totalPriceUsd: '10000', totalCreditSeconds: '1500000' });
  });
});

describe('budgets in USD', () => {
  const BUDGET = `query($id: ID!) { orgUnit(id: $id) { budgets { window limitUnit limitUsd limitCreditSeconds account { name } } } }`;

  it('are enforced in credit-seconds at the overage rate, and shown in both units', async () => {
    const account = await createBillingAccount(h, { name: 'USD budgets', effectiveFrom: '2024-01' });
    const tree = await createBillingTree(h, account, 'Usd');
    // $100 at $0.00833 per cs = 12,004.801920768… cs, rounded down to the micro-cs.
    const set = await setBudget(h, { orgUnitId: tree.mediaId, accountId: account, window: 'MONTHLY', limitUsd: '100' });
    expect(set.budget.limitCreditSeconds).toBe('12004.80192');
    await setBudget(h, { orgUnitId: tree.mediaId, accountId: account, window: 'LIFETIME', limitCreditSeconds: '1000' });
    const shown = await h.gql(BUDGET, { id: tree.mediaId });
    expect(shown.data.orgUnit.budgets).toEqual(
      expect.arrayContaining([
        { window: 'MONTHLY', limitUnit: 'USD', limitUsd: '100.00', limitCreditSeconds: '12004.80192', account: { name: 'USD budgets' } },
        { window: 'LIFETIME', limitUnit: 'CREDIT_SECONDS', limitUsd: '8.33', limitCreditSeconds: '1000', account: { name: 'USD budgets' } },
      ]),
    );

    // $0.40 buys 48.019207 cs, less than one job's 52.8 cs hold: refused.
    await setBudget(h, { orgUnitId: tree.teamA, accountId: account, window: 'MONTHLY', limitUsd: '0.40' });
    const refused = await h.gql(SUBMIT, { input: { projectId: tree.projectA, kind: 'AVATAR_VIDEO', request: avatarRequest() } });
    expect(refused.data.submitJob).toMatchObject({ __typename: 'BudgetExceededError', limitCreditSeconds: '48.019207', requestedCreditSeconds: '52.8' });
    await setBudget(h, { orgUnitId: tree.teamA, accountId: account, window: 'MONTHLY', limitUsd: '0.44' }); // 52.821128 cs
    const admitted = await h.gql(SUBMIT, { input: { projectId: tree.projectA, kind: 'AVATAR_VIDEO', request: avatarRequest() } });
    expect(admitted.data.submitJob.__typename).toBe('SubmitJobPayload');

    const SET = `mutation($input: SetBudgetInput!) { setBudget(input: $input) { __typename ... on ValidationError { field message } } }`;
    const both = await h.gql(SET, { input: { orgUnitId: tree.teamB, accountId: account, window: 'MONTHLY', limitUsd: '1', limitCreditSeconds: '1' } });
    expect(both.data.setBudget.__typename).toBe('ValidationError');
    const neither = await h.gql(SET, { input: { orgUnitId: tree.teamB, accountId: account, window: 'MONTHLY' } });
    expect(neither.data.setBudget.__typename).toBe('ValidationError');
    // A budget over all accounts has no single price.
    const allAccounts = await h.gql(SET, { input: { orgUnitId: tree.teamB, window: 'MONTHLY', limitUsd: '100' } });
    expect(allAccounts.data.setBudget).toMatchObject({ __typename: 'ValidationError', field: 'limitUsd' });
  });

  it('on a credit package, at its price per credit-second', async () => {
    const account = await createBillingAccount(h, {
      name: 'USD package',
      effectiveFrom: '2024-01',
      creditPackage: { totalCreditSeconds: '100000', pricePerCreditSecondUsd: '0.008', termStart: '2024-01-01', termEnd: '2030-12-31' },
    });
    const tree = await createBillingTree(h, account, 'UsdPkg');
    const set = await setBudget(h, { orgUnitId: tree.teamA, accountId: account, window: 'CONTRACT_TERM', limitUsd: '10' });
    expect(set.budget.limitCreditSeconds).toBe('1250');
  });
});

describe("the reads' inlined window functions", () => {
  // Last: the budgets above include CONTRACT_TERM on credit packages whose terms have dates.
  it("answer as the admission's for every budget, before, in and after the terms", async () => {
    const windows = await expectBudgetFunctionsAgree(h.services.db, ['2023-12-15T00:00:00Z', '2024-06-15T00:00:00Z', '2026-02-10T12:00:00Z', '2031-01-15T00:00:00Z', new Date().toISOString()]);
    expect(windows.CONTRACT_TERM).toBeGreaterThan(0);
  });
});

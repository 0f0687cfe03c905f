// Chargeback through the database and GraphQL: the worked example under each policy, under the pool,
// an empty month, CSV and FOCUS exports, closing a period, and who may read which lines.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'csv-parse/sync';
import { sql } from 'drizzle-orm';
import { startHarness, type Harness } from './support/harness.js';
import { issueServiceToken, mustMutate } from './support/fixtures.js';
import {
  ADJUST,
  adjust,
  createBillingAccount,
  createBillingTree,
  fetchCsv,
  lineOf,
  rawId,
  report,
  setShares,
  setTerms,
  sumCents,
  type BillingTree,
} from './support/billing.js';
import { expectCountersEqualLedger } from './support/invariants.js';
import { queryRows } from '../src/db/client.js';

let h: Harness;
let proportional: BillingTree;
let marginal: BillingTree;
let shares: BillingTree;

const MONTH = '2026-10';
const UNDER_POOL = '2026-09';
const EMPTY = '2026-08';

/** The seed's month: teams at 350,000 / 210,000 / 140,000 cs; Team A's usage comes in two parts, the second after B and C. */
async function workedMonth(tree: BillingTree): Promise<void> {
  await adjust(h, tree.accountId, tree.teamA, MONTH, '200000');
  await adjust(h, tree.accountId, tree.teamB, MONTH, '210000');
  await adjust(h, tree.accountId, tree.teamC, MONTH, '140000');
  await adjust(h, tree.accountId, tree.teamA, MONTH, '150000');
}

async function underPoolMonth(tree: BillingTree): Promise<void> {
  await adjust(h, tree.accountId, tree.teamA, UNDER_POOL, '250000');
  await adjust(h, tree.accountId, tree.teamB, UNDER_POOL, '100000');
  await adjust(h, tree.accountId, tree.teamC, UNDER_POOL, '50000');
}

function costs(r: any, tree: BillingTree): Record<string, string> {
  const of = (id: string) => lineOf(r, id).costUsd;
  return {
    org: of(tree.orgId),
    media: of(tree.mediaId),
    sales: of(tree.salesId),
    a: of(tree.teamA),
    b: of(tree.teamB),
    c: of(tree.teamC),
  };
}

beforeAll(async () => {
  h = await startHarness({ workers: false });
  const a1 = await createBillingAccount(h, { name: 'Proportional' });
  proportional = await createBillingTree(h, a1, 'P');
  const a2 = await createBillingAccount(h, { name: 'Marginal' });
  marginal = await createBillingTree(h, a2, 'M');
  await setTerms(h, { accountId: a2, effectiveFrom: '2024-01', allocationPolicy: 'MARGINAL' });
  const a3 = await createBillingAccount(h, { name: 'Shares' });
  shares = await createBillingTree(h, a3, 'S');
  await setShares(h, a3, '2024-01', [
    { orgUnitId: shares.teamA, share: '0.4' },
    { orgUnitId: shares.teamB, share: '0.4' },
    { orgUnitId: shares.teamC, share: '0.2' },
  ]);
  await setTerms(h, { accountId: a3, effectiveFrom: '2024-01', allocationPolicy: 'COMMITTED_SHARES' });
  for (const tree of [proportional, marginal, shares]) {
    await workedMonth(tree);
    await underPoolMonth(tree);
  }
});
afterAll(async () => h?.close());

describe('the seed worked example: $5,000 tier, 700,000 cs', () => {
  it('PROPORTIONAL: $2,916.50 / $1,749.90 / $1,166.60, invoice $5,833.00', async () => {
    const r = await report(h, proportional.accountId, MONTH);
    expect(r).toMatchObject({
      period: MONTH,
      policy: 'PROPORTIONAL',
      closed: false,
      billingModel: 'USAGE_BASED',
      invoiceTotalUsd: '5833.00',
      mmcUsd: '5000.00',
      overageUsd: '833.00',
      usedCreditSeconds: '700000',
      includedCreditSeconds: '600000',
      overageCreditSeconds: '100000',
      remainingCreditSeconds: '0',
    });
    expect(costs(r, proportional)).toEqual({ org: '5833.00', media: '4666.40', sales: '1166.60', a: '2916.50', b: '1749.90', c: '1166.60' });
    // Overage cs in proportion to usage: 50,000 / 30,000 / 20,000.
    expect(lineOf(r, proportional.teamA)).toMatchObject({ creditSeconds: '350000', inPoolCreditSeconds: '300000', overageCreditSeconds: '50000' });
    expect(lineOf(r, proportional.teamB)).toMatchObject({ creditSeconds: '210000', inPoolCreditSeconds: '180000', overageCreditSeconds: '30000' });
    expect(lineOf(r, proportional.teamC)).toMatchObject({ creditSeconds: '140000', inPoolCreditSeconds: '120000', overageCreditSeconds: '20000' });
    // Lines at every level: organization, both departments, three teams, three projects.
    expect(r.lines.map((l: any) => l.kind).sort()).toEqual(['DEPARTMENT', 'DEPARTMENT', 'ORGANIZATION', 'PROJECT', 'PROJECT', 'PROJECT', 'TEAM', 'TEAM', 'TEAM']);
    expect(sumCents(r.lines.map((l: any) => l.ownCostUsd))).toBe(583_300n);
    // The account's live period says the same.
    const period = await h.gql(
      `query($id: ID!) { node(id: $id) { ... on Account { period(period: "${MONTH}") { includedCreditSeconds usedCreditSeconds reservedCreditSeconds overageCreditSeconds remainingIncludedCreditSeconds projectedInvoiceUsd } } } }`,
      { id: proportional.accountId },
    );
    expect(period.data.node.period).toEqual({
      includedCreditSeconds: '600000',
      usedCreditSeconds: '700000',
      reservedCreditSeconds: '0',
      overageCreditSeconds: '100000',
      remainingIncludedCreditSeconds: '0',
      projectedInvoiceUsd: '5833.00',
    });
  });

  it('MARGINAL: settlement order, the crossing entry split', async () => {
    // Pool price $5,000 / 600,000 cs = $1/120 per cs. In order: A 200k, B 210k, C 140k (550k in the pool),
    // then A's 150k crosses: 50k in the pool, 100k overage at $0.00833 = $833.
    //   A: 250,000/120 + 833 = 2,916.3333…   B: 210,000/120 = 1,750.00   C: 140,000/120 = 1,166.6666…
    // Cents 291,633.33 + 175,000 + 116,666.67: floors 583,299, the missing cent to C (.67 > .33).
    const r = await report(h, marginal.accountId, MONTH);
    expect(r).toMatchObject({ policy: 'MARGINAL', invoiceTotalUsd: '5833.00', mmcUsd: '5000.00', overageUsd: '833.00' });
    expect(costs(r, marginal)).toEqual({ org: '5833.00', media: '4666.33', sales: '1166.67', a: '2916.33', b: '1750.00', c: '1166.67' });
    expect(lineOf(r, marginal.teamA)).toMatchObject({ inPoolCreditSeconds: '250000', overageCreditSeconds: '100000' });
    expect(lineOf(r, marginal.teamB)).toMatchObject({ inPoolCreditSeconds: '210000', overageCreditSeconds: '0' });
    expect(lineOf(r, marginal.teamC)).toMatchObject({ inPoolCreditSeconds: '140000', overageCreditSeconds: '0' });
  });

  it('COMMITTED_SHARES 0.4 / 0.4 / 0.2', async () => {
    // s·I = 240k / 240k / 120k; excesses 110k / 0 / 20k (sum 130k).
    //   A: 2,000 + 833 × 11/13 = 2,704.8461…   B: 2,000.00   C: 1,000 + 833 × 2/13 = 1,128.1538…
    // Cents 270,484.62 + 200,000 + 112,815.38: floors 583,299, the missing cent to A (.62 > .38).
    // Overage cs 100,000 × 11/13 = 84,615.384615… and × 2/13 = 15,384.615384…: the last micro-cs to C.
    const r = await report(h, shares.accountId, MONTH);
    expect(r).toMatchObject({ policy: 'COMMITTED_SHARES', invoiceTotalUsd: '5833.00' });
    expect(costs(r, shares)).toEqual({ org: '5833.00', media: '4704.85', sales: '1128.15', a: '2704.85', b: '2000.00', c: '1128.15' });
    expect(lineOf(r, shares.teamA).overageCreditSeconds).toBe('84615.384615');
    expect(lineOf(r, shares.teamB).overageCreditSeconds).toBe('0');
    expect(lineOf(r, shares.teamC).overageCreditSeconds).toBe('15384.615385');
  });

  it('shares must sum exactly to 1, and COMMITTED_SHARES needs shares first', async () => {
    const bad = await h.gql(
      `mutation($input: SetCommittedSharesInput!) { setCommittedShares(input: $input) { __typename ... on ValidationError { field message } } }`,
      { input: { accountId: shares.accountId, effectiveFrom: '2027-01', shares: [{ orgUnitId: shares.teamA, share: '0.5' }, { orgUnitId: shares.teamB, share: '0.49' }] } },
    );
    expect(bad.data.setCommittedShares.__typename).toBe('ValidationError');
    expect(bad.data.setCommittedShares.message).toMatch(/sum exactly to 1/);
    const out = await h.gql(
      `mutation($input: SetCommittedSharesInput!) { setCommittedShares(input: $input) { __typename } }`,
      { input: { accountId: shares.accountId, effectiveFrom: '2027-01', shares: [{ orgUnitId: shares.teamA, share: '1.5' }] } },
    );
    expect(out.data.setCommittedShares.__typename).toBe('ValidationError');
    const account = await createBillingAccount(h, { name: 'No shares' });
    const refused = await h.gql(
      `mutation($input: SetAccountTermsInput!) { setAccountTerms(input: $input) { __typename ... on ValidationError { field } } }`,
      { input: { accountId: account, effectiveFrom: '2024-01', allocationPolicy: 'COMMITTED_SHARES' } },
    );
    expect(refused.data.setAccountTerms).toEqual({ __typename: 'ValidationError', field: 'allocationPolicy' });
  });
});

describe('under the pool: 400,000 cs on the $5,000 tier (A 250k, B 100k, C 50k)', () => {
  it('PROPORTIONAL: the whole $5,000 to the users', async () => {
    const r = await report(h, proportional.accountId, UNDER_POOL);
    expect(r).toMatchObject({ invoiceTotalUsd: '5000.00', overageUsd: '0.00', overageCreditSeconds: '0', remainingCreditSeconds: '200000' });
    expect(costs(r, proportional)).toEqual({ org: '5000.00', media: '4375.00', sales: '625.00', a: '3125.00', b: '1250.00', c: '625.00' });
    expect(lineOf(r, proportional.orgId).ownCostUsd).toBe('0.00');
  });

  it('MARGINAL: usage at $1/120 per cs, the unused 200,000 cs of pool on the cost centre', async () => {
    // A 2,083.3333…, B 833.3333…, C 416.6666…, unused pool 1,666.6666… on the organization (the default
    // cost centre). Floors 499,998; the two cents go to the .67 remainders: C and the organization.
    const r = await report(h, marginal.accountId, UNDER_POOL);
    expect(r.invoiceTotalUsd).toBe('5000.00');
    expect(costs(r, marginal)).toEqual({ org: '5000.00', media: '2916.66', sales: '416.67', a: '2083.33', b: '833.33', c: '416.67' });
    expect(lineOf(r, marginal.orgId).ownCostUsd).toBe('1666.67');
    expect(r.costCentre.id).toBe(marginal.orgId);
  });

  it('COMMITTED_SHARES: each team its share of the MMC', async () => {
    const r = await report(h, shares.accountId, UNDER_POOL);
    expect(r.invoiceTotalUsd).toBe('5000.00');
    expect(costs(r, shares)).toEqual({ org: '5000.00', media: '4000.00', sales: '1000.00', a: '2000.00', b: '2000.00', c: '1000.00' });
  });

  it('a month without usage: the MMC on the cost centre', async () => {
    const account = await createBillingAccount(h, { name: 'Quiet' });
    const tree = await createBillingTree(h, account, 'Q');
    await setTerms(h, { accountId: account, effectiveFrom: EMPTY, costCentreUnitId: tree.salesId });
    const r = await report(h, account, EMPTY);
    expect(r).toMatchObject({ invoiceTotalUsd: '5000.00', usedCreditSeconds: '0', remainingCreditSeconds: '600000' });
    expect(lineOf(r, tree.salesId)).toMatchObject({ ownCostUsd: '5000.00', costUsd: '5000.00' });
    expect(lineOf(r, tree.orgId)).toMatchObject({ ownCostUsd: '0.00', costUsd: '5000.00' });
    // The month before keeps the terms it had: the organization is its cost centre.
    const before = await report(h, account, '2026-07');
    expect(before.costCentre.id).toBe(tree.orgId);
    expect(lineOf(before, tree.orgId).ownCostUsd).toBe('5000.00');
  });
});

describe('far over the pool: $1,000 tier, 10,000,000 cs', () => {
  it('bills 9,880,000 cs of overage at $0.01 and shares it by each policy', async () => {
    // O = 10,000,000 − 120,000 = 9,880,000 cs × $0.01 = $98,800; invoice $99,800.00.
    const expected: Record<string, [string, string]> = {
      PROPORTIONAL: ['89820.00', '9980.00'], // 9 : 1
      MARGINAL: ['89800.00', '10000.00'], // A first: the whole pool ($1,000) + 8,880,000 × 0.01; B all overage
    };
    for (const [policy, [a, b]] of Object.entries(expected)) {
      const account = await createBillingAccount(h, { name: `Far over ${policy}` });
      const tree = await createBillingTree(h, account, `Far ${policy}`);
      await setTerms(h, { accountId: account, effectiveFrom: '2024-01', preset: 'MMC_1000', allocationPolicy: policy });
      await adjust(h, account, tree.projectA, MONTH, '9000000');
      await adjust(h, account, tree.projectB, MONTH, '1000000');
      const r = await report(h, account, MONTH);
      expect(r).toMatchObject({ invoiceTotalUsd: '99800.00', mmcUsd: '1000.00', overageUsd: '98800.00', overageCreditSeconds: '9880000' });
      expect([lineOf(r, tree.projectA).costUsd, lineOf(r, tree.projectB).costUsd]).toEqual([a, b]);
      expect(lineOf(r, tree.orgId).costUsd).toBe('99800.00');
    }
  });
});

describe('CSV and FOCUS exports', () => {
  it('parse with a real CSV parser and carry the GraphQL totals', async () => {
    const r = await report(h, marginal.accountId, UNDER_POOL);
    const csv = await fetchCsv(h, `/reports/chargeback.csv?account=${encodeURIComponent(marginal.accountId)}&period=${UNDER_POOL}`);
    expect(csv.status).toBe(200);
    expect(csv.type).toMatch(/^text\/csv/);
    const rows: Record<string, string>[] = parse(csv.body, { columns: true, skip_empty_lines: true });
    expect(rows).toHaveLength(r.lines.length);
    const root = rows.find((row) => row.kind === 'ORGANIZATION')!;
    expect(root.cost_usd).toBe(r.invoiceTotalUsd);
    expect(sumCents(rows.map((row) => row.own_cost_usd!))).toBe(sumCents([r.invoiceTotalUsd]));
    for (const line of r.lines) {
      const row = rows.find((x) => x.org_unit_id === rawId(line.orgUnit.id))!;
      expect(row).toMatchObject({ cost_usd: line.costUsd, own_cost_usd: line.ownCostUsd, credit_seconds: line.creditSeconds, overage_credit_seconds: line.overageCreditSeconds });
    }
    expect(rows.find((row) => row.name === 'Team A')!.path).toBe('Acme / M Media / Team A');

    for (const path of [
      `/reports/chargeback.focus.csv?account=${encodeURIComponent(marginal.accountId)}&period=${UNDER_POOL}`,
      `/reports/chargeback.csv?account=${rawId(marginal.accountId)}&period=${UNDER_POOL}&format=focus`,
    ]) {
      const focus = await fetchCsv(h, path);
      expect(focus.status).toBe(200);
      const items: Record<string, string>[] = parse(focus.body, { columns: true, skip_empty_lines: true });
      for (const column of ['BilledCost', 'EffectiveCost', 'ChargePeriodStart', 'ChargePeriodEnd', 'BillingCurrency', 'SubAccountId', 'SubAccountName', 'ServiceName', 'ConsumedQuantity', 'ConsumedUnit', 'Tags']) {
        expect(Object.keys(items[0]!)).toContain(column);
      }
      expect(sumCents(items.map((i) => i.BilledCost!))).toBe(500_000n);
      expect(sumCents(items.map((i) => i.EffectiveCost!))).toBe(500_000n);
      const consumed = items.reduce((a, i) => a + BigInt(i.ConsumedQuantity!), 0n);
      expect(consumed.toString()).toBe(r.usedCreditSeconds);
      expect(items.every((i) => i.BillingCurrency === 'USD' && i.ConsumedUnit === 'credit-seconds')).toBe(true);
      expect(items[0]!.ChargePeriodStart).toBe(r.periodStart);
      expect(items[0]!.ChargePeriodEnd).toBe(r.periodEnd);
      const teamA = items.find((i) => i.SubAccountId === rawId(marginal.teamA))!;
      expect(teamA).toMatchObject({ BilledCost: '2083.33', ConsumedQuantity: '250000', SubAccountName: 'Acme / M Media / Team A' });
      expect(JSON.parse(teamA.Tags!)).toMatchObject({ 'x-gateway/kind': 'TEAM', 'x-gateway/policy': 'MARGINAL' });
    }
  });

  it('is authorised like the query', async () => {
    const path = `/reports/chargeback.csv?account=${encodeURIComponent(proportional.accountId)}&period=${MONTH}`;
    expect((await fetchCsv(h, path, null)).status).toBe(401);
    expect((await fetchCsv(h, path, 'not-a-token')).status).toBe(401);
    const member = await h.services.tokens.issueOperatorToken({ name: 'a', role: 'MEMBER', unitId: rawId(proportional.teamA) });
    const mine = parse((await fetchCsv(h, path, member)).body, { columns: true }) as Record<string, string>[];
    expect(mine.map((row) => row.name).sort()).toEqual(['Project A', 'Team A']);
    expect(mine.find((row) => row.name === 'Team A')!.cost_usd).toBe('2916.50');
    // Another account reads as not found.
    const other = `/reports/chargeback.csv?account=${encodeURIComponent(marginal.accountId)}&period=${MONTH}`;
    expect((await fetchCsv(h, other, member)).status).toBe(404);
    expect((await fetchCsv(h, `/reports/chargeback.csv?account=${encodeURIComponent(proportional.accountId)}&period=2026-13`)).status).toBe(400);
  });
});

describe('who may read which lines', () => {
  it('MEMBER and SERVICE callers see only their own subtree; FINANCE sees all', async () => {
    const finance = await h.services.tokens.issueOperatorToken({ name: 'f', role: 'FINANCE' });
    const all = await report(h, proportional.accountId, MONTH, finance);
    expect(all.lines).toHaveLength(9);

    const member = await h.services.tokens.issueOperatorToken({ name: 'b', role: 'MEMBER', unitId: rawId(proportional.teamB) });
    const mine = await report(h, proportional.accountId, MONTH, member);
    expect(mine.lines.map((l: any) => l.name).sort()).toEqual(['Project B', 'Team B']);
    expect(lineOf(mine, proportional.teamB).costUsd).toBe('1749.90');
    expect(mine.invoiceTotalUsd).toBe('5833.00');

    const manager = await h.services.tokens.issueOperatorToken({ name: 'm', role: 'MANAGER', unitId: rawId(proportional.mediaId) });
    const dept = await report(h, proportional.accountId, MONTH, manager);
    expect(dept.lines.map((l: any) => l.name).sort()).toEqual(['P Media', 'Project A', 'Project B', 'Team A', 'Team B']);

    const { token: service } = await issueServiceToken(h, proportional.projectC, 'reporting');
    const own = await report(h, proportional.accountId, MONTH, service);
    expect(own.lines.map((l: any) => l.name)).toEqual(['Project C']);
    expect(own.adjustments).toEqual([]);

    // An account outside the caller's tree reads as not found.
    const other = await h.gql(`query($a: ID!) { chargebackReport(accountId: $a, period: "${MONTH}") { invoiceTotalUsd } }`, { a: marginal.accountId }, member);
    expect(other.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    // Members cannot write billing data.
    const refused = await h.gql(ADJUST, { input: { accountId: proportional.accountId, orgUnitId: proportional.teamB, period: MONTH, creditSeconds: '1', reason: 'x' } }, member);
    expect(refused.data.recordUsageAdjustment.__typename).toBe('ForbiddenError');
  });
});

describe('adjustments and closing a period', () => {
  it('negative adjustments cannot take a unit below zero; adjustments are audited', async () => {
    const account = await createBillingAccount(h, { name: 'Corrections' });
    const tree = await createBillingTree(h, account, 'C');
    await adjust(h, account, tree.projectA, '2026-05', '1000.5');
    const tooMuch = await h.gql(ADJUST, { input: { accountId: account, orgUnitId: tree.projectA, period: '2026-05', creditSeconds: '-1000.500001', reason: 'oops' } });
    expect(tooMuch.data.recordUsageAdjustment).toMatchObject({ __typename: 'ValidationError', field: 'creditSeconds' });
    // The team has usage in its subtree but none of its own: it cannot be reduced either.
    const team = await h.gql(ADJUST, { input: { accountId: account, orgUnitId: tree.teamA, period: '2026-05', creditSeconds: '-1', reason: 'oops' } });
    expect(team.data.recordUsageAdjustment.__typename).toBe('ValidationError');
    const ok = await adjust(h, account, tree.projectA, '2026-05', '-0.5', 'duplicate import');
    expect(ok.adjustment).toMatchObject({ creditSeconds: '-0.5', period: '2026-05', movedToNextOpenPeriod: false, reason: 'duplicate import' });
    const r = await report(h, account, '2026-05');
    expect(r.usedCreditSeconds).toBe('1000');
    expect(r.adjustments.map((a: any) => a.creditSeconds)).toEqual(['1000.5', '-0.5']);
    const audit = await queryRows<{ action: string; actor_subject: string; after: any }>(
      h.services.db,
      sql`select action, actor_subject, after from audit_events where entity_id = ${rawId(ok.adjustment.id)}`,
    );
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ action: 'billing.usage.adjust', actor_subject: 'admin:test' });
    expect(audit[0]!.after).toMatchObject({ creditSeconds: '-0.5', reason: 'duplicate import', period: '2026-05' });
    await expectCountersEqualLedger(h.services.db);
  });

  it('closePeriod freezes the statement; a later adjustment goes to the next open period and says so', async () => {
    const account = await createBillingAccount(h, { name: 'Closing' });
    const tree = await createBillingTree(h, account, 'X');
    await adjust(h, account, tree.teamA, '2026-06', '650000');
    await adjust(h, account, tree.teamC, '2026-06', '12345.678');
    const close = `mutation($input: ClosePeriodInput!) { closePeriod(input: $input) { __typename
      ... on ClosePeriodPayload { report { closed closedAt invoiceTotalUsd } } ... on ValidationError { field message } ... on Error { message } } }`;
    const closed = await mustMutate(h, close, { input: { accountId: account, period: '2026-06' } }, 'closePeriod');
    expect(closed.report).toMatchObject({ closed: true, invoiceTotalUsd: '5519.34' }); // 5,000 + 62,345.678 × 0.00833 = 519.3395…
    const statementText = async () =>
      (await queryRows<{ statement: string }>(h.services.db, sql`select statement from billing_statements where account_id = ${rawId(account)} and period = '2026-06'`))[0]!.statement;
    const csvPath = `/reports/chargeback.csv?account=${encodeURIComponent(account)}&period=2026-06`;
    const before = { text: await statementText(), gql: JSON.stringify(await report(h, account, '2026-06')), csv: (await fetchCsv(h, csvPath)).body };

    const late = await adjust(h, account, tree.teamB, '2026-06', '1000', 'found in an old invoice');
    expect(late.adjustment).toMatchObject({ requestedPeriod: '2026-06', period: '2026-07', movedToNextOpenPeriod: true });

    const after = { text: await statementText(), gql: JSON.stringify(await report(h, account, '2026-06')), csv: (await fetchCsv(h, csvPath)).body };
    expect(after).toEqual(before);
    const july = await report(h, account, '2026-07');
    expect(july.usedCreditSeconds).toBe('1000');
    expect(lineOf(july, tree.teamB).creditSeconds).toBe('1000');
    expect(july.adjustments).toEqual([expect.objectContaining({ creditSeconds: '1000', requestedPeriod: '2026-06', reason: 'found in an old invoice' })]);

    // The database itself refuses to change a closed statement.
    await expect(h.services.db.execute(sql`update billing_statements set statement = '{}' where account_id = ${rawId(account)}`)).rejects.toThrow();
    await expect(h.services.db.execute(sql`delete from billing_statements where account_id = ${rawId(account)}`)).rejects.toThrow();
    expect(await statementText()).toBe(before.text);

    // Closing twice, closing the running month, and changing the terms of a closed month are refused.
    const twice = await h.gql(close, { input: { accountId: account, period: '2026-06' } });
    expect(twice.data.closePeriod.__typename).toBe('ValidationError');
    const running = await h.gql(close, { input: { accountId: account, period: '2099-01' } });
    expect(running.data.closePeriod).toMatchObject({ __typename: 'ValidationError', field: 'period' });
    const terms = await h.gql(
      `mutation($input: SetAccountTermsInput!) { setAccountTerms(input: $input) { __typename ... on ValidationError { field } } }`,
      { input: { accountId: account, effectiveFrom: '2026-06', preset: 'MMC_20000' } },
    );
    expect(terms.data.setAccountTerms).toEqual({ __typename: 'ValidationError', field: 'effectiveFrom' });
    // A MEMBER cannot close.
    const member = await h.services.tokens.issueOperatorToken({ name: 'x', role: 'MEMBER', unitId: rawId(tree.teamA) });
    expect((await h.gql(close, { input: { accountId: account, period: '2026-05' } }, member)).data.closePeriod.__typename).toBe('ForbiddenError');
  });
});

describe('contract terms over time', () => {
  it('a change applies from its period; earlier periods keep their terms; FINANCE may edit, MEMBER may not', async () => {
    const account = await createBillingAccount(h, { name: 'Tiers' });
    const tree = await createBillingTree(h, account, 'T');
    const finance = await h.services.tokens.issueOperatorToken({ name: 'f', role: 'FINANCE' });
    const set = await setTerms(h, { accountId: account, effectiveFrom: '2026-03', preset: 'MMC_20000' }, finance);
    expect(set.terms).toMatchObject({ effectiveFrom: '2026-03', preset: 'MMC_20000', mmcUsd: '20000', includedCreditSeconds: '2400000', overageRateUsd: '0.0075', allocationPolicy: 'PROPORTIONAL' });
    await adjust(h, account, tree.teamA, '2026-02', '700000');
    await adjust(h, account, tree.teamA, '2026-03', '2500000');
    expect((await report(h, account, '2026-02')).invoiceTotalUsd).toBe('5833.00');
    // 20,000 + 100,000 × 0.0075 = 20,750.00
    expect((await report(h, account, '2026-03')).invoiceTotalUsd).toBe('20750.00');
    const history = await h.gql(`query($id: ID!) { node(id: $id) { ... on Account { termsHistory { effectiveFrom preset mmcUsd } terms(period: "2026-02") { mmcUsd } } } }`, { id: account });
    expect(history.data.node.termsHistory).toEqual([
      { effectiveFrom: '2024-01', preset: null, mmcUsd: '5000' },
      { effectiveFrom: '2026-03', preset: 'MMC_20000', mmcUsd: '20000' },
    ]);
    expect(history.data.node.terms.mmcUsd).toBe('5000');
    const member = await h.services.tokens.issueOperatorToken({ name: 'm', role: 'MEMBER', unitId: rawId(tree.teamA) });
    const refused = await h.gql(`mutation($input: SetAccountTermsInput!) { setAccountTerms(input: $input) { __typename } }`, { input: { accountId: account, effectiveFrom: '2026-04', preset: 'MMC_1000' } }, member);
    expect(refused.data.setAccountTerms.__typename).toBe('ForbiddenError');
    const audit = await queryRows<{ n: number }>(h.services.db, sql`select count(*)::int as n from audit_events where action = 'account.terms.set' and entity_id = ${rawId(account)}`);
    expect(Number(audit[0]!.n)).toBe(1);

    // The billing time zone is a term too: it applies to usage settled from now on, and is audited.
    const tz = await h.gql(
      `mutation($input: SetAccountTermsInput!) { setAccountTerms(input: $input) { __typename ... on SetAccountTermsPayload { account { timezone } terms { effectiveFrom mmcUsd } } ... on ValidationError { field } } }`,
      { input: { accountId: account, effectiveFrom: '2026-04', timezone: 'Asia/Tokyo' } },
    );
    expect(tz.data.setAccountTerms).toMatchObject({ account: { timezone: 'Asia/Tokyo' }, terms: { effectiveFrom: '2026-04', mmcUsd: '20000' } });
    const badTz = await h.gql(
      `mutation($input: SetAccountTermsInput!) { setAccountTerms(input: $input) { __typename ... on ValidationError { field } } }`,
      { input: { accountId: account, effectiveFrom: '2026-05', timezone: 'Mars/Olympus' } },
    );
    expect(badTz.data.setAccountTerms).toEqual({ __typename: 'ValidationError', field: 'timezone' });
    // One audit event per mutation: the time zone is part of the terms change that moved it.
    const tzAudit = await queryRows<{ before: any; after: any }>(
      h.services.db,
      sql`select before->'timezone' as before, after->'timezone' as after from audit_events
          where action = 'account.terms.set' and entity_id = ${rawId(account)} and after->>'effectiveFrom' = '2026-04'`,
    );
    expect(tzAudit).toEqual([{ before: 'UTC', after: 'Asia/Tokyo' }]);
  });
});

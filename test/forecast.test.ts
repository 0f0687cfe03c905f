// Forecasts: the method on hand-computed cases (fixed clock), a synthetic month with known seasonality, and one
// forecast end to end through the database (daily rollups written by ledger movements, read back per unit and
// per account).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addDays, burnModel, forecastPeriod, runOutDay, type DailyPoint } from '../src/billing/forecast.js';
import { accountForecast, unitForecast } from '../src/billing/usage-forecast.js';
import { recordMovement } from '../src/ledger/ledger.js';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { createBillingAccount, organization, rawId, TIER_5K_TERMS } from './support/billing.js';
import { avatarRequest, createTree, createUnit, mustMutate, setBudget, SUBMIT } from './support/fixtures.js';
import { dayOf } from '../src/primitives/period.js';
import { expectCountersEqualLedger } from './support/invariants.js';

const CS = 1_000_000n;
const cs = (n: number) => BigInt(Math.round(n * 1e6));

/** `value(day)` credit-seconds on each day from `from` to `to` inclusive. */
function series(from: string, to: string, value: (day: string) => number): DailyPoint[] {
  const out: DailyPoint[] = [];
  for (let d = from; d <= to; d = addDays(d, 1)) out.push({ day: d, settledMicroCs: cs(value(d)) });
  return out;
}
const weekday = (day: string) => new Date(`${day}T00:00:00Z`).getUTCDay();

describe('the method (hand-computed)', () => {
  it('a flat burn: settled + holds + half of today + the 16 days left', () => {
    const f = forecastPeriod({
      today: '2026-03-15',
      elapsedOfToday: 0.5,
      periodLastDay: '2026-03-31',
      settledSoFarMicroCs: 150n * CS,
      openHoldsMicroCs: 5n * CS,
      history: series('2026-02-15', '2026-03-14', () => 10),
    });
    expect(f.model.dailyBurn).toBe(10e6);
    expect(f.model.historyDays).toBe(28);
    expect(f.model.weekdayFactors).toEqual([1, 1, 1, 1, 1, 1, 1]);
    // 150 + 5 + 10 × 0.5 + 16 × 10 = 320 cs; no spread.
    expect(f.projectedMicroCs).toBe(320n * CS);
    expect([f.lowMicroCs, f.highMicroCs]).toEqual([320n * CS, 320n * CS]);
    expect(f.daysRemaining).toBe(16);
  });

  it('weekday seasonality: 14 cs on weekdays, nothing at weekends', () => {
    // 2026-02-13 .. 2026-03-12: 20 weekdays, 8 weekend days; mean 10, factors 1.4 and 0.
    const history = series('2026-02-13', '2026-03-12', (d) => ([0, 6].includes(weekday(d)) ? 0 : 14));
    const m = burnModel('2026-03-13', history);
    expect(m.dailyBurn).toBe(10e6);
    expect(m.weekdayFactors.map((x) => Math.round(x * 1000) / 1000)).toEqual([0, 1.4, 1.4, 1.4, 1.4, 1.4, 0]);
    expect(m.sigma).toBeCloseTo(0, 6);
    // Friday 13 March, nothing gone yet: today (14) + 12 weekdays of the 18 days left (168) = 182 cs.
    const f = forecastPeriod({ today: '2026-03-13', elapsedOfToday: 0, periodLastDay: '2026-03-31', settledSoFarMicroCs: 0n, openHoldsMicroCs: 0n, history });
    expect(f.projectedMicroCs).toBe(182n * CS);
    // 50 cs left: Fri 14, Sat 14, Sun 14, Mon 28, Tue 42, Wed 56 → Wednesday 18 March.
    expect(runOutDay(m, '2026-03-13', 0, 50n * CS, '2026-03-31')).toBe('2026-03-18');
    expect(runOutDay(m, '2026-03-13', 0, 14n * CS, '2026-03-31')).toBe('2026-03-13');
    expect(runOutDay(m, '2026-03-13', 0, 14n * CS + 1n, '2026-03-31')).toBe('2026-03-16');
    expect(runOutDay(m, '2026-03-13', 0, 183n * CS, '2026-03-31')).toBeNull();
    expect(runOutDay(m, '2026-03-13', 0, 0n, '2026-03-31')).toBe('2026-03-13');
  });

  it('the band: ± 1.645 σ √days, σ of the residuals', () => {
    // 10 days alternating 8 and 12 (no seasonality under 14 days): mean 10, σ = √(40/9) cs.
    const history = series('2026-03-05', '2026-03-14', (d) => (Number(d.slice(8)) % 2 === 1 ? 8 : 12));
    const f = forecastPeriod({ today: '2026-03-15', elapsedOfToday: 1, periodLastDay: '2026-03-19', settledSoFarMicroCs: 0n, openHoldsMicroCs: 0n, history });
    expect(f.model.weekdayFactors).toEqual([1, 1, 1, 1, 1, 1, 1]);
    expect(f.model.sigma).toBeCloseTo(Math.sqrt(40 / 9) * 1e6, 3);
    // 4 days left × 10 = 40 cs; spread 1.645 × 2.108185 × 2 = 6.935929 cs.
    expect(f.projectedMicroCs).toBe(40n * CS);
    expect(f.lowMicroCs).toBe(33_064_071n);
    expect(f.highMicroCs).toBe(46_935_929n);
  });

  it('a new unit is measured from its first day of usage; the low end never goes below what is settled and held', () => {
    const m = burnModel('2026-03-15', series('2026-03-12', '2026-03-14', () => 30));
    expect([m.dailyBurn, m.historyDays]).toEqual([30e6, 3]);
    // Two days, 1 and 100 cs: σ ≈ 70 cs, larger than a day's burn.
    const f = forecastPeriod({
      today: '2026-03-15',
      elapsedOfToday: 1,
      periodLastDay: '2026-03-16',
      settledSoFarMicroCs: 7n * CS,
      openHoldsMicroCs: 0n,
      history: [{ day: '2026-03-13', settledMicroCs: 1n * CS }, { day: '2026-03-14', settledMicroCs: 100n * CS }],
    });
    expect(f.projectedMicroCs).toBe(7n * CS + 50_500_000n);
    expect(f.lowMicroCs).toBe(7n * CS);
    // Nothing used yet: nothing projected, no run-out.
    const none = burnModel('2026-03-15', []);
    expect(none.dailyBurn).toBe(0);
    expect(runOutDay(none, '2026-03-15', 0, 1n, '2026-12-31')).toBeNull();
  });

  it('a synthetic month with weekday seasonality and ±20 % noise: the truth lies in the band, within 5 % of the projection', () => {
    let seed = 12345;
    const noise = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return 0.8 + 0.4 * (seed / 2 ** 31);
    };
    const usage = new Map<string, number>();
    for (let d = '2026-02-01'; d <= '2026-03-31'; d = addDays(d, 1)) usage.set(d, ([0, 6].includes(weekday(d)) ? 30 : 100) * noise());
    const truth = [...usage].filter(([d]) => d.startsWith('2026-03')).reduce((s, [, v]) => s + v, 0);
    const sumMarch = (to: string) => [...usage].filter(([d]) => d.startsWith('2026-03') && d <= to).reduce((s, [, v]) => s + v, 0);
    const f = forecastPeriod({
      today: '2026-03-16',
      elapsedOfToday: 0,
      periodLastDay: '2026-03-31',
      settledSoFarMicroCs: cs(sumMarch('2026-03-15')),
      openHoldsMicroCs: 0n,
      history: [...usage].filter(([d]) => d < '2026-03-16').map(([day, v]) => ({ day, settledMicroCs: cs(v) })),
    });
    const t = cs(truth);
    expect(f.lowMicroCs <= t && t <= f.highMicroCs).toBe(true);
    expect(Math.abs(Number(f.projectedMicroCs - t)) / Number(t)).toBeLessThan(0.05);
    // Without the weekday factors the same history would be further off (the rest of March has 4 weekend days of 16).
    expect(f.model.weekdayFactors[0]!).toBeLessThan(0.5);
  });
});

describe('end to end through the database', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ workers: false });
  });
  afterAll(async () => h?.close());

  it('per unit and per account: usage, invoice and the credit package run-out from the daily rollups', async () => {
    const account = await createBillingAccount(h, {
      name: 'Forecast package',
      effectiveFrom: '2026-01',
      creditPackage: { totalCreditSeconds: '1000', pricePerCreditSecondUsd: '0.01', termStart: '2026-01-01', termEnd: '2026-06-30' },
    });
    const org = await organization(h);
    const dept = await createUnit(h, 'DEPARTMENT', 'Media', org, account);
    const team = await createUnit(h, 'TEAM', 'Video', dept);
    const project = await createUnit(h, 'PROJECT', 'Promo', team);
    const path = [org, dept, team, project].map(rawId);
    // 10 cs on each day from 15 February to 14 March (adjustments: settled usage on the day given).
    await h.services.db.transaction(async (tx) => {
      for (let d = '2026-02-15'; d <= '2026-03-14'; d = addDays(d, 1)) {
        await recordMovement(tx, 'ADJUSTMENT', { jobId: null, accountId: rawId(account), orgUnitId: path[3]!, path, period: d.slice(0, 7), day: d, amountMicroCs: 10n * CS });
      }
    });
    await expectCountersEqualLedger(h.services.db);
    const [acc] = await h.services.db.query.accountsTable.findMany({ where: (a, { eq }) => eq(a.id, rawId(account)) });
    const now = new Date('2026-03-15T12:00:00Z');
    const unit = await unitForecast(h.services.db, path[2]!, acc!, now);
    // March so far: 14 × 10 = 140 cs; then half of the 15th and 16 days at 10 cs: 305 cs.
    expect(unit.settledSoFarMicroCs).toBe(140n * CS);
    expect(unit.projectedMicroCs).toBe(305n * CS);
    expect(unit.model.historyDays).toBe(28);
    const whole = await accountForecast(h.services.db, path[0]!, acc!, now);
    expect(whole.projectedMicroCs).toBe(305n * CS);
    expect(whole.projectedInvoiceUsd).toBe('3.05');
    // Pool: 1000 − 140 (February) = 860 at March's start; 720 left after March's 140: 5 + 10 k ≥ 720 → k = 72 days
    // after 15 March → 26 May, before the term ends (30 June).
    expect(whole.poolHorizon).toBe('2026-06-30');
    expect(whole.poolRunsOutOn).toBe('2026-05-26');
  });

  it('through GraphQL: usageSeries, OrgUnit.forecast, AccountPeriod.forecast and Budget.exhaustsOn, read like usage', async () => {
    const account = await createBillingAccount(h, { name: 'Forecast usage', effectiveFrom: '2026-01', usageBased: TIER_5K_TERMS });
    const root = await organization(h);
    const dept = await createUnit(h, 'DEPARTMENT', 'Studio', root, account);
    const team = await createUnit(h, 'TEAM', 'Shorts', dept);
    const other = await createUnit(h, 'TEAM', 'Long form', dept);
    const project = await createUnit(h, 'PROJECT', 'Reels', team);
    const path = [root, dept, team, project].map(rawId);
    const now = new Date();
    const today = now.toISOString().slice(0, 10);
    // 10 cs on each of the 28 days before today (UTC), and 10 cs on two fixed March days.
    await h.services.db.transaction(async (tx) => {
      const days = [...Array.from({ length: 28 }, (_, i) => addDays(today, -28 + i)), '2026-03-10', '2026-03-12'];
      for (const d of days) {
        await recordMovement(tx, 'ADJUSTMENT', { jobId: null, accountId: rawId(account), orgUnitId: path[3]!, path, period: d.slice(0, 7), day: d, amountMicroCs: 10n * CS });
      }
    });
    const SERIES = `query($u: ID!, $from: String!, $to: String!) { usageSeries(orgUnitId: $u, from: $from, to: $to, granularity: DAY) { day settledCreditSeconds reservedCreditSeconds } }`;
    const series = await h.gql(SERIES, { u: team, from: '2026-03-09', to: '2026-03-13' });
    expect(series.errors).toBeUndefined();
    expect(series.data.usageSeries.map((p: any) => [p.day, Number(p.settledCreditSeconds)])).toEqual([
      ['2026-03-09', 0], ['2026-03-10', 10], ['2026-03-11', 0], ['2026-03-12', 10], ['2026-03-13', 0],
    ]);
    // Readable like usage: a member of the sibling team is refused the team's series; bad ranges are typed errors.
    const member = await h.services.tokens.issueOperatorToken({ name: 'sib', role: 'MEMBER', unitId: rawId(other) });
    const refused = await h.gql(SERIES, { u: team, from: '2026-03-09', to: '2026-03-13' }, member);
    expect(refused.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    for (const [from, to] of [['2026-03-13', '2026-03-09'], ['2026-02-30', '2026-03-01'], ['2025-01-01', '2026-03-01'], ['x', '2026-03-01']]) {
      const bad = await h.gql(SERIES, { u: team, from, to });
      expect(bad.errors?.[0]?.extensions?.code).toBe('VALIDATION_FAILED');
    }

    // A HARD monthly budget with 100 cs of headroom: at 10 cs a day it is refused 10 days from today (the rest of
    // today counts: 10 × (1 − elapsed) + 9 × 10 < 100 ≤ … + 10).
    const settledThisMonth = BigInt(Math.min(28, now.getUTCDate() - 1)) * 10n;
    await setBudget(h, { orgUnitId: team, accountId: account, window: 'MONTHLY', limitCreditSeconds: String(settledThisMonth + 100n), enforcement: 'HARD' });
    await setBudget(h, { orgUnitId: dept, accountId: account, window: 'MONTHLY', limitCreditSeconds: '1000000', enforcement: 'SOFT' });
    const lastOfMonth = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 0)).toISOString().slice(0, 10);
    const expected = addDays(today, 10) <= lastOfMonth ? addDays(today, 10) : null;
    const read = await h.gql(
      `query($t: ID!, $d: ID!, $a: ID!) {
        team: orgUnit(id: $t) { budgets { exhaustsOn } forecast { historyDays dailyBurnCreditSeconds projectedCreditSeconds lowCreditSeconds highCreditSeconds asOfDay } }
        dept: orgUnit(id: $d) { budgets { enforcement exhaustsOn } }
        account: node(id: $a) { ... on Account { period { forecast { usage { projectedCreditSeconds } projectedInvoiceUsd poolRunsOutOn poolHorizon } } } }
      }`,
      { t: team, d: dept, a: account },
    );
    expect(read.errors).toBeUndefined();
    expect(read.data.team.budgets[0].exhaustsOn).toBe(expected);
    expect(read.data.dept.budgets[0]).toEqual({ enforcement: 'SOFT', exhaustsOn: null });
    expect(read.data.team.forecast).toMatchObject({ historyDays: 28, asOfDay: today });
    expect(Number(read.data.team.forecast.dailyBurnCreditSeconds)).toBe(10);
    const f = read.data.account.period.forecast;
    expect(f.poolHorizon).toBe(lastOfMonth);
    // 600,000 cs included, 10 cs a day: it lasts the month; the invoice is the MMC.
    expect(f.poolRunsOutOn).toBeNull();
    expect(f.projectedInvoiceUsd).toBe('5000.00');
    // The member of the sibling team may not read the team's forecast (like its usage).
    const hidden = await h.gql(`query($t: ID!) { orgUnit(id: $t) { forecast { projectedCreditSeconds } } }`, { t: team }, member);
    expect(hidden.data?.orgUnit ?? null).toBeNull();
    await expectCountersEqualLedger(h.services.db);
  });
});

describe('usageSeries by product', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it("splits each day by product: the parts sum to the unit's day, and each product's total is its settled jobs'", async () => {
    const tree = await createTree(h);
    const path = [tree.orgId, tree.deptId, tree.teamId, tree.projectId].map(rawId);
    const submit = async (projectId: string, kind: string, request: Record<string, unknown>) =>
      (await mustMutate(h, SUBMIT, { input: { projectId, kind, request } }, 'submitJob')).job.id as string;
    const ids = await Promise.all([
      submit(tree.projectId, 'AVATAR_VIDEO', avatarRequest()),
      submit(tree.projectId, 'AVATAR_VIDEO', avatarRequest()),
      submit(tree.projectId, 'VIDEO_AGENT', { prompt: 'A short product intro' }),
      submit(tree.otherProjectId, 'VIDEO_AGENT', { prompt: 'Another intro' }),
    ]);
    const JOBS = `query($p: ID!) { jobs(first: 50, filter: { projectId: $p }) { edges { node { id status product settledAt actualCreditSeconds } } } }`;
    const settled = async (projectId: string) => (await h.gql(JOBS, { p: projectId })).data.jobs.edges.map((e: any) => e.node);
    await waitFor(async () => [...(await settled(tree.projectId)), ...(await settled(tree.otherProjectId))].filter((j: any) => ids.includes(j.id) && j.actualCreditSeconds).length === 4, 20_000);
    const account = await h.gql(`query($a: ID!) { node(id: $a) { ... on Account { timezone } } }`, { a: tree.accountId });
    const today = dayOf(new Date(), account.data.node.timezone);
    // Yesterday's adjustment in the project: its own product, ADJUSTMENT.
    await h.services.db.transaction((tx) =>
      recordMovement(tx, 'ADJUSTMENT', { jobId: null, accountId: rawId(tree.accountId), orgUnitId: path[3]!, path, period: addDays(today, -1).slice(0, 7), day: addDays(today, -1), amountMicroCs: 7n * CS }),
    );

    const SERIES = `query($u: ID!, $a: ID!, $from: String!, $to: String!) {
      usageSeries(orgUnitId: $u, accountId: $a, from: $from, to: $to) { day settledCreditSeconds reservedCreditSeconds byProduct { product settledCreditSeconds reservedCreditSeconds } }
    }`;
    const read = async (unit: string) => {
      const res = await h.gql(SERIES, { u: unit, a: tree.accountId, from: addDays(today, -2), to: today });
      expect(res.errors).toBeUndefined();
      return res.data.usageSeries as { day: string; settledCreditSeconds: string; reservedCreditSeconds: string; byProduct: { product: string; settledCreditSeconds: string; reservedCreditSeconds: string }[] }[];
    };
    const micro = (v: string) => BigInt(Math.round(Number(v) * 1e6));
    const sumOf = (values: string[]) => values.reduce((s, v) => s + micro(v), 0n);
    for (const unit of [tree.projectId, tree.teamId, tree.deptId]) {
      const series = await read(unit);
      expect(series.map((p) => p.day)).toEqual([addDays(today, -2), addDays(today, -1), today]);
      for (const point of series) {
        expect(sumOf(point.byProduct.map((p) => p.settledCreditSeconds))).toBe(micro(point.settledCreditSeconds));
        expect(sumOf(point.byProduct.map((p) => p.reservedCreditSeconds))).toBe(micro(point.reservedCreditSeconds));
        expect(point.byProduct.map((p) => p.product)).toEqual([...point.byProduct.map((p) => p.product)].sort());
      }
    }
    // The project: the jobs' products today and the adjustment yesterday, each equal to what its jobs settled.
    const project = await read(tree.projectId);
    const jobs = (await settled(tree.projectId)).filter((j: any) => ids.includes(j.id));
    const productsToday = Object.fromEntries(project[2]!.byProduct.map((p) => [p.product, micro(p.settledCreditSeconds)]));
    const expected: Record<string, bigint> = {};
    for (const j of jobs) expected[j.product] = (expected[j.product] ?? 0n) + micro(j.actualCreditSeconds);
    expect(Object.keys(expected).length).toBe(2);
    expect(productsToday).toEqual(expected);
    expect(project[1]!.byProduct).toEqual([{ product: 'ADJUSTMENT', settledCreditSeconds: '7', reservedCreditSeconds: '0' }]);
    // The department adds the other team's job; its days sum to its settled usage of the month.
    const dept = await read(tree.deptId);
    const unitUsage = await h.gql(`query($u: ID!) { orgUnit(id: $u) { usage { settledCreditSeconds } } }`, { u: tree.deptId });
    const inPeriod = dept.filter((p) => p.day.slice(0, 7) === today.slice(0, 7));
    expect(sumOf(inPeriod.flatMap((p) => p.byProduct.map((b) => b.settledCreditSeconds)))).toBe(micro(unitUsage.data.orgUnit.usage.settledCreditSeconds));
    await expectCountersEqualLedger(h.services.db);
  });
});

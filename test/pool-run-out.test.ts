// pool.run_out_forecast (docs/forecasts.md, "Run-out events"): a burn that empties a credit package before its term
// ends is told once, with the projected day; told again only when that day moves by RUN_OUT_MOVE_DAYS or more;
// several processes checking at once write one event (the outbox's unique key). Fixed clocks; the usage is settled
// ledger movements, which write the daily rollups the forecast reads.
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addDays } from '../src/billing/forecast.js';
import { accountForecast } from '../src/billing/usage-forecast.js';
import { queryRows } from '../src/db/client.js';
import { recordMovement } from '../src/ledger/ledger.js';
import { checkPoolRunOuts } from '../src/billing/pool-run-out.js';
import { startHarness, type Harness } from './support/harness.js';
import { createBillingAccount, organization, rawId, TIER_5K_TERMS } from './support/billing.js';
import { createUnit } from './support/fixtures.js';
import { expectCountersEqualLedger } from './support/invariants.js';

const CS = 1_000_000n;
let h: Harness;
let account: string;
let path: string[];

/** `creditSeconds` settled on each day from `from` to `to` inclusive. */
async function burn(from: string, to: string, creditSeconds: bigint) {
  await h.services.db.transaction(async (tx) => {
    for (let d = from; d <= to; d = addDays(d, 1)) {
      await recordMovement(tx, 'ADJUSTMENT', { jobId: null, accountId: rawId(account), orgUnitId: path[3]!, path, period: d.slice(0, 7), day: d, amountMicroCs: creditSeconds * CS });
    }
  });
}

async function runOutEvents() {
  return queryRows<{ org_unit_id: string; dedupe_key: string; data: Record<string, any> }>(
    h.services.db,
    sql`select org_unit_id, dedupe_key, payload->'data' as data from outbox_events
        where topic = 'money_event' and kind = 'pool.run_out_forecast' order by (payload->'data'->>'sequence')::int`,
  );
}

/** Three processes' passes at once (each its own connections of the pool). */
const passes = (now: Date) => Promise.all([0, 1, 2].map(() => checkPoolRunOuts(h.services.db, now)));

beforeAll(async () => {
  h = await startHarness({ workers: false });
  account = await createBillingAccount(h, {
    name: 'Run-out package',
    effectiveFrom: '2026-01',
    creditPackage: { totalCreditSeconds: '1000', pricePerCreditSecondUsd: '0.01', termStart: '2026-01-01', termEnd: '2026-06-30' },
  });
  // A usage-based account with a flat small burn: its period's pool lasts, nothing is told about it.
  const lasting = await createBillingAccount(h, { name: 'Lasting pool', effectiveFrom: '2026-01', usageBased: TIER_5K_TERMS });
  const org = await organization(h);
  const dept = await createUnit(h, 'DEPARTMENT', 'Media', org, account);
  const team = await createUnit(h, 'TEAM', 'Video', dept);
  const project = await createUnit(h, 'PROJECT', 'Promo', team);
  path = [org, dept, team, project].map(rawId);
  const other = await createUnit(h, 'DEPARTMENT', 'Lasting', org, lasting);
  const otherProject = await createUnit(h, 'PROJECT', 'Small', other);
  await h.services.db.transaction(async (tx) => {
    for (let d = '2026-02-15'; d <= '2026-03-14'; d = addDays(d, 1)) {
      const otherPath = [org, other, otherProject].map(rawId);
      await recordMovement(tx, 'ADJUSTMENT', { jobId: null, accountId: rawId(lasting), orgUnitId: otherPath[2]!, path: otherPath, period: d.slice(0, 7), day: d, amountMicroCs: 10n * CS });
    }
  });
  // 10 cs a day from 15 February to 14 March.
  await burn('2026-02-15', '2026-03-14', 10n);
  await expectCountersEqualLedger(h.services.db);
}, 60_000);
afterAll(async () => h?.close());

describe('pool.run_out_forecast', () => {
  it('a burn that empties a credit package before its term emits the event once, with the projected day', async () => {
    const now = new Date('2026-03-15T12:00:00Z');
    await passes(now);
    await passes(now);
    const events = await runOutEvents();
    // 1000 − 140 (February) − 140 (March so far) = 720 left; half of today's 10 and then 10 a day: 26 May.
    expect(events).toHaveLength(1);
    expect(events[0]!.org_unit_id).toBe(path[0]);
    expect(events[0]!.data).toMatchObject({
      accountId: rawId(account),
      billingModel: 'CREDIT_PACKAGE',
      window: '2026-01..2026-06',
      sequence: 1,
      runsOutOn: '2026-05-26',
      previousRunsOutOn: null,
      horizon: '2026-06-30',
      asOfDay: '2026-03-15',
      includedMicroCs: (860n * CS).toString(),
      settledMicroCs: (140n * CS).toString(),
      dailyBurnMicroCs: (10n * CS).toString(),
    });
    // The same day the forecast gives (AccountPeriod.forecast.poolRunsOutOn).
    const [acc] = await h.services.db.query.accountsTable.findMany({ where: (a, { eq }) => eq(a.id, rawId(account)) });
    expect((await accountForecast(h.services.db, path[0]!, acc!, now)).poolRunsOutOn).toBe('2026-05-26');
  });

  it('a projected day that moves by less than two days is not told again; a burst that brings it weeks closer is', async () => {
    // The next day at the same burn: still 26 May.
    await burn('2026-03-15', '2026-03-15', 10n);
    await passes(new Date('2026-03-16T12:00:00Z'));
    expect(await runOutEvents()).toHaveLength(1);
    // A burst of 310 cs on Monday the 16th: burn (27 × 10 + 310) / 28 ≈ 20.7 a day, weighted by weekday (the burst
    // makes Mondays heavier), 400 cs left → early April, as the forecast itself says.
    await burn('2026-03-16', '2026-03-16', 310n);
    const later = new Date('2026-03-17T12:00:00Z');
    await passes(later);
    const events = await runOutEvents();
    const [acc] = await h.services.db.query.accountsTable.findMany({ where: (a, { eq }) => eq(a.id, rawId(account)) });
    const projected = (await accountForecast(h.services.db, path[0]!, acc!, later)).poolRunsOutOn;
    expect(projected! >= '2026-04-01' && projected! < '2026-04-15').toBe(true);
    expect(events.map((e) => [e.data.sequence, e.data.runsOutOn, e.data.previousRunsOutOn])).toEqual([
      [1, '2026-05-26', null],
      [2, projected, '2026-05-26'],
    ]);
    // Nothing about the usage-based account whose pool lasts.
    expect(events.every((e) => e.data.accountId === rawId(account))).toBe(true);
  });
});

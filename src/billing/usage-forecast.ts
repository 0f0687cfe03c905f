// Forecasts and daily series read from the rollups: usage_daily (history, a few dozen rows per unit and account)
// and usage_rollups (the period so far, open holds). The method is src/billing/forecast.ts.
import { and, between, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { queryRows, toBigInt } from '../db/client.js';
import { usageDailyTable } from '../db/schema.js';
import { dayOf, elapsedOfDay, lastDayOf, periodOf } from '../primitives/period.js';
import { termPeriods, termsFor, type AccountRow } from '../accounts/accounts.js';
import { addDays, forecastPeriod, HISTORY_DAYS, runOutDay, type BurnModel, type Forecast } from './forecast.js';
import { accountPeriod, invoiceUsdOf } from './account-period.js';

export interface DailyUsage {
  day: string;
  reservedMicroCs: bigint;
  settledMicroCs: bigint;
}

/** Usage of a unit's subtree per day (inclusive range), over the given accounts (null: all). Days without usage are absent. */
export async function dailyUsage(db: Db, unitId: string, accountIds: readonly string[] | null, from: string, to: string): Promise<DailyUsage[]> {
  return usageDailyRows(db, unitId, accountIds, from, to, false);
}

export interface ProductDailyUsage extends DailyUsage {
  /** The price-book product of the jobs; ADJUSTMENT for usage adjustments. */
  product: string;
}

/** dailyUsage split by product: one row per day and product with usage (rows that netted to zero are left out). */
export async function dailyUsageByProduct(db: Db, unitId: string, accountIds: readonly string[] | null, from: string, to: string): Promise<ProductDailyUsage[]> {
  const rows = await usageDailyRows(db, unitId, accountIds, from, to, true);
  return rows.filter((r) => r.reservedMicroCs !== 0n || r.settledMicroCs !== 0n);
}

/** The subtree's `usage_daily` rollups summed per day, or per day and product. */
async function usageDailyRows(db: Db, unitId: string, accountIds: readonly string[] | null, from: string, to: string, byProduct: false): Promise<DailyUsage[]>;
async function usageDailyRows(db: Db, unitId: string, accountIds: readonly string[] | null, from: string, to: string, byProduct: true): Promise<ProductDailyUsage[]>;
async function usageDailyRows(db: Db, unitId: string, accountIds: readonly string[] | null, from: string, to: string, byProduct: boolean): Promise<(DailyUsage & { product?: string })[]> {
  if (accountIds && accountIds.length === 0) return [];
  const rows = await db
    .select({
      day: usageDailyTable.day,
      product: byProduct ? usageDailyTable.product : sql<string>`''`,
      reserved: sql<string>`sum(${usageDailyTable.reservedMicroCs})::text`,
      settled: sql<string>`sum(${usageDailyTable.settledMicroCs})::text`,
    })
    .from(usageDailyTable)
    .where(
      and(
        eq(usageDailyTable.orgUnitId, unitId),
        accountIds ? inArray(usageDailyTable.accountId, [...accountIds]) : undefined,
        between(usageDailyTable.day, from, to),
      ),
    )
    .groupBy(...(byProduct ? [usageDailyTable.day, usageDailyTable.product] : [usageDailyTable.day]))
    .orderBy(...(byProduct ? [usageDailyTable.day, usageDailyTable.product] : [usageDailyTable.day]));
  return rows.map((r) => ({
    day: r.day,
    ...(byProduct ? { product: r.product } : {}),
    reservedMicroCs: toBigInt(r.reserved),
    settledMicroCs: toBigInt(r.settled),
  }));
}

export interface UsageForecast extends Forecast {
  accountId: string;
  period: string;
  today: string;
  elapsedOfToday: number;
  periodLastDay: string;
  settledSoFarMicroCs: bigint;
  openHoldsMicroCs: bigint;
}

/** The current period's forecast of a unit's subtree on one account (at the root: the account's). */
export async function unitForecast(db: Db, unitId: string, account: AccountRow, now: Date): Promise<UsageForecast> {
  const tz = account.timezone;
  const today = dayOf(now, tz);
  const period = periodOf(now, tz);
  const [totals] = await queryRows<{ settled: string; reserved: string }>(
    db,
    sql`select coalesce(sum(settled_micro_cs) filter (where period = ${period}), 0)::text as settled,
               coalesce(sum(reserved_micro_cs), 0)::text as reserved
        from usage_rollups where org_unit_id = ${unitId} and account_id = ${account.id}`,
  );
  const history = await dailyUsage(db, unitId, [account.id], addDays(today, -HISTORY_DAYS), addDays(today, -1));
  const input = {
    today,
    elapsedOfToday: elapsedOfDay(now, tz),
    periodLastDay: lastDayOf(period),
    settledSoFarMicroCs: toBigInt(totals?.settled),
    openHoldsMicroCs: toBigInt(totals?.reserved),
    history,
  };
  return { ...forecastPeriod(input), ...input, accountId: account.id, period };
}

export interface AccountForecast extends UsageForecast {
  projectedInvoiceUsd: string;
  lowInvoiceUsd: string;
  highInvoiceUsd: string;
  /** The day the included pool (a credit package: what is left of it) runs out at the current burn; null: not by its horizon. */
  poolRunsOutOn: string | null;
  /** Until when the pool lasts: the period's last day (usage-based), the term's last day (credit package). */
  poolHorizon: string;
  /** The pool at the period's start: the period's included usage (usage-based), what was left of the term's (credit package). */
  includedMicroCs: bigint;
}

/** The current period's forecast of an account (its root unit's), with the invoice and the pool's run-out day. */
export async function accountForecast(db: Db, rootId: string, account: AccountRow, now: Date): Promise<AccountForecast> {
  const f = await unitForecast(db, rootId, account, now);
  const terms = await termsFor(db, account.id, f.period);
  const summary = await accountPeriod(db, account, f.period);
  const invoice = (micro: bigint) => invoiceUsdOf(account, terms, micro, summary.includedMicroCs);
  const term = termPeriods(terms);
  const poolHorizon = account.billingModel === 'CREDIT_PACKAGE' && term ? lastDayOf(term.to) : f.periodLastDay;
  const left = summary.includedMicroCs - f.settledSoFarMicroCs - f.openHoldsMicroCs;
  return {
    ...f,
    projectedInvoiceUsd: invoice(f.projectedMicroCs),
    lowInvoiceUsd: invoice(f.lowMicroCs),
    highInvoiceUsd: invoice(f.highMicroCs),
    poolRunsOutOn: summary.includedMicroCs > 0n ? runOutDay(f.model, f.today, f.elapsedOfToday, left, poolHorizon) : null,
    poolHorizon,
    includedMicroCs: summary.includedMicroCs,
  };
}

/** The day a budget's headroom (`available`) is used up at the burn of `model`, up to `lastDay`. */
export function exhaustionDay(model: BurnModel, now: Date, timeZone: string, available: bigint, lastDay: string): string | null {
  return runOutDay(model, dayOf(now, timeZone), elapsedOfDay(now, timeZone), available, lastDay);
}

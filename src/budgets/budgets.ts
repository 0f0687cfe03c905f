// Budgets: caps on a unit's use of one account (or all accounts) over a window. Usage is keyed by period in the
// rollups and by day in the daily rollups, so a new window starts from zero without any reset job.
import { and, eq, getTableColumns, inArray, sql, type SQL } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { namedStatement, toBigInt } from '../db/client.js';
import { rowFromJson } from '../db/json-rows.js';
import {
  accountsTable,
  budgetsTable,
  orgUnitsTable,
  type BudgetWindow,
  type Enforcement,
} from '../db/schema.js';
import { NotFoundError, ValidationError } from '../errors.js';
import { MAX_INPUT_MICRO_CS } from '../validation.js';
import { nextPeriod, periodOf } from '../primitives/period.js';
import { termsFor } from '../accounts/accounts.js';
import { budgetRateUsdPerCs } from '../billing/terms.js';
import { MICRO_PER_CS, parseUsd, secondsToMicro } from '../primitives/money.js';
import * as Q from '../primitives/rational.js';

export type BudgetRow = typeof budgetsTable.$inferSelect;

/**
 * A budget's usage in its current window. `reserved` is every open hold, whatever window it was admitted in (a hold
 * from yesterday or last month settles into the current window, so a new one must not forget it); `settled` what
 * settled in the window; `carried` what a MONTHLY budget's rollover adds to its limit this month.
 */
export interface BudgetUsage {
  reservedMicroCs: bigint;
  settledMicroCs: bigint;
  carriedMicroCs: bigint;
  /**
   * The window's bounds, inclusive (gateway_budget_bounds): days `YYYY-MM-DD` for DAILY, WEEKLY and CUSTOM, periods
   * `YYYY-MM` for the others; in the budget's account's time zone, UTC for a budget over all accounts (whose usage
   * is counted in each account's own window).
   */
  windowFrom: string;
  windowTo: string;
  /** What approved temporary raises (budget_grants whose `until` has not passed) add to the limit now. */
  grantedMicroCs: bigint;
}

/**
 * The limit in force, as the admission applies it: the budget's own, plus a MONTHLY budget's rollover, plus the
 * temporary raises in force. The rollover is carried from the standing limit only: a grant never rolls over.
 */
export function effectiveLimit(budget: BudgetRow, usage: BudgetUsage): bigint {
  return budget.limitMicroCs + usage.carriedMicroCs + usage.grantedMicroCs;
}

/** What the units under a budget could still spend (negative after an overrun): effective limit − reserved − settled. */
export function availableOf(budget: BudgetRow, usage: BudgetUsage): bigint {
  return effectiveLimit(budget, usage) - usage.reservedMicroCs - usage.settledMicroCs;
}

export interface SetBudgetInput {
  orgUnitId: string;
  accountId: string | null;
  window: BudgetWindow;
  /** The limit in credit-seconds, or (exclusive) in USD: see usdLimitToMicroCs. */
  limitCreditSeconds?: string | null;
  limitUsd?: string | null;
  enforcement: Enforcement;
  allowOverage: boolean;
  alertThresholds: number[] | null;
  /** CUSTOM only: the first day (inclusive) and the end day (exclusive), `YYYY-MM-DD`, account-local. */
  windowFrom?: string | null;
  windowTo?: string | null;
  /** MONTHLY only: the most of last month's unused limit carried into this month, like the limit (exclusive). */
  rolloverCapCreditSeconds?: string | null;
  rolloverCapUsd?: string | null;
}

const DAY_PATTERN = /^(\d{4})-(\d{2})-(\d{2})$/;

function parseDay(field: string, value: string): string {
  const m = DAY_PATTERN.exec(value.trim());
  const date = m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) : null;
  if (!m || !date || Number(m[1]) < 1000 || date.toISOString().slice(0, 10) !== m[0]) {
    throw new ValidationError(field, `${field} must be a calendar day YYYY-MM-DD`);
  }
  return m[0];
}

/**
 * A budget's CUSTOM dates (unit and group budgets alike): both required for CUSTOM, `YYYY-MM-DD` account-local days,
 * `windowTo` (exclusive) after `windowFrom`; refused for any other window.
 */
export function customWindowOf(
  window: BudgetWindow,
  from: string | null | undefined,
  to: string | null | undefined,
): { windowFrom: string | null; windowTo: string | null } {
  const custom = window === 'CUSTOM';
  if (custom && (from == null || to == null)) {
    throw new ValidationError(from == null ? 'windowFrom' : 'windowTo', 'a CUSTOM budget needs windowFrom and windowTo');
  }
  if (!custom && (from != null || to != null)) {
    throw new ValidationError(from != null ? 'windowFrom' : 'windowTo', 'windowFrom and windowTo are for CUSTOM budgets only');
  }
  if (!custom) return { windowFrom: null, windowTo: null };
  const windowFrom = parseDay('windowFrom', from!);
  const windowTo = parseDay('windowTo', to!);
  if (windowTo <= windowFrom) throw new ValidationError('windowTo', 'windowTo (exclusive) must be after windowFrom');
  return { windowFrom, windowTo };
}

/** A budget's alert thresholds (default 50, 80, 100 %): up to 10 integer percentages from 1 to 1000, sorted, once each. */
export function alertThresholdsOf(thresholds: readonly number[] | null | undefined): number[] {
  const list = thresholds ?? [50, 80, 100];
  if (list.length > 10 || list.some((t) => !Number.isInteger(t) || t < 1 || t > 1000)) {
    throw new ValidationError('alertThresholds', 'alertThresholds are up to 10 integer percentages from 1 to 1000');
  }
  return [...new Set(list)].sort((a, b) => a - b);
}

/** An amount given in credit-seconds or (exclusive) in USD, as a budget's limit is; null when neither is given. */
async function amountOf(
  tx: Db,
  accountId: string | null,
  fields: { cs: string; usd: string },
  cs: string | null | undefined,
  usd: string | null | undefined,
  now: Date,
): Promise<bigint | null> {
  const hasCs = cs !== undefined && cs !== null;
  const hasUsd = usd !== undefined && usd !== null;
  if (hasCs && hasUsd) throw new ValidationError(fields.cs, `give at most one of ${fields.cs} and ${fields.usd}`);
  if (!hasCs && !hasUsd) return null;
  let amount: bigint;
  if (hasUsd) amount = await usdLimitToMicroCs(tx, accountId, usd, now, fields.usd);
  else {
    try {
      if (!/^\d{1,15}(\.\d{1,6})?$/.test(cs!.trim())) throw new Error('format');
      amount = secondsToMicro(cs!);
    } catch {
      throw new ValidationError(fields.cs, `${fields.cs} must be a non-negative decimal with at most 6 decimals`);
    }
  }
  if (amount > MAX_INPUT_MICRO_CS) {
    throw new ValidationError(hasUsd ? fields.usd : fields.cs, `${hasUsd ? fields.usd : fields.cs} must be at most ${MAX_INPUT_MICRO_CS / MICRO_PER_CS} credit-seconds`);
  }
  return amount;
}

/**
 * A USD limit in micro-credit-seconds: USD ÷ the account's budget rate (its overage rate, or a credit package's
 * price per credit-second; see budgetRateUsdPerCs), rounded down, so that the cap never allows more than the USD.
 * The rate is the one of the terms in force when the budget is set. A budget over all accounts has no single
 * rate and cannot be given in USD.
 */
export async function usdLimitToMicroCs(tx: Db, accountId: string | null, limitUsd: string, now: Date, field = 'limitUsd'): Promise<bigint> {
  let usd;
  try {
    usd = parseUsd(limitUsd.trim());
  } catch {
    throw new ValidationError(field, `${field} must be a non-negative decimal amount of US dollars`);
  }
  if (!accountId) throw new ValidationError(field, 'a budget over all accounts has no single price: give credit-seconds, or one budget per account in USD');
  const [account] = await tx.select().from(accountsTable).where(eq(accountsTable.id, accountId));
  if (!account) throw new NotFoundError('Account', accountId);
  const rate = budgetRateUsdPerCs(account, await termsFor(tx, account.id, periodOf(now, account.timezone)));
  if (!rate) throw new ValidationError(field, 'the account has no positive overage rate or price in force to convert USD with');
  return Q.floor(Q.div(Q.mul(usd, Q.fromBigInt(MICRO_PER_CS)), rate));
}

export async function setBudget(tx: Db, input: SetBudgetInput, now = new Date()): Promise<BudgetRow> {
  const [unit] = await tx.select({ id: orgUnitsTable.id }).from(orgUnitsTable).where(eq(orgUnitsTable.id, input.orgUnitId));
  if (!unit) throw new NotFoundError('OrgUnit', input.orgUnitId);
  if (input.accountId) {
    const [account] = await tx.select({ id: accountsTable.id }).from(accountsTable).where(eq(accountsTable.id, input.accountId));
    if (!account) throw new NotFoundError('Account', input.accountId);
  }
  const limit = await amountOf(tx, input.accountId, { cs: 'limitCreditSeconds', usd: 'limitUsd' }, input.limitCreditSeconds, input.limitUsd, now);
  if (limit === null) throw new ValidationError('limitCreditSeconds', 'give exactly one of limitCreditSeconds and limitUsd');
  const limitUsd = input.limitUsd != null ? input.limitUsd.trim() : null;
  const { windowFrom, windowTo } = customWindowOf(input.window, input.windowFrom, input.windowTo);
  const rolloverCap = await amountOf(
    tx,
    input.accountId,
    { cs: 'rolloverCapCreditSeconds', usd: 'rolloverCapUsd' },
    input.rolloverCapCreditSeconds,
    input.rolloverCapUsd,
    now,
  );
  if (rolloverCap !== null && input.window !== 'MONTHLY') {
    throw new ValidationError(input.rolloverCapCreditSeconds != null ? 'rolloverCapCreditSeconds' : 'rolloverCapUsd', 'only MONTHLY budgets roll over');
  }
  // The month a rollover starts: unused limit carries from the first whole month with the option on, the next one
  // (in the account's time zone; UTC for a budget over all accounts). A budget that had it keeps its start.
  let rolloverFrom: string | null = null;
  if (rolloverCap !== null) {
    const [account] = input.accountId
      ? await tx.select({ timezone: accountsTable.timezone }).from(accountsTable).where(eq(accountsTable.id, input.accountId))
      : [{ timezone: 'UTC' }];
    rolloverFrom = nextPeriod(periodOf(now, account!.timezone));
  }
  const values = {
    orgUnitId: input.orgUnitId,
    accountId: input.accountId,
    window: input.window,
    limitMicroCs: limit,
    limitUsd,
    enforcement: input.enforcement,
    allowOverage: input.allowOverage,
    alertThresholds: alertThresholdsOf(input.alertThresholds),
    windowFrom,
    windowTo,
    rolloverCapMicroCs: rolloverCap,
    rolloverFrom,
    updatedAt: new Date(),
  };
  const [row] = await tx
    .insert(budgetsTable)
    .values(values)
    .onConflictDoUpdate({
      target: [budgetsTable.orgUnitId, budgetsTable.accountId, budgetsTable.window],
      set: {
        limitMicroCs: values.limitMicroCs,
        limitUsd: values.limitUsd,
        enforcement: values.enforcement,
        allowOverage: values.allowOverage,
        alertThresholds: values.alertThresholds,
        windowFrom: values.windowFrom,
        windowTo: values.windowTo,
        rolloverCapMicroCs: values.rolloverCapMicroCs,
        rolloverFrom: rolloverCap === null ? null : sql`coalesce(${budgetsTable.rolloverFrom}, excluded.rollover_from)`,
        updatedAt: values.updatedAt,
      },
    })
    .returning();
  return row!;
}

/** Budgets on a path that apply to jobs of one account. */
export async function budgetsOnPath(db: Db, path: readonly string[], accountId: string): Promise<BudgetRow[]> {
  return db
    .select()
    .from(budgetsTable)
    .where(
      and(
        inArray(budgetsTable.orgUnitId, [...path]),
        sql`(${budgetsTable.accountId} is null or ${budgetsTable.accountId} = ${accountId})`,
      ),
    )
    .orderBy(budgetsTable.id);
}

/**
 * "Now" for budget windows, computed in the statement that reads them (gateway_now_in, as gateway_budgets_with_usage
 * computes it): `cur`, every account's {period, day} (as the admission's `p.accounts`), `utc`, UTC's {period, day},
 * and `shownFor(accountId)`, the window shown for a budget: its account's, UTC's for a budget over all accounts.
 */
export function accountsNow(now: Date): { cur: SQL; utc: SQL; shownFor: (accountId: SQL) => SQL } {
  const at = now.toISOString();
  const cur = sql`(select coalesce(jsonb_object_agg(a.id, gateway_now_in(${at}::timestamptz, a.timezone)), '{}'::jsonb) from accounts a)`;
  const utc = sql`gateway_now_in(${at}::timestamptz, 'UTC')`;
  return { cur, utc, shownFor: (accountId) => sql`coalesce(${cur} -> ${accountId}::text, ${utc})` };
}

type BudgetWithUsageRow = Record<string, unknown> & { u_reserved: string; u_settled: string; u_carried: string; w_from: string; w_to: string; granted: string };

/**
 * budgetsWithUsage's statement, $1 the instant, $2 the ids: a call of gateway_budgets_with_usage (migration
 * budget_reads_generic_plans), whose statements PostgreSQL plans once per session. Planning the inlined window and
 * usage functions cost ~1.5 ms, and for a few units (an app polling its balance) PostgreSQL chose a custom plan at
 * every execution; a generic plan answers in a fraction of that. By hand rather than through the query builder: a page
 * of 200 units has 400 budgets, and mapping them through drizzle's select (and their counters through JSON) cost more
 * than the rest of the read; the counters travel as text (bigint), mapped with the table's own column definitions.
 * The accounts' "now" (each account's period and day, UTC's for a budget over all accounts) is worked out in the
 * function, with PostgreSQL's time-zone data. The budget's columns are named, never `(r.budget).*`: a prepared
 * statement's result columns are fixed on each connection, so a column added to budgets by a migration (a rolling
 * deploy: this process still running) would make every connection that prepared it fail ("cached plan must not
 * change result type") until it is recycled; the function returns the table's row type, which follows the table.
 */
const BUDGET_COLUMNS = Object.values(getTableColumns(budgetsTable)).map((c) => `(r.budget)."${c.name}"`).join(', ');
function budgetsWithUsageStatement(name: string, byUnit: boolean) {
  return namedStatement<BudgetWithUsageRow>(
    name,
    `select ${BUDGET_COLUMNS}, r.reserved::text as u_reserved, r.settled::text as u_settled, r.carried::text as u_carried,
            r.window_from as w_from, r.window_to as w_to, r.granted::text as granted
       from gateway_budgets_with_usage($1::timestamptz, $2::uuid[], ${byUnit}) r
      order by (r.budget).id`,
  );
}
const BUDGETS_WITH_USAGE_BY_UNIT = budgetsWithUsageStatement('budgets_with_usage_by_unit', true);
const BUDGETS_WITH_USAGE_BY_ID = budgetsWithUsageStatement('budgets_with_usage_by_id', false);

/**
 * Budgets with their usage, in one statement (for reads: the API's budget lists and balances, a project's headroom,
 * a transfer's check), computed as the admission computes it: gateway_budget_usage_rows and gateway_budget_bounds_rows
 * are the `LANGUAGE sql` twins of the admission's gateway_budget_usage and gateway_budget_bounds, which PostgreSQL
 * inlines into the function's statement (no PL/pgSQL call per budget: a page of 400 budgets went from ~28 ms to a few
 * ms in PostgreSQL), and the grants are gateway_budget_granted's sum. The accounts' current periods and days are worked
 * out in the same call, with PostgreSQL's time-zone data: a read must not cost a statement more; the admission, which
 * enforces, uses the gateway's (they may disagree near some boundaries).
 */
export async function budgetsWithUsage(
  db: Db,
  which: { unitIds: readonly string[] } | { budgetIds: readonly string[] },
  now: Date,
): Promise<{ budget: BudgetRow; usage: BudgetUsage }[]> {
  const ids = 'unitIds' in which ? which.unitIds : which.budgetIds;
  if (ids.length === 0) return [];
  const rows = await (('unitIds' in which) ? BUDGETS_WITH_USAGE_BY_UNIT : BUDGETS_WITH_USAGE_BY_ID).rows(db, [now.toISOString(), [...ids]]);
  return rows.map((r) => ({
    budget: rowFromJson(budgetsTable, r),
    usage: {
      reservedMicroCs: toBigInt(r.u_reserved),
      settledMicroCs: toBigInt(r.u_settled),
      carriedMicroCs: toBigInt(r.u_carried),
      windowFrom: r.w_from,
      windowTo: r.w_to,
      grantedMicroCs: toBigInt(r.granted),
    },
  }));
}

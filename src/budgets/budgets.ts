// Budgets: caps on a unit's use of one account (or all accounts) over a window. Usage is keyed by
// period in the rollups, so a new month starts from zero without any reset job.
import { and, eq, inArray, sql, type SQL } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { queryRows, toBigInt } from '../db/client.js';
import {
  accountsTable,
  budgetsTable,
  orgUnitsTable,
  type BudgetWindow,
  type Enforcement,
} from '../db/schema.js';
import { NotFoundError, ValidationError } from '../errors.js';
import { MAX_INPUT_MICRO_CS } from '../validation.js';
import { periodOf } from '../primitives/period.js';
import { termPeriods, termsFor, type AccountRow, type AccountTermsRow } from '../accounts/accounts.js';
import { budgetRateUsdPerCs } from '../billing/terms.js';
import { MICRO_PER_CS, parseUsd, secondsToMicro } from '../primitives/money.js';
import * as Q from '../primitives/rational.js';

export type BudgetRow = typeof budgetsTable.$inferSelect;

/**
 * The periods whose settled usage a budget counts: a fixed inclusive range (YYYY-MM), or `currentMonth`, the
 * current period of each account in its own time zone (usage is booked in the account's periods, so an
 * all-accounts monthly budget adds up every account's own current month).
 */
export type WindowBounds = { from: string; to: string } | { currentMonth: true };

export interface BudgetUsage {
  reservedMicroCs: bigint;
  settledMicroCs: bigint;
}

const LIFETIME: WindowBounds = { from: '0000-01', to: '9999-12' };
const CURRENT_MONTH: WindowBounds = { currentMonth: true };

/** The window a budget covers: MONTHLY the current month; CONTRACT_TERM the account's term (else the lifetime). */
export function windowOf(budget: Pick<BudgetRow, 'window'>, account: AccountRow | null, terms: AccountTermsRow | null): WindowBounds {
  if (budget.window === 'LIFETIME') return LIFETIME;
  if (budget.window === 'MONTHLY') return CURRENT_MONTH;
  return (account && termPeriods(terms)) || LIFETIME;
}

/**
 * Reserved and settled usage of each budget, in one statement for any number of budgets (plus one read of the
 * accounts' time zones). Settled counts the window's periods; reserved counts every open hold, whatever period
 * it was admitted in: a hold from last month will settle into this one, so a new month must not forget it.
 */
export async function usageOfBudgets(db: Db, windows: ReadonlyMap<string, WindowBounds>, now: Date): Promise<Map<string, BudgetUsage>> {
  const result = new Map<string, BudgetUsage>();
  if (windows.size === 0) return result;
  const values = sql.join(
    [...windows].map(([id, w]) =>
      'currentMonth' in w ? sql`(${id}::uuid, true, '', '')` : sql`(${id}::uuid, false, ${w.from}, ${w.to})`,
    ),
    sql`, `,
  );
  const accounts = await db.select({ id: accountsTable.id, timezone: accountsTable.timezone }).from(accountsTable);
  const current = accounts.length
    ? sql.join(accounts.map((a) => sql`(${a.id}::uuid, ${periodOf(now, a.timezone)})`), sql`, `)
    : sql`(null::uuid, '')`;
  const rows = await queryRows<{ id: string; reserved: string; settled: string }>(
    db,
    sql`select w.budget_id as id,
          coalesce(sum(r.reserved_micro_cs), 0)::text as reserved,
          coalesce(sum(r.settled_micro_cs) filter (
            where (w.monthly and r.period = cur.period) or (not w.monthly and r.period between w.from_period and w.to_period)), 0)::text as settled
        from (values ${values}) as w(budget_id, monthly, from_period, to_period)
        join budgets b on b.id = w.budget_id
        left join usage_rollups r on r.org_unit_id = b.org_unit_id
          and (b.account_id is null or r.account_id = b.account_id)
        left join (values ${current}) as cur(account_id, period) on cur.account_id = r.account_id
        group by w.budget_id`,
  );
  for (const row of rows) result.set(row.id, { reservedMicroCs: toBigInt(row.reserved), settledMicroCs: toBigInt(row.settled) });
  return result;
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
}

/**
 * A USD limit in micro-credit-seconds: USD ÷ the account's budget rate (its overage rate, or a credit package's
 * price per credit-second; see budgetRateUsdPerCs), rounded down, so that the cap never allows more than the USD.
 * The rate is the one of the terms in force when the budget is set. A budget over all accounts has no single
 * rate and cannot be given in USD.
 */
export async function usdLimitToMicroCs(tx: Db, accountId: string | null, limitUsd: string, now: Date): Promise<bigint> {
  let usd;
  try {
    usd = parseUsd(limitUsd.trim());
  } catch {
    throw new ValidationError('limitUsd', 'limitUsd must be a non-negative decimal amount of US dollars');
  }
  if (!accountId) throw new ValidationError('limitUsd', 'a budget over all accounts has no single price: give limitCreditSeconds, or one budget per account in USD');
  const [account] = await tx.select().from(accountsTable).where(eq(accountsTable.id, accountId));
  if (!account) throw new NotFoundError('Account', accountId);
  const rate = budgetRateUsdPerCs(account, await termsFor(tx, account.id, periodOf(now, account.timezone)));
  if (!rate) throw new ValidationError('limitUsd', 'the account has no positive overage rate or price in force to convert USD with');
  return Q.floor(Q.div(Q.mul(usd, Q.fromBigInt(MICRO_PER_CS)), rate));
}

export async function setBudget(tx: Db, input: SetBudgetInput, now = new Date()): Promise<BudgetRow> {
  const [unit] = await tx.select({ id: orgUnitsTable.id }).from(orgUnitsTable).where(eq(orgUnitsTable.id, input.orgUnitId));
  if (!unit) throw new NotFoundError('OrgUnit', input.orgUnitId);
  if (input.accountId) {
    const [account] = await tx.select({ id: accountsTable.id }).from(accountsTable).where(eq(accountsTable.id, input.accountId));
    if (!account) throw new NotFoundError('Account', input.accountId);
  }
  const hasCs = input.limitCreditSeconds !== undefined && input.limitCreditSeconds !== null;
  const hasUsd = input.limitUsd !== undefined && input.limitUsd !== null;
  if (hasCs === hasUsd) throw new ValidationError('limitCreditSeconds', 'give exactly one of limitCreditSeconds and limitUsd');
  let limit: bigint;
  let limitUsd: string | null = null;
  if (hasUsd) {
    limit = await usdLimitToMicroCs(tx, input.accountId, input.limitUsd!, now);
    limitUsd = input.limitUsd!.trim();
  } else {
    try {
      if (!/^\d{1,15}(\.\d{1,6})?$/.test(input.limitCreditSeconds!.trim())) throw new Error('format');
      limit = secondsToMicro(input.limitCreditSeconds!);
    } catch {
      throw new ValidationError('limitCreditSeconds', 'limitCreditSeconds must be a non-negative decimal with at most 6 decimals');
    }
  }
  if (limit > MAX_INPUT_MICRO_CS) {
    throw new ValidationError(hasUsd ? 'limitUsd' : 'limitCreditSeconds', `the limit must be at most ${MAX_INPUT_MICRO_CS / MICRO_PER_CS} credit-seconds`);
  }
  const thresholds = input.alertThresholds ?? [50, 80, 100];
  if (thresholds.length > 10 || thresholds.some((t) => !Number.isInteger(t) || t < 1 || t > 1000)) {
    throw new ValidationError('alertThresholds', 'alertThresholds are up to 10 integer percentages from 1 to 1000');
  }
  const values = {
    orgUnitId: input.orgUnitId,
    accountId: input.accountId,
    window: input.window,
    limitMicroCs: limit,
    limitUsd,
    enforcement: input.enforcement,
    allowOverage: input.allowOverage,
    alertThresholds: [...new Set(thresholds)].sort((a, b) => a - b),
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
 * Budgets with their usage, in one statement (for reads: the API's budget lists and balances). The window of each
 * budget is the one windowOf gives, worked out in SQL from the rows it depends on: MONTHLY counts each account's
 * current period in its own time zone; CONTRACT_TERM the term of the budget's account's terms in force in its current
 * period (the lifetime when those terms have no dates, and for a budget over all accounts); LIFETIME every period.
 * Reserved counts every open hold, as in usageOfBudgets.
 */
export async function budgetsWithUsage(
  db: Db,
  which: { unitIds: readonly string[] } | { budgetIds: readonly string[] },
  now: Date,
): Promise<{ budget: BudgetRow; usage: BudgetUsage }[]> {
  const ids = 'unitIds' in which ? which.unitIds : which.budgetIds;
  if (ids.length === 0) return [];
  const at = now.toISOString();
  // Written out with the table's name: drizzle leaves the columns of a one-table select unqualified, and inside the
  // subqueries below an unqualified org_unit_id or account_id would be usage_rollups' own.
  // The current period of an account (its calendar month in its time zone), as periodOf computes it.
  const currentPeriodOf = (accountId: SQL) => sql`to_char((${at}::timestamptz) at time zone (select a.timezone from accounts a where a.id = ${accountId}), 'YYYY-MM')`;
  // The term (first and last period) of the budget's account's terms in force now, or null.
  const term = (edge: 'term_start' | 'term_end') =>
    sql`(select case when t.term_start is not null and t.term_end is not null then substr(t.${sql.raw(edge)}, 1, 7) end
           from account_terms t
          where t.account_id = budgets.account_id and t.effective_from <= ${currentPeriodOf(sql`budgets.account_id`)}
          order by t.effective_from desc limit 1)`;
  const rows = await db
    .select({
      budget: budgetsTable,
      reserved: sql<string>`(select coalesce(sum(r.reserved_micro_cs), 0) from usage_rollups r
          where r.org_unit_id = budgets.org_unit_id and (budgets.account_id is null or r.account_id = budgets.account_id))::text`,
      settled: sql<string>`(select coalesce(sum(r.settled_micro_cs), 0) from usage_rollups r
          where r.org_unit_id = budgets.org_unit_id and (budgets.account_id is null or r.account_id = budgets.account_id)
            and case budgets."window"
                  when 'MONTHLY' then r.period = ${currentPeriodOf(sql`r.account_id`)}
                  when 'CONTRACT_TERM' then r.period between coalesce(${term('term_start')}, '0000-01') and coalesce(${term('term_end')}, '9999-12')
                  else true
                end)::text`,
    })
    .from(budgetsTable)
    .where('unitIds' in which ? inArray(budgetsTable.orgUnitId, [...ids]) : inArray(budgetsTable.id, [...ids]))
    .orderBy(budgetsTable.id);
  return rows.map((r) => ({ budget: r.budget, usage: { reservedMicroCs: toBigInt(r.reserved), settledMicroCs: toBigInt(r.settled) } }));
}

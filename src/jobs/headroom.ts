// What a project may still spend, as its caller may see it: the tightest HARD budget on its path, and the account
// pool where it binds (a credit package; a usage-based pool under a budget that allows no overage), the caps
// admission enforces, with the same visibility rule as a refusal's description (a pool's size only for callers
// who may read the account's totals).
import { eq, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { queryRows, toBigInt } from '../db/client.js';
import { accountsTable, orgUnitsTable } from '../db/schema.js';
import { canReadAccountTotals, canReadCostsOf, type Actor } from '../auth/actor.js';
import { accountPeriod } from '../billing/account-period.js';
import { accountForPath } from '../org/units.js';
import { availableOf, budgetsOnPath, budgetsWithUsage, effectiveLimit } from '../budgets/budgets.js';
import { termsFor } from '../accounts/accounts.js';
import { budgetRateUsdPerCs } from '../billing/terms.js';
import { dayOf, periodOf } from '../primitives/period.js';
import type { Rational } from '../primitives/money.js';
import { NotFoundError } from '../errors.js';

export interface ProjectHeadroom {
  projectId: string;
  projectName: string;
  /** What the project may still be admitted for under its HARD budgets and the pool (null: neither binds it). */
  availableMicroCs: bigint | null;
  /**
   * The limit of the binding budget, when the caller may see it (canReadCostsOf its unit, as for refusals): a
   * budget above the caller's subtree would, with `available`, tell the siblings' usage.
   */
  limitMicroCs: bigint | null;
  /** The project's own usage (settled + held) in its account's current period. */
  usedThisPeriodMicroCs: bigint;
  /** USD per credit-second budgets convert at (null: the account's terms give none). */
  rateUsdPerCs: Rational | null;
  period: string;
}

interface Binding {
  available: bigint;
  limit: bigint;
  limitVisible: boolean;
}

export async function projectHeadroom(db: Db, actor: Actor, projectId: string, now = new Date()): Promise<ProjectHeadroom> {
  const [project] = await db.select().from(orgUnitsTable).where(eq(orgUnitsTable.id, projectId));
  if (!project) throw new NotFoundError('OrgUnit', projectId);
  const accountId = await accountForPath(db, project.path);
  if (!accountId) throw new NotFoundError('Account', projectId);
  const [account] = await db.select().from(accountsTable).where(eq(accountsTable.id, accountId));
  if (!account) throw new NotFoundError('Account', accountId);
  const period = periodOf(now, account.timezone);
  const terms = await termsFor(db, account.id, period);
  const onPath = await budgetsOnPath(db, project.path, account.id);
  const hard = await budgetsWithUsage(db, { budgetIds: onPath.filter((b) => b.enforcement === 'HARD').map((b) => b.id) }, now);

  let binding: (Binding & { orgUnitId: string | null }) | null = null;
  for (const { budget: b, usage: u } of hard) {
    const limit = effectiveLimit(b, u);
    // As the admission judges it: a CUSTOM budget admits nothing outside its window.
    const outside = b.window === 'CUSTOM' && (dayOf(now, account.timezone) < u.windowFrom || dayOf(now, account.timezone) > u.windowTo);
    const left = outside ? 0n : availableOf(b, u);
    const available = left > 0n ? left : 0n;
    if (!binding || available < binding.available) binding = { available, limit, limitVisible: false, orgUnitId: b.orgUnitId };
  }
  if (binding?.orgUnitId) {
    const [unit] = await db.select({ id: orgUnitsTable.id, path: orgUnitsTable.path }).from(orgUnitsTable).where(eq(orgUnitsTable.id, binding.orgUnitId));
    binding.limitVisible = !!unit && canReadCostsOf(actor, unit);
  }
  // The pool, as the account's period position reads it (src/billing/account-period.ts), less every open hold.
  if (account.billingModel === 'CREDIT_PACKAGE' || onPath.some((b) => !b.allowOverage)) {
    const position = await accountPeriod(db, account, period);
    const left = position.remainingIncludedMicroCs - position.reservedMicroCs;
    const available = left > 0n ? left : 0n;
    if (!binding || available < binding.available) {
      binding = { available, limit: position.includedMicroCs, limitVisible: canReadAccountTotals(actor), orgUnitId: null };
    }
  }

  const [own] = await queryRows<{ used: string }>(
    db,
    sql`select (coalesce(sum(settled_micro_cs), 0) + coalesce(sum(reserved_micro_cs), 0))::text as used
        from usage_rollups where org_unit_id = ${project.id} and account_id = ${account.id} and period = ${period}`,
  );
  return {
    projectId: project.id,
    projectName: project.name,
    availableMicroCs: binding?.available ?? null,
    limitMicroCs: binding?.limitVisible ? binding.limit : null,
    usedThisPeriodMicroCs: toBigInt(own?.used),
    rateUsdPerCs: budgetRateUsdPerCs(account, terms),
    period,
  };
}

// What a project may still spend, as its caller may see it: the tightest HARD budget on its path (the caps
// admission enforces), with the same reads and the same visibility rule as a refusal's description.
import { eq } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { queryRows, toBigInt } from '../db/client.js';
import { sql } from 'drizzle-orm';
import { accountsTable, orgUnitsTable } from '../db/schema.js';
import { canReadCostsOf, type Actor } from '../auth/actor.js';
import { accountForPath } from '../org/units.js';
import { budgetsOnPath, usageOfBudgets, windowOf, type WindowBounds } from '../budgets/budgets.js';
import { termsFor } from '../accounts/accounts.js';
import { budgetRateUsdPerCs } from '../billing/terms.js';
import { periodOf } from '../primitives/period.js';
import type { Rational } from '../primitives/money.js';
import { NotFoundError } from '../errors.js';

export interface ProjectHeadroom {
  projectId: string;
  projectName: string;
  /** What the project may still be admitted for under its HARD budgets (null: no HARD budget binds it). */
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

export async function projectHeadroom(db: Db, actor: Actor, projectId: string, now = new Date()): Promise<ProjectHeadroom> {
  const [project] = await db.select().from(orgUnitsTable).where(eq(orgUnitsTable.id, projectId));
  if (!project) throw new NotFoundError('OrgUnit', projectId);
  const accountId = await accountForPath(db, project.path);
  if (!accountId) throw new NotFoundError('Account', projectId);
  const [account] = await db.select().from(accountsTable).where(eq(accountsTable.id, accountId));
  if (!account) throw new NotFoundError('Account', accountId);
  const period = periodOf(now, account.timezone);
  const terms = await termsFor(db, account.id, period);
  const hard = (await budgetsOnPath(db, project.path, account.id)).filter((b) => b.enforcement === 'HARD');
  const windows = new Map<string, WindowBounds>();
  for (const b of hard) windows.set(b.id, windowOf(b, b.accountId ? account : null, terms));
  const usage = await usageOfBudgets(db, windows, now);
  let tightest: { available: bigint; limit: bigint; orgUnitId: string } | null = null;
  for (const b of hard) {
    const u = usage.get(b.id) ?? { reservedMicroCs: 0n, settledMicroCs: 0n };
    const left = b.limitMicroCs - u.reservedMicroCs - u.settledMicroCs;
    const available = left > 0n ? left : 0n;
    if (!tightest || available < tightest.available) tightest = { available, limit: b.limitMicroCs, orgUnitId: b.orgUnitId };
  }
  let limitVisible = false;
  if (tightest) {
    const [unit] = await db.select({ id: orgUnitsTable.id, path: orgUnitsTable.path }).from(orgUnitsTable).where(eq(orgUnitsTable.id, tightest.orgUnitId));
    limitVisible = !!unit && canReadCostsOf(actor, unit);
  }
  const [own] = await queryRows<{ used: string }>(
    db,
    sql`select (coalesce(sum(settled_micro_cs), 0) + coalesce(sum(reserved_micro_cs), 0))::text as used
        from usage_rollups where org_unit_id = ${project.id} and account_id = ${account.id} and period = ${period}`,
  );
  return {
    projectId: project.id,
    projectName: project.name,
    availableMicroCs: tightest?.available ?? null,
    limitMicroCs: tightest && limitVisible ? tightest.limit : null,
    usedThisPeriodMicroCs: toBigInt(own?.used),
    rateUsdPerCs: budgetRateUsdPerCs(account, terms),
    period,
  };
}

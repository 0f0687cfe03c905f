// What a caller may see, for one request: objects outside the caller's reach read exactly like objects that do
// not exist (null, NotFoundError, or absent from a list). Each helper applies one rule of src/auth/actor.ts;
// each SQL filter mirrors one of those rules, so that lists and connections agree with `node`.
import { encodeGlobalID } from '@pothos/plugin-relay';
import { eq, inArray, sql, type AnyColumn, type SQL } from 'drizzle-orm';
import type { GraphQLContext } from './context.js';
import { budgetRequestsTable, jobsTable, orgUnitsTable, serviceTokensTable } from '../db/schema.js';
import { canListServiceTokens, canReadAccountTotals, canReadCostsOf, canReadJobsOf, canReadUnit, seesEverything, type Actor } from '../auth/actor.js';
import { accountsVisibleTo, type AccountRow } from '../accounts/accounts.js';
import type { OrgUnitRow } from '../org/units.js';
import type { JobRow } from '../jobs/admission.js';
import type { BudgetRow } from '../budgets/budgets.js';
import { NotFoundError } from '../errors.js';
import { uuidArray } from '../ledger/ledger.js';

/** A unit the caller may read, or null (reads as not found). */
export async function visibleUnit(ctx: GraphQLContext, id: string | null): Promise<OrgUnitRow | null> {
  if (!id || !ctx.actor) return null;
  const unit = await ctx.loaders.unitById.load(id);
  return unit && canReadUnit(ctx.actor, unit) ? unit : null;
}

/** A unit the caller may read, or NotFoundError (the same error as for a unit that does not exist). */
export async function requireVisibleUnit(ctx: GraphQLContext, id: string): Promise<OrgUnitRow> {
  const unit = await visibleUnit(ctx, id);
  if (!unit) throw new NotFoundError('OrgUnit', encodeGlobalID('OrgUnit', id));
  return unit;
}

/** SQL filter on org_units: units the caller may read (mirrors canReadUnit). */
export function visibleUnitsFilter(actor: Actor): SQL | undefined {
  if (seesEverything(actor)) return undefined;
  if (!actor.unitId) return sql`false`;
  if (actor.role === 'SERVICE') return sql`${orgUnitsTable.id} = any(${uuidArray(actor.unitPath)})`;
  return sql`(${orgUnitsTable.path} @> ${uuidArray([actor.unitId])} or ${orgUnitsTable.id} = any(${uuidArray(actor.unitPath)}))`;
}

// One lookup of the caller's accounts per request (per loaders: a subscription gets new ones per event), however many fields ask.
const accountsOfRequest = new WeakMap<object, Promise<string[] | 'all'>>();

/** Accounts the caller may see: all for ADMIN and FINANCE, else the one its unit draws on. */
export function visibleAccountIds(ctx: GraphQLContext): Promise<string[] | 'all'> {
  let ids = accountsOfRequest.get(ctx.loaders);
  if (!ids) {
    ids = accountsVisibleTo(ctx.db, ctx.actor);
    accountsOfRequest.set(ctx.loaders, ids);
  }
  return ids;
}

/** An account the caller may see, or null (reads as not found). */
export async function visibleAccount(ctx: GraphQLContext, id: string | null): Promise<AccountRow | null> {
  if (!id || !ctx.actor) return null;
  const visible = await visibleAccountIds(ctx);
  if (visible !== 'all' && !visible.includes(id)) return null;
  return ctx.loaders.accountById.load(id);
}

/** An account the caller may see, or NotFoundError. */
export async function requireVisibleAccount(ctx: GraphQLContext, id: string): Promise<AccountRow> {
  const account = await visibleAccount(ctx, id);
  if (!account) throw new NotFoundError('Account', encodeGlobalID('Account', id));
  return account;
}

/**
 * Budgets the caller may read, of units it may read: those over all accounts, and those of an account it may
 * see (a budget of another account would tell that account's limit and usage).
 */
export async function visibleBudgets(ctx: GraphQLContext, budgets: readonly BudgetRow[]): Promise<BudgetRow[]> {
  if (!ctx.actor) return [];
  const accounts = await visibleAccountIds(ctx);
  const shown: BudgetRow[] = [];
  for (const b of budgets) {
    if (b.accountId !== null && accounts !== 'all' && !accounts.includes(b.accountId)) continue;
    if (await visibleUnit(ctx, b.orgUnitId)) shown.push(b);
  }
  return shown;
}

/**
 * Whether the caller may see a budget's limit and usage counters: when it may read the costs of the budget's unit
 * (OrgUnit.usage's rule). A budget above the caller's subtree counts its siblings' usage too, and its limit minus
 * what is available would give that usage away.
 */
export async function budgetCountersVisible(ctx: GraphQLContext, budget: { orgUnitId: string }): Promise<boolean> {
  const unit = await ctx.loaders.unitById.load(budget.orgUnitId);
  return !!unit && !!ctx.actor && canReadCostsOf(ctx.actor, unit);
}

/** Whether the caller may see an account's totals (its period, its pool, HeyGen's balance). */
export function accountTotalsVisible(ctx: GraphQLContext): boolean {
  return !!ctx.actor && canReadAccountTotals(ctx.actor);
}

/** A job the caller may read, or null (reads as not found). */
export async function visibleJob(ctx: GraphQLContext, id: string | null): Promise<JobRow | null> {
  if (!id || !ctx.actor) return null;
  const [job] = await ctx.db.select().from(jobsTable).where(eq(jobsTable.id, id));
  if (!job) return null;
  const project = await ctx.loaders.unitById.load(job.projectId);
  return project && canReadJobsOf(ctx.actor, project) ? job : null;
}

/** SQL filter on jobs: jobs the caller may read (mirrors canReadJobsOf). */
export function visibleJobsFilter(actor: Actor): SQL | undefined {
  if (seesEverything(actor)) return undefined;
  if (!actor.unitId) return sql`false`;
  if (actor.role === 'SERVICE') return eq(jobsTable.projectId, actor.unitId);
  return inArray(
    jobsTable.projectId,
    sql`(select ${orgUnitsTable.id} from ${orgUnitsTable} where ${orgUnitsTable.path} @> ${uuidArray([actor.unitId])})`,
  );
}

/** SQL filter on a column of unit ids: units whose costs the caller may read (mirrors canReadCostsOf). */
export function visibleCostsFilter(actor: Actor, unitColumn: AnyColumn): SQL | undefined {
  if (seesEverything(actor)) return undefined;
  if (!actor.unitId) return sql`false`;
  if (actor.role === 'SERVICE') return eq(unitColumn, actor.unitId);
  return inArray(unitColumn, sql`(select ${orgUnitsTable.id} from ${orgUnitsTable} where ${orgUnitsTable.path} @> ${uuidArray([actor.unitId])})`);
}

/** SQL filter on service_tokens: records the caller may see (mirrors canListServiceTokensOf). */
export function visibleServiceTokensFilter(actor: Actor): SQL | undefined {
  if (!canListServiceTokens(actor)) return sql`false`;
  if (seesEverything(actor)) return undefined;
  // A MANAGER: tokens of the projects in its subtree (canManageUnit).
  if (!actor.unitId) return sql`false`;
  return inArray(
    serviceTokensTable.orgUnitId,
    sql`(select ${orgUnitsTable.id} from ${orgUnitsTable} where ${orgUnitsTable.path} @> ${uuidArray([actor.unitId])})`,
  );
}

/**
 * SQL filter on budget_requests: requests the caller may read (mirrors canReadBudgetRequest): its own, and for
 * ADMIN and FINANCE every one, for a MANAGER those of units strictly below its own (canSetBudgetOn).
 */
export function visibleBudgetRequestsFilter(actor: Actor): SQL | undefined {
  if (actor.role === 'ADMIN' || actor.role === 'FINANCE') return undefined;
  const own = eq(budgetRequestsTable.requestedBySubject, actor.subject);
  if (actor.role !== 'MANAGER' || !actor.unitId) return own;
  return sql`(${own} or ${budgetRequestsTable.orgUnitId} in (select ${orgUnitsTable.id} from ${orgUnitsTable}
    where ${orgUnitsTable.path} @> ${uuidArray([actor.unitId])} and ${orgUnitsTable.id} <> ${actor.unitId}))`;
}

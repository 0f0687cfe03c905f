// What a caller may see, for one request: objects outside the caller's reach read exactly like objects that do
// not exist (null, NotFoundError, or absent from a list). Each helper applies one rule of src/auth/actor.ts;
// each SQL filter mirrors one of those rules, so that lists and connections agree with `node`.
import { encodeGlobalID } from '@pothos/plugin-relay';
import { eq, inArray, sql, type AnyColumn, type SQL } from 'drizzle-orm';
import { whenReady, type GraphQLContext, type MaybePromise } from './context.js';
import { budgetRequestsTable, jobsTable, orgUnitsTable, serviceTokensTable } from '../db/schema.js';
import { canListServiceTokens, canReadAccountTotals, canReadCostsOf, canReadJobsOf, canReadUnit, seesEverything, type Actor } from '../auth/actor.js';
import { accountsVisibleTo, type AccountRow } from '../accounts/accounts.js';
import type { OrgUnitRow } from '../org/units.js';
import type { JobRow } from '../jobs/admission.js';
import type { BudgetRow } from '../budgets/budgets.js';
import { NotFoundError } from '../errors.js';
import { uuidArray } from '../ledger/ledger.js';

// The helpers below answer at once (no promise) when the request has already read what they need: over a page of
// 200 units and their budgets, most fields are then resolved without a turn of the event loop.

/** A unit the caller may read, or null (reads as not found). */
export function visibleUnit(ctx: GraphQLContext, id: string | null): MaybePromise<OrgUnitRow | null> {
  const actor = ctx.actor;
  if (!id || !actor) return null;
  // No callback made per call when the unit is here (every unit of a page, its parents and its budgets ask).
  const unit = ctx.loaders.unitById.loadNow(id);
  return unit instanceof Promise ? unit.then((u) => readableUnit(actor, u)) : readableUnit(actor, unit);
}

function readableUnit(actor: Actor, unit: OrgUnitRow | null): OrgUnitRow | null {
  return unit && canReadUnit(actor, unit) ? unit : null;
}

/** A unit the caller may read, or NotFoundError (the same error as for a unit that does not exist). */
export async function requireVisibleUnit(ctx: GraphQLContext, id: string): Promise<OrgUnitRow> {
  const unit = await visibleUnit(ctx, id);
  if (!unit) throw new NotFoundError('OrgUnit', encodeGlobalID('OrgUnit', id));
  return unit;
}

/**
 * SQL filter on org_units (alias `u`): units the caller may read (mirrors canReadUnit). Fixed text for a named
 * statement: `key` names the variant (the text differs per rule, never per caller), `values` are its parameters
 * from `$first` on.
 */
export function visibleUnitsClause(actor: Actor, first: number): { key: string; text: string; values: unknown[] } {
  if (seesEverything(actor)) return { key: 'all', text: 'true', values: [] };
  if (!actor.unitId) return { key: 'none', text: 'false', values: [] };
  if (actor.role === 'SERVICE') return { key: 'service', text: `u.id = any($${first}::uuid[])`, values: [actor.unitPath] };
  return {
    key: 'subtree',
    text: `(u.path @> array[$${first}::uuid] or u.id = any($${first + 1}::uuid[]))`,
    values: [actor.unitId, actor.unitPath],
  };
}

// One lookup of the caller's accounts per request (per loaders: a subscription gets new ones per event), however many
// fields ask; once it has come, the answer itself (no promise).
const accountsOfRequest = new WeakMap<object, MaybePromise<string[] | 'all'>>();

/** Accounts the caller may see: all for ADMIN and FINANCE, else the one its unit draws on. */
export function visibleAccountIds(ctx: GraphQLContext): MaybePromise<string[] | 'all'> {
  const known = accountsOfRequest.get(ctx.loaders);
  if (known !== undefined) return known;
  const loaders = ctx.loaders;
  const ids = accountsVisibleTo(ctx.db, ctx.actor).then((visible) => {
    accountsOfRequest.set(loaders, visible);
    return visible;
  });
  accountsOfRequest.set(loaders, ids);
  return ids;
}

/** An account the caller may see, or null (reads as not found). */
export function visibleAccount(ctx: GraphQLContext, id: string | null): MaybePromise<AccountRow | null> {
  if (!id || !ctx.actor) return null;
  const visible = visibleAccountIds(ctx);
  if (visible instanceof Promise) return visible.then(() => visibleAccount(ctx, id));
  return visible !== 'all' && !visible.includes(id) ? null : ctx.loaders.accountById.loadNow(id);
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
export function visibleBudgets(ctx: GraphQLContext, budgets: readonly BudgetRow[]): MaybePromise<readonly BudgetRow[]> {
  if (!ctx.actor) return [];
  const accounts = visibleAccountIds(ctx);
  return accounts instanceof Promise ? accounts.then((ids) => budgetsVisibleWith(ctx, ids, budgets)) : budgetsVisibleWith(ctx, accounts, budgets);
}

function budgetsVisibleWith(ctx: GraphQLContext, accounts: string[] | 'all', budgets: readonly BudgetRow[]): MaybePromise<readonly BudgetRow[]> {
  // Most often every budget passes both rules with its unit already read: the list as it is (no copies made twice
  // per unit of a page, by the read-ahead and by the field). Otherwise the general case below, from the start.
  let passed = 0;
  for (const b of budgets) {
    if (b.accountId !== null && accounts !== 'all' && !accounts.includes(b.accountId)) break;
    const unit = visibleUnit(ctx, b.orgUnitId);
    if (unit === null || unit instanceof Promise) break;
    passed++;
  }
  if (passed === budgets.length) return budgets; // the loader's own list: read-only to every caller
  const candidates = budgets.filter((b) => b.accountId === null || accounts === 'all' || accounts.includes(b.accountId));
  const units = candidates.map((b) => visibleUnit(ctx, b.orgUnitId));
  const pick = (visible: readonly (OrgUnitRow | null)[]) => candidates.filter((_, i) => visible[i] !== null);
  return units.some((u) => u instanceof Promise) ? Promise.all(units).then(pick) : pick(units as (OrgUnitRow | null)[]);
}

/**
 * Whether the caller may see a budget's limit and usage counters: when it may read the costs of the budget's unit
 * (OrgUnit.usage's rule). A budget above the caller's subtree counts its siblings' usage too, and its limit minus
 * what is available would give that usage away.
 */
export function budgetCountersVisible(ctx: GraphQLContext, budget: { orgUnitId: string }): MaybePromise<boolean> {
  const unit = ctx.loaders.unitById.loadNow(budget.orgUnitId);
  return unit instanceof Promise ? unit.then((u) => costsReadable(ctx.actor, u)) : costsReadable(ctx.actor, unit);
}

function costsReadable(actor: Actor | null, unit: OrgUnitRow | null): boolean {
  return !!unit && !!actor && canReadCostsOf(actor, unit);
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

// The org tree, budgets and usage.
import { and, eq, getTableColumns, isNull } from 'drizzle-orm';
import { namedStatement, type NamedStatement } from '../db/client.js';
import { rowFromJson } from '../db/json-rows.js';
import { builder } from './builder.js';
import { GroupByInput, groupByOf, personVisible } from './groups.js';
import { usageByGroup, type UsageGroup } from '../billing/groups.js';
import { MUTATION_ERRORS } from './errors.js';
import { decodeId, tryDecodeId } from './ids.js';
import { AccountRef } from './accounts.js';
import { requireVisibleAccount, requireVisibleUnit, visibleAccount, visibleAccountIds, visibleBudgets, visibleUnit, visibleUnitsClause } from './visibility.js';
import { canReadCostsOf } from '../auth/actor.js';
import { BUDGET_WINDOWS, ENFORCEMENTS, ORG_UNIT_KINDS, budgetsTable, orgUnitsTable } from '../db/schema.js';
import { createOrgUnit, isUuid, type OrgUnitRow } from '../org/units.js';
import { availableOf, effectiveLimit, setBudget, type BudgetRow, type BudgetUsage } from '../budgets/budgets.js';
import { whenReady, type GraphQLContext, type MaybePromise, type UsageTotals } from './context.js';
import { recordAudit } from '../audit/audit.js';
import { ForbiddenError, ValidationError } from '../errors.js';
import { cursorPage } from './pagination.js';
import { selectedFields } from './selection.js';
import type { GraphQLResolveInfo } from 'graphql';
import { budgetCountersVisible } from './visibility.js';


export const OrgUnitKindEnum = builder.enumType('OrgUnitKind', {
  description: 'Level of a unit in the org tree.',
  values: ORG_UNIT_KINDS,
});
export const BudgetWindowEnum = builder.enumType('BudgetWindow', {
  description:
    "The window usage is counted over, in the account's time zone (a budget over all accounts: each account's own): DAILY the current day; WEEKLY the current ISO week (Monday to Sunday); MONTHLY the current period; QUARTERLY the current calendar quarter; CUSTOM the budget's windowFrom (inclusive) to windowTo (exclusive), admitting nothing outside it; CONTRACT_TERM the account term (lifetime when the terms have no dates); LIFETIME all time.",
  values: BUDGET_WINDOWS,
});
const EnforcementEnum = builder.enumType('Enforcement', {
  description: 'HARD refuses jobs that would exceed the limit; SOFT only reports.',
  values: ENFORCEMENTS,
});

export const OrgUnitRef = builder.objectRef<OrgUnitRow>('OrgUnit');

/**
 * orgUnits' statement: a page of units (in key order), then the parents of its units, each once (a page of 200
 * projects of one team has one parent: a join repeated it 200 times, each mapped through drizzle). By hand and named
 * (see namedStatement): one text per shape (the caller's visibility rule, which filters and bounds are given, the
 * direction), made when first used. The columns are named, never `*` (see budgetsWithUsage).
 */
const UNIT_COLUMNS = Object.values(getTableColumns(orgUnitsTable)).map((c) => `"${c.name}"`).join(', ');
const unitsPageStatements = new Map<string, NamedStatement<Record<string, unknown> & { in_page: boolean }>>();
function unitsPageStatement(shape: { visible: { key: string; text: string; values: unknown[] }; kind: boolean; after: boolean; before: boolean; inverted: boolean }) {
  const key = `${shape.visible.key}_${Number(shape.kind)}${Number(shape.after)}${Number(shape.before)}${shape.inverted ? 'd' : 'a'}`;
  let statement = unitsPageStatements.get(key);
  if (!statement) {
    let n = shape.visible.values.length;
    const where = [shape.visible.text];
    if (shape.kind) where.push(`u.kind = $${++n}::org_unit_kind`);
    if (shape.after) where.push(`u.id > $${++n}::uuid`);
    if (shape.before) where.push(`u.id < $${++n}::uuid`);
    const order = shape.inverted ? 'desc' : 'asc';
    statement = namedStatement(
      `org_units_page_${key}`,
      `with page as (select u.* from org_units u where ${where.join(' and ')} order by u.id ${order} limit $${++n}::int)
       select true as in_page, ${UNIT_COLUMNS} from page
       union all
       select false, ${UNIT_COLUMNS} from org_units where id in (select parent_id from page)
       order by in_page desc, id ${order}`,
    );
    unitsPageStatements.set(key, statement);
  }
  return statement;
}
const unitOfRow = (r: Record<string, unknown>): OrgUnitRow => rowFromJson(orgUnitsTable, r);
export const BudgetRef = builder.objectRef<BudgetRow>('Budget');

interface UsageShape {
  unitId: string;
  period: string;
  accountId: string | null;
  /** The accounts summed (null: all). */
  accountIds: string[] | null;
  reservedMicroCs: bigint;
  settledMicroCs: bigint;
}

const UsageGroupRef = builder.objectRef<UsageGroup & { person: boolean }>('UsageGroup').implement({
  description: 'One group of a usage: a tag value or a person, or the rest (value null: jobs without the tag, adjustments).',
  fields: (t) => ({
    value: t.string({ nullable: true, description: 'The tag value or the person; null for the rest.', resolve: (g) => g.value }),
    label: t.string({ description: 'The value, or `untagged` / `no person` for the rest.', resolve: (g) => g.value ?? (g.person ? 'no person' : 'untagged') }),
    reservedCreditSeconds: t.field({ type: 'CreditSeconds', description: 'Open holds of jobs in flight.', resolve: (g) => g.reservedMicroCs }),
    settledCreditSeconds: t.field({ type: 'CreditSeconds', description: 'Settled usage.', resolve: (g) => g.settledMicroCs }),
  }),
});

const UsageRef = builder.objectRef<UsageShape>('Usage').implement({
  description: "A unit's usage (its whole subtree) in one period.",
  fields: (t) => ({
    period: t.field({ type: 'Period', description: 'The period.', resolve: (u) => u.period }),
    reservedCreditSeconds: t.field({ type: 'CreditSeconds', description: 'Open holds of jobs in flight.', resolve: (u) => u.reservedMicroCs }),
    settledCreditSeconds: t.field({ type: 'CreditSeconds', description: 'Settled usage (debits and adjustments).', resolve: (u) => u.settledMicroCs }),
    groups: t.field({
      type: [UsageGroupRef],
      description:
        'The usage by tag value or by person, from the rollups: values in order, the rest last; they add up to this usage exactly. A MEMBER or SERVICE caller sees only its own person (docs/governance.md).',
      args: { groupBy: t.arg({ type: GroupByInput, required: true, description: 'The grouping.' }) },
      resolve: async (u, args, ctx) => {
        const group = groupByOf(args.groupBy);
        const groups = await usageByGroup(ctx.db, u.unitId, u.accountIds, u.period, group);
        const person = group.by === 'PERSON';
        return groups.filter((g) => !person || personVisible(ctx.actor!, g.value)).map((g) => ({ ...g, person }));
      },
    }),
  }),
});

builder.node(OrgUnitRef, {
  description: 'A unit of the org tree: organization, department, team or project.',
  id: { resolve: (u) => u.id },
  loadOne: (id, ctx) => visibleUnit(ctx, id),
  fields: (t) => ({
    kind: t.field({ type: OrgUnitKindEnum, description: 'Level in the tree.', resolve: (u) => u.kind }),
    name: t.exposeString('name', { description: 'Name, unique among siblings.' }),
    parent: t.field({
      type: OrgUnitRef,
      nullable: true,
      description: 'The parent unit (null for the organization, or when the caller may not see it).',
      resolve: (u, _a, ctx) => visibleUnit(ctx, u.parentId),
    }),
    path: t.field({
      type: [OrgUnitRef],
      description: 'Units from the root to this one, inclusive (those the caller may see).',
      resolve: async (u, _a, ctx) => (await Promise.all(u.path.map((id) => visibleUnit(ctx, id)))).filter((x): x is OrgUnitRow => x !== null),
    }),
    account: t.field({
      type: AccountRef,
      nullable: true,
      description:
        'The account assigned to this unit itself (projects inherit from the nearest unit above); null when none is, or when the caller may not see it.',
      resolve: (u, _a, ctx) => visibleAccount(ctx, u.accountId),
    }),
    budgets: t.field({
      type: [BudgetRef],
      description: 'Budgets set on this unit (those over all accounts, and those of accounts the caller may see).',
      resolve: (u, _a, ctx) => unitBudgets(ctx, u),
    }),
    usage: t.field({
      type: UsageRef,
      description: "Usage of this unit's subtree in a period (default: the current one), for one account or all.",
      args: {
        accountId: t.arg.id({ required: false, description: 'Global id of an account; omitted: all accounts.' }),
        period: t.arg({ type: 'Period', required: false, description: 'Default: the current period.' }),
      },
      resolve: (u, args, ctx) => unitUsage(ctx, u, args),
    }),
    createdAt: t.field({ type: 'DateTime', description: 'When the unit was created.', resolve: (u) => u.createdAt }),
  }),
});

/** OrgUnit.budgets: the unit's budgets the caller may read. */
function unitBudgets(ctx: GraphQLContext, u: OrgUnitRow): MaybePromise<readonly BudgetRow[]> {
  return whenReady(ctx.loaders.budgetsByUnit.loadNow(u.id), (budgets) => visibleBudgets(ctx, budgets));
}

/** OrgUnit.usage: the usage of the unit's subtree, for the caller's accounts (or the one asked for) in a period. */
function unitUsage(ctx: GraphQLContext, u: OrgUnitRow, args: { accountId?: string | number | null; period?: string | null }): MaybePromise<UsageShape> {
  // Usage of a unit above the caller's own would reveal its siblings' usage by subtraction.
  if (!canReadCostsOf(ctx.actor!, u)) throw new ForbiddenError("usage is shown for units in the caller's own subtree");
  const accountId = args.accountId != null ? decodeId(String(args.accountId), 'Account') : null;
  // An account the caller may not see reads as one that does not exist (its usage would tell otherwise).
  if (accountId) {
    return requireVisibleAccount(ctx, accountId).then((account) =>
      usageOf(ctx, u, args.period ?? ctx.loaders.periodNow(account.timezone), accountId, [accountId]),
    );
  }
  // No promise of its own over a page of units: the caller's accounts are known after the first one.
  const period = args.period ?? ctx.loaders.periodNow('UTC');
  return whenReady(visibleAccountIds(ctx), (visible) => usageOf(ctx, u, period, null, visible === 'all' ? null : visible));
}

/**
 * A unit's usage in a period: summed over `accountIds` (null: all accounts), each part read through the page's batch
 * (at once when the request has read it).
 */
function usageOf(ctx: GraphQLContext, u: OrgUnitRow, period: string, accountId: string | null, accountIds: string[] | null): MaybePromise<UsageShape> {
  const shape = (totals: UsageTotals): UsageShape => ({ unitId: u.id, period, accountId, accountIds, ...totals });
  // One part (all accounts, or the caller's one): its totals as they are.
  if (accountIds === null || accountIds.length === 1) {
    return whenReady(ctx.loaders.unitUsage.loadNow({ unitId: u.id, accountId: accountIds?.[0] ?? null, period }), shape);
  }
  const parts = accountIds.map((scope) => ctx.loaders.unitUsage.loadNow({ unitId: u.id, accountId: scope, period }));
  const sum = (totals: readonly UsageTotals[]): UsageShape =>
    shape({
      reservedMicroCs: totals.reduce((sum, p) => sum + p.reservedMicroCs, 0n),
      settledMicroCs: totals.reduce((sum, p) => sum + p.settledMicroCs, 0n),
    });
  return parts.some((p) => p instanceof Promise) ? Promise.all(parts).then(sum) : sum(parts as UsageTotals[]);
}

/**
 * Reads what the fields of a page of units will ask for, before they run: their budgets (and those budgets'
 * accounts) and their usage without arguments, when the query selects them, through the fields' own functions
 * (the same loaders, keys and visibility rules). The fields then find every value read and resolve without a
 * promise per unit (200 units were ~1,000 promises and the executor's object for each). The statements are the
 * fields' own batches, in the same order. A failure is left to the fields, which meet it again and report it.
 */
async function preloadUnitFields(ctx: GraphQLContext, info: GraphQLResolveInfo, units: readonly OrgUnitRow[]): Promise<void> {
  const nodes = selectedFields(info, selectedFields(info, info.fieldNodes, 'edges'), 'node');
  const budgets = selectedFields(info, nodes, 'budgets');
  const usage = selectedFields(info, nodes, 'usage').some((f) => !f.arguments?.length);
  if (units.length === 0 || (budgets.length === 0 && !usage)) return;
  const usageReads: MaybePromise<unknown>[] = [];
  if (usage) {
    for (const u of units) {
      try {
        usageReads.push(unitUsage(ctx, u, {}));
      } catch {
        // The field throws the same error (a unit whose costs the caller may not read).
      }
    }
  }
  const [lists] = await Promise.all([Promise.allSettled(budgets.length > 0 ? units.map((u) => unitBudgets(ctx, u)) : []), Promise.allSettled(usageReads)]);
  if (selectedFields(info, budgets, 'account').length === 0) return;
  const accounts: MaybePromise<unknown>[] = [];
  for (const list of lists) if (list.status === 'fulfilled') for (const b of list.value) accounts.push(visibleAccount(ctx, b.accountId));
  await Promise.allSettled(accounts);
}

/**
 * A counter of a budget's current window, or null when the caller may not see the budget's counters. At once when
 * the request has read both (a page's budgets: no callback made per field).
 */
function counter(ctx: GraphQLContext, b: BudgetRow, pick: (usage: BudgetUsage, b: BudgetRow) => bigint): MaybePromise<bigint | null> {
  const shown = budgetCountersVisible(ctx, b);
  if (shown instanceof Promise) return shown.then((yes) => (yes ? counter(ctx, b, pick) : null));
  if (!shown) return null;
  const usage = ctx.loaders.budgetUsage.loadNow(b);
  return usage instanceof Promise ? usage.then((u) => pick(u, b)) : pick(usage, b);
}
const RESERVED = (u: BudgetUsage) => u.reservedMicroCs;
const SETTLED = (u: BudgetUsage) => u.settledMicroCs;
const GRANTED = (u: BudgetUsage) => u.grantedMicroCs;
const CARRIED = (u: BudgetUsage) => u.carriedMicroCs;
const EFFECTIVE_LIMIT = (u: BudgetUsage, b: BudgetRow) => effectiveLimit(b, u);
const AVAILABLE = (u: BudgetUsage, b: BudgetRow) => availableOf(b, u);

/** What every caller that may read the budget sees of its current window (availableCreditSeconds, the window's bounds). */
function shownToReaders<T>(ctx: GraphQLContext, b: BudgetRow, pick: (usage: BudgetUsage, b: BudgetRow) => T): MaybePromise<T> {
  const usage = ctx.loaders.budgetUsage.loadNow(b);
  return usage instanceof Promise ? usage.then((u) => pick(u, b)) : pick(usage, b);
}

builder.node(BudgetRef, {
  description: "A cap on a unit's use of one account (or all accounts) over a window.",
  id: { resolve: (b) => b.id },
  loadOne: async (id, ctx) => {
    const [row] = await ctx.db.select().from(budgetsTable).where(eq(budgetsTable.id, id));
    return row ? ((await visibleBudgets(ctx, [row]))[0] ?? null) : null;
  },
  fields: (t) => ({
    orgUnit: t.field({ type: OrgUnitRef, description: 'The unit it caps.', resolve: (b, _a, ctx) => whenReady(ctx.loaders.unitById.loadNow(b.orgUnitId), (u) => u!) }),
    account: t.field({
      type: AccountRef,
      nullable: true,
      description: 'The account it applies to; null: all accounts (or an account the caller may not see).',
      resolve: (b, _a, ctx) => visibleAccount(ctx, b.accountId),
    }),
    window: t.field({ type: BudgetWindowEnum, description: 'The window usage is counted over.', resolve: (b) => b.window }),
    enforcement: t.field({ type: EnforcementEnum, description: 'HARD or SOFT.', resolve: (b) => b.enforcement }),
    allowOverage: t.exposeBoolean('allowOverage', { description: "false: refuse this subtree's jobs once the account's included pool is used up." }),
    alertThresholds: t.exposeIntList('alertThresholds', { description: 'Alert thresholds in percent of the limit.' }),
    limitCreditSeconds: t.field({
      type: 'CreditSeconds',
      nullable: true,
      description: "The limit. Null for a budget above the caller's own subtree (with availableCreditSeconds it would tell the usage of the caller's siblings).",
      resolve: (b, _a, ctx) => {
        const shown = budgetCountersVisible(ctx, b);
        return shown instanceof Promise ? shown.then((yes) => (yes ? b.limitMicroCs : null)) : shown ? b.limitMicroCs : null;
      },
    }),
    reservedCreditSeconds: t.field({
      type: 'CreditSeconds',
      nullable: true,
      description: "Holds of jobs in flight, in the current window. Null for a budget above the caller's own subtree.",
      resolve: (b, _a, ctx) => counter(ctx, b, RESERVED),
    }),
    settledCreditSeconds: t.field({
      type: 'CreditSeconds',
      nullable: true,
      description: "Settled usage in the current window. Null for a budget above the caller's own subtree.",
      resolve: (b, _a, ctx) => counter(ctx, b, SETTLED),
    }),
    temporaryCreditSeconds: t.field({
      type: 'CreditSeconds',
      nullable: true,
      description:
        "What approved temporary raises add to the limit now (each ends at its `until`; see requestBudgetIncrease). Null for a budget above the caller's own subtree.",
      resolve: (b, _a, ctx) => counter(ctx, b, GRANTED),
    }),
    availableCreditSeconds: t.field({
      type: 'CreditSeconds',
      description:
        'effectiveLimit − reserved − settled (negative after an overrun): what the units under the budget, the caller among them, could still spend. Shown to every caller that may read the budget.',
      resolve: (b, _a, ctx) => shownToReaders(ctx, b, AVAILABLE),
    }),
    windowFrom: t.string({
      description:
        "First day (YYYY-MM-DD: DAILY, WEEKLY, CUSTOM) or period (YYYY-MM: the others) of the current window, inclusive, in the account's time zone (UTC for a budget over all accounts, whose accounts each count their own).",
      resolve: (b, _a, ctx) => shownToReaders(ctx, b, (u) => u.windowFrom),
    }),
    windowTo: t.string({
      description: 'Last day or period of the current window, inclusive (for CUSTOM: the day before the windowTo it was set with).',
      resolve: (b, _a, ctx) => shownToReaders(ctx, b, (u) => u.windowTo),
    }),
    rolloverCapCreditSeconds: t.field({
      type: 'CreditSeconds',
      nullable: true,
      description: "MONTHLY budgets: the most of last month's unused limit carried into this month; null: no rollover.",
      resolve: (b) => b.rolloverCapMicroCs,
    }),
    carriedOverCreditSeconds: t.field({
      type: 'CreditSeconds',
      nullable: true,
      description:
        "What this month's limit carries over from last month: min(rolloverCap, limit − last month's settled usage, never below 0); 0 in the month the rollover was set. Null for a budget above the caller's own subtree.",
      resolve: (b, _a, ctx) => counter(ctx, b, CARRIED),
    }),
    effectiveLimitCreditSeconds: t.field({
      type: 'CreditSeconds',
      nullable: true,
      description: "The limit in force in the current window: limit + carriedOver + temporary (what the admission checks). Null for a budget above the caller's own subtree.",
      resolve: (b, _a, ctx) => counter(ctx, b, EFFECTIVE_LIMIT),
    }),
    updatedAt: t.field({ type: 'DateTime', description: 'Last change.', resolve: (b) => b.updatedAt }),
  }),
});

builder.queryFields((t) => ({
  orgUnit: t.field({
    type: OrgUnitRef,
    nullable: true,
    authScopes: { authenticated: true },
    description: 'One unit by global id (null when it does not exist or the caller may not see it).',
    args: { id: t.arg.id({ required: true, description: 'Global id.' }) },
    resolve: (_r, args, ctx) => visibleUnit(ctx, tryDecodeId(String(args.id), 'OrgUnit')),
  }),
  orgUnits: t.connection({
    type: OrgUnitRef,
    authScopes: { authenticated: true },
    description: 'Units the caller may see, ordered by id.',
    args: { kind: t.arg({ type: OrgUnitKindEnum, required: false, description: 'Only units of this kind.' }) },
    resolve: async (_r, args, ctx, info) => {
      const connection = await cursorPage<OrgUnitRow>(
        ctx,
        args,
        (u: OrgUnitRow) => u.id,
        async ({ before, after, limit, inverted }): Promise<OrgUnitRow[]> => {
          for (const cursor of [before, after]) if (cursor && !isUuid(cursor)) throw new ValidationError('after', 'invalid cursor');
          // The page and the parents of its units in one statement, both primed into the request's unit loader
          // (the fields below ask for both: `parent`, and the unit of each budget).
          const visible = visibleUnitsClause(ctx.actor!, 1);
          const shape = { visible, kind: !!args.kind, after: !!after, before: !!before, inverted };
          const values = [...visible.values, ...(args.kind ? [args.kind] : []), ...(after ? [after] : []), ...(before ? [before] : []), limit];
          const page: OrgUnitRow[] = [];
          for (const r of await unitsPageStatement(shape).rows(ctx.db, values)) {
            const unit = ctx.loaders.knownUnit(r.id as string, r, unitOfRow);
            ctx.loaders.unitById.prime(unit.id, unit);
            if (r.in_page) page.push(unit);
          }
          return page;
        },
      );
      await preloadUnitFields(ctx, info, connection.edges.flatMap((e) => (e ? [e.node] : [])));
      return connection;
    },
  }),
}));

builder.mutationFields((t) => ({
  createOrgUnit: t.fieldWithInput({
    type: builder.simpleObject('CreateOrgUnitPayload', {
      description: 'The created unit.',
      fields: (f) => ({ orgUnit: f.field({ type: OrgUnitRef, description: 'The new unit.' }) }),
    }),
    errors: { types: MUTATION_ERRORS },
    // The organization itself, and assigning an account, are an ADMIN's; otherwise the parent decides.
    authScopes: (_r, { input }) =>
      input.parentId != null && input.accountId == null ? { canManage: decodeId(String(input.parentId), 'OrgUnit') } : { admin: true },
    description:
      'Adds a unit to the org tree: ADMIN anywhere; a MANAGER under its own unit or below it. Only an ADMIN creates the organization or assigns an account. Audited.',
    input: {
      parentId: t.input.id({ required: false, description: 'Global id of the parent; omitted only for the organization.' }),
      kind: t.input.field({ type: OrgUnitKindEnum, required: true, description: 'Level of the new unit.' }),
      name: t.input.string({ required: true, description: 'Name, unique among siblings.' }),
      accountId: t.input.id({ required: false, description: 'Global id of the account this unit (and what is under it) draws on (ADMIN only).' }),
    },
    resolve: async (_r, { input }, ctx) => {
      const actor = ctx.actor!;
      const parentId = input.parentId != null ? (await requireVisibleUnit(ctx, decodeId(String(input.parentId), 'OrgUnit'))).id : null;
      const accountId = input.accountId != null ? (await requireVisibleAccount(ctx, decodeId(String(input.accountId), 'Account'))).id : null;
      const orgUnit = await ctx.db.transaction(async (tx) => {
        const unit = await createOrgUnit(tx, { parentId, kind: input.kind, name: input.name, accountId });
        await recordAudit(tx, actor, { action: 'orgUnit.create', entityType: 'OrgUnit', entityId: unit.id, before: null, after: unit });
        return unit;
      });
      return { orgUnit };
    },
  }),
  setBudget: t.fieldWithInput({
    type: builder.simpleObject('SetBudgetPayload', {
      description: 'The budget as set.',
      fields: (f) => ({ budget: f.field({ type: BudgetRef, description: 'The budget.' }) }),
    }),
    errors: { types: MUTATION_ERRORS },
    authScopes: (_r, { input }) => ({ canSetBudget: decodeId(String(input.orgUnitId), 'OrgUnit') }),
    description:
      'Creates or replaces the budget of a unit for an account (or all accounts) and window: ADMIN and FINANCE anywhere; a MANAGER on units below its own (not on its own unit, whose cap is set from above). The limit is given in credit-seconds or in USD. Audited.',
    input: {
      orgUnitId: t.input.id({ required: true, description: 'Global id of the unit.' }),
      accountId: t.input.id({ required: false, description: 'Global id of the account; omitted: all accounts.' }),
      window: t.input.field({ type: BudgetWindowEnum, required: true, description: 'Window.' }),
      limitCreditSeconds: t.input.field({ type: 'CreditSeconds', required: false, description: 'Limit in credit-seconds (or give limitUsd).' }),
      limitUsd: t.input.field({
        type: 'Usd',
        required: false,
        description:
          "Limit in US dollars, exclusive with limitCreditSeconds: enforced in credit-seconds at the account's overage rate (a credit package: its price per credit-second), rounded down. Not for budgets over all accounts.",
      }),
      enforcement: t.input.field({ type: EnforcementEnum, required: false, defaultValue: 'HARD', description: 'HARD (default) or SOFT.' }),
      allowOverage: t.input.boolean({ required: false, defaultValue: true, description: "false: refuse once the account's included pool is used." }),
      alertThresholds: t.input.intList({ required: false, description: 'Percentages of the limit (default 50, 80, 100).' }),
      windowFrom: t.input.string({ required: false, description: "CUSTOM only (and required): the first day of the window, YYYY-MM-DD in the account's time zone, inclusive." }),
      windowTo: t.input.string({ required: false, description: 'CUSTOM only (and required): the day the window ends, YYYY-MM-DD, exclusive (after windowFrom).' }),
      rolloverCapCreditSeconds: t.input.field({
        type: 'CreditSeconds',
        required: false,
        description: "MONTHLY only: carry last month's unused limit into this month, up to this cap (or give rolloverCapUsd); omitted: no rollover.",
      }),
      rolloverCapUsd: t.input.field({
        type: 'Usd',
        required: false,
        description: 'The rollover cap in US dollars, exclusive with rolloverCapCreditSeconds: converted as limitUsd is, when the budget is set.',
      }),
    },
    resolve: async (_r, { input }, ctx) => {
      const actor = ctx.actor!;
      const unit = await requireVisibleUnit(ctx, decodeId(String(input.orgUnitId), 'OrgUnit'));
      const accountId = input.accountId != null ? (await requireVisibleAccount(ctx, decodeId(String(input.accountId), 'Account'))).id : null;
      const budget = await ctx.db.transaction(async (tx) => {
        const [before] = await tx
          .select()
          .from(budgetsTable)
          .where(
            and(
              eq(budgetsTable.orgUnitId, unit.id),
              accountId ? eq(budgetsTable.accountId, accountId) : isNull(budgetsTable.accountId),
              eq(budgetsTable.window, input.window),
            ),
          )
          .for('update');
        const after = await setBudget(
          tx,
          {
            orgUnitId: unit.id,
            accountId,
            window: input.window,
            limitCreditSeconds: input.limitCreditSeconds ?? null,
            limitUsd: input.limitUsd ?? null,
            enforcement: input.enforcement ?? 'HARD',
            allowOverage: input.allowOverage ?? true,
            alertThresholds: input.alertThresholds ?? null,
            windowFrom: input.windowFrom ?? null,
            windowTo: input.windowTo ?? null,
            rolloverCapCreditSeconds: input.rolloverCapCreditSeconds ?? null,
            rolloverCapUsd: input.rolloverCapUsd ?? null,
          },
          ctx.now,
        );
        await recordAudit(tx, actor, { action: 'budget.set', entityType: 'Budget', entityId: after.id, before: before ?? null, after });
        return after;
      });
      return { budget };
    },
  }),
}));

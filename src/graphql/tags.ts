// Tags and people: the organization's allowlist of tag keys, and the budgets on a tag value or on a person
// (docs/governance.md). Submitting with tags is submitJob's; grouping usage and chargeback is groups.ts's.
import { encodeGlobalID } from '@pothos/plugin-relay';
import { builder } from './builder.js';
import { MUTATION_ERRORS } from './errors.js';
import { decodeId } from './ids.js';
import { AccountRef } from './accounts.js';
import { BudgetWindowEnum, OrgUnitRef } from './org.js';
import { personVisible } from './groups.js';
import { budgetCountersVisible, requireVisibleAccount, requireVisibleUnit, visibleAccount, visibleAccountIds, visibleUnit } from './visibility.js';
import type { GraphQLContext } from './context.js';
import { ValidationError } from '../errors.js';
import type { BudgetUsage } from '../budgets/budgets.js';
import { groupBudgetUsage, groupBudgetsOn, setGroupBudget, setTagKeys, tagKeys, type GroupBudgetRow } from '../tags/tags.js';

/** Whether the caller may see a group budget's limit and usage: its unit's counters, and for a person budget, that person's. */
async function countersVisible(ctx: GraphQLContext, b: GroupBudgetRow): Promise<boolean> {
  return (await budgetCountersVisible(ctx, b)) && (b.person === null || personVisible(ctx.actor!, b.person));
}

/** A group budget's usage now, read once per row of a request (usedCreditSeconds and the window bounds share it). */
const usageOfRow = new WeakMap<GroupBudgetRow, Promise<BudgetUsage>>();
function usageOf(ctx: GraphQLContext, b: GroupBudgetRow): Promise<BudgetUsage> {
  let usage = usageOfRow.get(b);
  if (!usage) usageOfRow.set(b, (usage = groupBudgetUsage(ctx.db, b, ctx.now)));
  return usage;
}

const GroupBudgetRef = builder.objectRef<GroupBudgetRow>('GroupBudget').implement({
  description:
    "A HARD cap on one group of jobs within a unit's subtree: those carrying a tag value (e.g. campaign=spring), or those of one person. Enforced at admission like a unit's HARD budget (BudgetExceededError with reason TAG or PERSON).",
  fields: (t) => ({
    id: t.id({ description: 'Global id.', resolve: (b) => encodeGlobalID('GroupBudget', b.id) }),
    orgUnit: t.field({ type: OrgUnitRef, nullable: true, description: 'The unit whose subtree it covers.', resolve: (b, _a, ctx) => visibleUnit(ctx, b.orgUnitId) }),
    account: t.field({ type: AccountRef, nullable: true, description: 'The account it covers (null: all accounts).', resolve: (b, _a, ctx) => visibleAccount(ctx, b.accountId) }),
    window: t.field({ type: BudgetWindowEnum, description: 'The window usage is counted over.', resolve: (b) => b.window }),
    tagKey: t.exposeString('tagKey', { nullable: true, description: 'A tag budget: the key.' }),
    tagValue: t.exposeString('tagValue', { nullable: true, description: 'A tag budget: the value.' }),
    person: t.exposeString('person', { nullable: true, description: 'A person budget: the person (`user:<end user>` or a subject such as `idp:<sub>`).' }),
    alertThresholds: t.exposeIntList('alertThresholds', { description: 'Percentages of the limit at which budget.threshold_crossed is told.' }),
    windowFrom: t.string({
      description:
        "First day (YYYY-MM-DD: DAILY, WEEKLY, CUSTOM) or period (YYYY-MM: the others) of the current window, inclusive, in the account's time zone (UTC for a budget over all accounts, whose accounts each count their own).",
      resolve: async (b, _a, ctx) => (await usageOf(ctx, b)).windowFrom,
    }),
    windowTo: t.string({
      description: 'Last day or period of the current window, inclusive (for CUSTOM: the day before the windowTo it was set with).',
      resolve: async (b, _a, ctx) => (await usageOf(ctx, b)).windowTo,
    }),
    limitCreditSeconds: t.field({
      type: 'CreditSeconds',
      nullable: true,
      description: "The limit. Null above the caller's own subtree, and for another person's budget to a MEMBER or SERVICE caller.",
      resolve: async (b, _a, ctx) => ((await countersVisible(ctx, b)) ? b.limitMicroCs : null),
    }),
    usedCreditSeconds: t.field({
      type: 'CreditSeconds',
      nullable: true,
      description: 'Open holds plus settled usage in the current window, as admission counts them (null where limitCreditSeconds is).',
      resolve: async (b, _a, ctx) => {
        if (!(await countersVisible(ctx, b))) return null;
        const usage = await usageOf(ctx, b);
        return usage.reservedMicroCs + usage.settledMicroCs;
      },
    }),
  }),
});

builder.objectFields(OrgUnitRef, (t) => ({
  groupBudgets: t.field({
    type: [GroupBudgetRef],
    description: 'Budgets on a tag value or a person set on this unit (those over all accounts, and those of accounts the caller may see).',
    resolve: async (u, _a, ctx) => {
      const visible = await visibleAccountIds(ctx);
      return (await groupBudgetsOn(ctx.db, [u.id])).filter((b) => b.accountId === null || visible === 'all' || visible.includes(b.accountId));
    },
  }),
}));

builder.queryFields((t) => ({
  tagKeys: t.stringList({
    authScopes: { authenticated: true },
    description: "The tag keys jobs may carry (the organization's allowlist), sorted.",
    resolve: (_r, _a, ctx) => tagKeys(ctx.db),
  }),
}));

builder.mutationFields((t) => ({
  setTagKeys: t.fieldWithInput({
    type: builder.simpleObject('SetTagKeysPayload', {
      description: 'The allowlist as set.',
      fields: (f) => ({ keys: f.stringList({ description: 'The keys, sorted.' }) }),
    }),
    errors: { types: MUTATION_ERRORS },
    authScopes: { finance: true },
    description:
      "Replaces the organization's allowlist of tag keys (ADMIN, FINANCE). A key taken off stays on the jobs that carry it; new jobs may no longer use it. Audited.",
    input: { keys: t.input.stringList({ required: true, description: 'Keys: a lower-case letter, then up to 63 of a-z 0-9 _ - . : (at most 100).' }) },
    resolve: async (_r, { input }, ctx) => ({ keys: await ctx.db.transaction((tx) => setTagKeys(tx, ctx.actor!, input.keys)) }),
  }),
  setGroupBudget: t.fieldWithInput({
    type: builder.simpleObject('SetGroupBudgetPayload', {
      description: 'The budget as set.',
      fields: (f) => ({ budget: f.field({ type: GroupBudgetRef, description: 'The budget.' }) }),
    }),
    errors: { types: MUTATION_ERRORS },
    authScopes: (_r, { input }) => ({ canSetBudget: decodeId(String(input.orgUnitId), 'OrgUnit') }),
    description:
      "Creates or replaces the HARD budget of a tag value (tagKey + tagValue) or of a person within a unit's subtree, for an account (or all) and a window (any of a unit budget's, with its thresholds): who may set the unit's budgets may set these. Audited.",
    input: {
      orgUnitId: t.input.id({ required: true, description: 'Global id of the unit (the organization: the whole company).' }),
      accountId: t.input.id({ required: false, description: 'Global id of the account; omitted: all accounts.' }),
      window: t.input.field({ type: BudgetWindowEnum, required: true, description: "Window, in the account's time zone, as a unit budget's (no rollover)." }),
      windowFrom: t.input.string({ required: false, description: "CUSTOM only (and required): the first day of the window, YYYY-MM-DD in the account's time zone, inclusive." }),
      windowTo: t.input.string({ required: false, description: 'CUSTOM only (and required): the day the window ends, YYYY-MM-DD, exclusive (after windowFrom).' }),
      alertThresholds: t.input.intList({ required: false, description: 'Percentages of the limit (default 50, 80, 100).' }),
      tagKey: t.input.string({ required: false, description: "A tag budget: the key (in the organization's allowlist)." }),
      tagValue: t.input.string({ required: false, description: 'A tag budget: the value.' }),
      person: t.input.string({ required: false, description: 'A person budget (instead of a tag): `user:<end user>`, or a subject such as `idp:<sub>`.' }),
      limitCreditSeconds: t.input.field({ type: 'CreditSeconds', required: false, description: 'Limit in credit-seconds (or give limitUsd).' }),
      limitUsd: t.input.field({ type: 'Usd', required: false, description: "Limit in US dollars, converted as setBudget's (one account only)." }),
    },
    resolve: async (_r, { input }, ctx) => {
      const unit = await requireVisibleUnit(ctx, decodeId(String(input.orgUnitId), 'OrgUnit'));
      const accountId = input.accountId != null ? (await requireVisibleAccount(ctx, decodeId(String(input.accountId), 'Account'))).id : null;
      const isTag = input.tagKey != null || input.tagValue != null;
      if (isTag === (input.person != null)) throw new ValidationError('person', 'give either tagKey and tagValue, or person');
      if (isTag && (input.tagKey == null || input.tagValue == null)) throw new ValidationError('tagKey', 'a tag budget needs both tagKey and tagValue');
      const budget = await ctx.db.transaction((tx) =>
        setGroupBudget(
          tx,
          ctx.actor!,
          {
            orgUnitId: unit.id,
            accountId,
            window: input.window,
            group: isTag ? { tagKey: input.tagKey!, tagValue: input.tagValue! } : { person: input.person! },
            limitCreditSeconds: input.limitCreditSeconds ?? null,
            limitUsd: input.limitUsd ?? null,
            windowFrom: input.windowFrom ?? null,
            windowTo: input.windowTo ?? null,
            alertThresholds: input.alertThresholds ?? null,
          },
          ctx.now,
        ),
      );
      return { budget };
    },
  }),
}));

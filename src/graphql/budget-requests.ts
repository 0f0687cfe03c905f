// Budget requests and transfers (docs/budgets.md, Requests and transfers). A caller a budget binds asks for more; who
// may set the budget approves or rejects; who may set two budgets moves limit between them. A request reads as not
// found to everyone but its requester and its deciders; a budget the caller may not read is not found; a budget or
// request it may read but not act on is a ForbiddenError. Every step is audited.
import { and, desc, eq } from 'drizzle-orm';
import { builder } from './builder.js';
import { MUTATION_ERRORS } from './errors.js';
import { decodeId } from './ids.js';
import { BudgetRef, OrgUnitRef } from './org.js';
import { visibleBudgetRequestsFilter, visibleBudgets, visibleUnit } from './visibility.js';
import type { GraphQLContext } from './context.js';
import { BUDGET_REQUEST_STATUSES, budgetRequestsTable, budgetsTable } from '../db/schema.js';
import { canDecideBudgetRequestOn, canReadBudgetRequest, canRequestBudgetIncreaseOn, canTransferBudgetBetween } from '../auth/actor.js';
import { ForbiddenError, NotFoundError, ValidationError } from '../errors.js';
import { decideBudgetRequest, requestBudgetIncrease, transferBudget, type BudgetRequestRow } from '../budgets/requests.js';
import type { BudgetRow } from '../budgets/budgets.js';

const BudgetRequestStatusEnum = builder.enumType('BudgetRequestStatus', {
  description: 'PENDING: waiting for a decision; APPROVED: the budget was raised; REJECTED: it was not.',
  values: BUDGET_REQUEST_STATUSES,
});

export const BudgetRequestRef = builder.objectRef<BudgetRequestRow>('BudgetRequest');

/** A request the caller may read, or null (reads as not found). */
async function visibleRequest(ctx: GraphQLContext, id: string | null): Promise<BudgetRequestRow | null> {
  if (!id || !ctx.actor) return null;
  const [row] = await ctx.db.select().from(budgetRequestsTable).where(eq(budgetRequestsTable.id, id));
  const unit = row ? await ctx.loaders.unitById.load(row.orgUnitId) : null;
  return row && unit && canReadBudgetRequest(ctx.actor, row, unit) ? row : null;
}

/** A budget the caller may read, or NotFoundError. */
async function requireVisibleBudget(ctx: GraphQLContext, globalId: string): Promise<BudgetRow> {
  const id = decodeId(globalId, 'Budget');
  const [row] = await ctx.db.select().from(budgetsTable).where(eq(budgetsTable.id, id));
  const [visible] = row ? await visibleBudgets(ctx, [row]) : [];
  if (!visible) throw new NotFoundError('Budget', globalId);
  return visible;
}

builder.node(BudgetRequestRef, {
  description: "A request to raise a budget's limit, and its decision.",
  id: { resolve: (r) => r.id },
  loadOne: (id, ctx) => visibleRequest(ctx, id),
  fields: (t) => ({
    budget: t.field({
      type: BudgetRef,
      nullable: true,
      description: 'The budget to raise (null if the caller may no longer read it).',
      resolve: async (r, _a, ctx) => {
        const [row] = await ctx.db.select().from(budgetsTable).where(eq(budgetsTable.id, r.budgetId));
        return row ? ((await visibleBudgets(ctx, [row]))[0] ?? null) : null;
      },
    }),
    orgUnit: t.field({ type: OrgUnitRef, nullable: true, description: "The budget's unit.", resolve: (r, _a, ctx) => visibleUnit(ctx, r.orgUnitId) }),
    amountCreditSeconds: t.field({ type: 'CreditSeconds', description: 'How much more was asked for.', resolve: (r) => r.amountMicroCs }),
    until: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'End of the raise: an approved raise adds to the limit until then, and then stops counting. Null: a permanent raise.',
      resolve: (r) => r.until,
    }),
    reason: t.exposeString('reason', { description: "Why, in the requester's words." }),
    status: t.field({ type: BudgetRequestStatusEnum, description: 'Where it stands.', resolve: (r) => r.status }),
    requestedBy: t.exposeString('requestedBySubject', { description: 'Subject of the caller who asked (`service:<token id>` for an app).' }),
    requestedByRole: t.exposeString('requestedByRole', { description: 'Its role when it asked.' }),
    createdAt: t.field({ type: 'DateTime', description: 'When it was asked.', resolve: (r) => r.createdAt }),
    decidedBy: t.exposeString('decidedBySubject', { nullable: true, description: 'Subject of the caller who decided.' }),
    decidedByRole: t.exposeString('decidedByRole', { nullable: true, description: 'Its role.' }),
    decidedAt: t.field({ type: 'DateTime', nullable: true, description: 'When it was decided.', resolve: (r) => r.decidedAt }),
    decisionNote: t.exposeString('decisionNote', { nullable: true, description: "The decider's note." }),
  }),
});

builder.queryField('budgetRequests', (t) =>
  t.field({
    type: [BudgetRequestRef],
    authScopes: { authenticated: true },
    description:
      "Budget requests, newest first: the caller's own, and those it may decide (ADMIN and FINANCE: all; a MANAGER: those of units below its own). `mine: true` lists only the caller's own.",
    args: {
      status: t.arg({ type: BudgetRequestStatusEnum, required: false, description: 'Only requests in this state (e.g. PENDING: waiting for the caller).' }),
      mine: t.arg.boolean({ required: false, defaultValue: false, description: "Only the caller's own requests." }),
      first: t.arg.int({ required: false, defaultValue: 50, description: 'At most this many (up to GRAPHQL_MAX_PAGE_SIZE).' }),
    },
    resolve: async (_r, args, ctx) => {
      const actor = ctx.actor!;
      const max = ctx.services.config.graphql.maxPageSize;
      const first = args.first ?? 50;
      if (!Number.isInteger(first) || first < 0 || first > max) throw new ValidationError('first', `first must be an integer from 0 to ${max}`);
      return ctx.db
        .select()
        .from(budgetRequestsTable)
        .where(
          and(
            args.mine ? eq(budgetRequestsTable.requestedBySubject, actor.subject) : visibleBudgetRequestsFilter(actor),
            args.status ? eq(budgetRequestsTable.status, args.status) : undefined,
          ),
        )
        .orderBy(desc(budgetRequestsTable.createdAt), desc(budgetRequestsTable.id))
        .limit(first);
    },
  }),
);

const RequestPayload = builder.simpleObject('RequestBudgetIncreasePayload', {
  description: 'The request, PENDING.',
  fields: (f) => ({ request: f.field({ type: BudgetRequestRef, description: 'The new request.' }) }),
});
const DecisionPayload = builder.simpleObject('BudgetRequestDecisionPayload', {
  description: 'The decided request and its budget as it now is.',
  fields: (f) => ({
    request: f.field({ type: BudgetRequestRef, description: 'The request, APPROVED or REJECTED.' }),
    budget: f.field({ type: BudgetRef, description: 'The budget (raised when approved: its limit, or its temporaryCreditSeconds until the raise ends).' }),
  }),
});

const decide = (decision: 'APPROVED' | 'REJECTED') => (t: Parameters<Parameters<typeof builder.mutationFields>[0]>[0]) =>
  t.fieldWithInput({
    type: DecisionPayload,
    errors: { types: MUTATION_ERRORS },
    authScopes: { authenticated: true },
    description:
      decision === 'APPROVED'
        ? "Approves a PENDING budget request: a MANAGER of a unit above the budget's unit, FINANCE, ADMIN; never the requester. A permanent request raises the limit (setBudget's validation); one with `until` adds a temporary raise that ends by itself. Once only: a decided request is a ValidationError. Audited; notifies (budget.increase_decided)."
        : 'Rejects a PENDING budget request: who may approve it. Once only. Audited; notifies (budget.increase_decided).',
    input: {
      requestId: t.input.id({ required: true, description: 'Global id of the request.' }),
      note: t.input.string({ required: false, description: 'A note for the requester.' }),
    },
    resolve: async (_r, { input }, ctx) => {
      const actor = ctx.actor!;
      const request = await visibleRequest(ctx, decodeId(String(input.requestId), 'BudgetRequest'));
      if (!request) throw new NotFoundError('BudgetRequest', String(input.requestId));
      const unit = (await ctx.loaders.unitById.load(request.orgUnitId))!;
      if (request.requestedBySubject === actor.subject) throw new ForbiddenError('the requester cannot decide its own request');
      if (!canDecideBudgetRequestOn(actor, unit)) throw new ForbiddenError("only ADMIN, FINANCE, or a MANAGER of a unit above the budget's unit, decide its requests");
      const result = await ctx.db.transaction((tx) => decideBudgetRequest(tx, actor, request.id, decision, input.note ?? null, ctx.now));
      return { request: result.request, budget: result.budget };
    },
  });

builder.mutationFields((t) => ({
  requestBudgetIncrease: t.fieldWithInput({
    type: RequestPayload,
    errors: { types: MUTATION_ERRORS },
    authScopes: { authenticated: true },
    description:
      "Asks for a raise of a budget that binds the caller: a SERVICE token of a project under its unit, a MEMBER, or a MANAGER of the unit or below it (those above it, FINANCE and ADMIN use setBudget). With `until`, the raise is temporary. Audited; notifies the approvers' channels (budget.increase_requested).",
    input: {
      budgetId: t.input.id({ required: true, description: 'Global id of the budget (a BudgetExceededError names it).' }),
      amountCreditSeconds: t.input.field({ type: 'CreditSeconds', required: true, description: 'How much more limit, in credit-seconds.' }),
      until: t.input.field({ type: 'DateTime', required: false, description: 'End of a temporary raise; omitted: permanent.' }),
      reason: t.input.string({ required: true, description: 'Why (shown to the approvers).' }),
    },
    resolve: async (_r, { input }, ctx) => {
      const actor = ctx.actor!;
      const budget = await requireVisibleBudget(ctx, String(input.budgetId));
      const unit = (await ctx.loaders.unitById.load(budget.orgUnitId))!;
      if (!canRequestBudgetIncreaseOn(actor, unit)) {
        throw new ForbiddenError('only a caller the budget binds and that cannot set it asks for more; ADMIN, FINANCE and MANAGERs above its unit use setBudget');
      }
      const request = await ctx.db.transaction((tx) =>
        requestBudgetIncrease(tx, actor, { budget, amountCreditSeconds: input.amountCreditSeconds, until: input.until ?? null, reason: input.reason }, ctx.now),
      );
      return { request };
    },
  }),
  approveBudgetRequest: decide('APPROVED')(t),
  rejectBudgetRequest: decide('REJECTED')(t),
  transferBudget: t.fieldWithInput({
    type: builder.simpleObject('TransferBudgetPayload', {
      description: 'Both budgets as they now are.',
      fields: (f) => ({
        from: f.field({ type: BudgetRef, description: 'The budget that gave limit.' }),
        to: f.field({ type: BudgetRef, description: 'The budget that received it.' }),
      }),
    }),
    errors: { types: MUTATION_ERRORS },
    authScopes: { authenticated: true },
    description:
      'Moves limit between the budgets of two units on different branches, of the same window and account: ADMIN, FINANCE, or a MANAGER of a common unit above both. Both limits change in one transaction; the source never falls below its usage in its window (settled + open holds). Audited.',
    input: {
      fromBudgetId: t.input.id({ required: true, description: 'Global id of the budget to take limit from.' }),
      toBudgetId: t.input.id({ required: true, description: 'Global id of the budget to give it to.' }),
      amountCreditSeconds: t.input.field({ type: 'CreditSeconds', required: true, description: 'How much limit to move.' }),
      reason: t.input.string({ required: true, description: 'Why (kept in the audit trail).' }),
    },
    resolve: async (_r, { input }, ctx) => {
      const actor = ctx.actor!;
      const from = await requireVisibleBudget(ctx, String(input.fromBudgetId));
      const to = await requireVisibleBudget(ctx, String(input.toBudgetId));
      const [fromUnit, toUnit] = await Promise.all([ctx.loaders.unitById.load(from.orgUnitId), ctx.loaders.unitById.load(to.orgUnitId)]);
      if (!canTransferBudgetBetween(actor, fromUnit!, toUnit!)) {
        throw new ForbiddenError("only ADMIN, FINANCE, or a MANAGER of a unit above both budgets' units, move limit between them");
      }
      return ctx.db.transaction((tx) => transferBudget(tx, actor, from.id, to.id, input.amountCreditSeconds, input.reason, ctx.now));
    },
  }),
}));

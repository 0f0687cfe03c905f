// Budget requests and transfers (docs/budgets.md, Requests and transfers). A caller a budget binds asks for more
// (an amount, optionally until an instant, and why); a caller who may set the budget approves or rejects it once. A
// permanent raise goes through setBudget (its validation); a raise with an `until` is a grant (budget_grants) that
// adds to the limit while it runs and simply stops counting afterwards. A transfer moves limit between the budgets of
// two units under a common parent, never leaving the source below what its window already used. Each step writes its
// audit event, and requests and decisions their money events, in the transaction of the change.
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { queryRows, toBigInt } from '../db/client.js';
import { budgetGrantsTable, budgetRequestsTable, budgetsTable, orgUnitsTable } from '../db/schema.js';
import { ForbiddenError, NotFoundError, ValidationError } from '../errors.js';
import { MAX_INPUT_MICRO_CS } from '../validation.js';
import { formatCreditSeconds, MICRO_PER_CS, secondsToMicro } from '../primitives/money.js';
import { recordAudit, type AuditActor } from '../audit/audit.js';
import { recordMoneyEvent } from '../notifications/events.js';
import { budgetsWithUsage, setBudget, type BudgetRow } from './budgets.js';

export type BudgetRequestRow = typeof budgetRequestsTable.$inferSelect;
export type BudgetGrantRow = typeof budgetGrantsTable.$inferSelect;

const MAX_REASON = 1000;

/** A positive amount of credit-seconds (the CreditSeconds scalar's string) in micro-credit-seconds, at most the input maximum. */
export function positiveAmount(value: string, field: string): bigint {
  let micro: bigint;
  try {
    micro = secondsToMicro(value.trim());
  } catch {
    throw new ValidationError(field, `${field} must be a positive decimal number of credit-seconds`);
  }
  if (micro <= 0n) throw new ValidationError(field, `${field} must be more than 0`);
  if (micro > MAX_INPUT_MICRO_CS) throw new ValidationError(field, `${field} must be at most ${MAX_INPUT_MICRO_CS / MICRO_PER_CS} credit-seconds`);
  return micro;
}

function checkText(value: string | null | undefined, field: string, required: boolean): string | null {
  const trimmed = (value ?? '').trim();
  if (trimmed.length === 0) {
    if (required) throw new ValidationError(field, `${field} is required: say why`);
    return null;
  }
  if (trimmed.length > MAX_REASON || /[\u0000-\u0008\u000b-\u001f\u007f]/.test(trimmed)) {
    throw new ValidationError(field, `${field} must be at most ${MAX_REASON} printable characters`);
  }
  return trimmed;
}

/** The request as audited and sent in money events: amounts as micro-credit-second strings, instants ISO. */
function requestFacts(r: BudgetRequestRow): Record<string, unknown> {
  return {
    requestId: r.id,
    budgetId: r.budgetId,
    orgUnitId: r.orgUnitId,
    amountMicroCs: r.amountMicroCs.toString(),
    until: r.until?.toISOString() ?? null,
    reason: r.reason,
    status: r.status,
    requestedBy: r.requestedBySubject,
    requestedByRole: r.requestedByRole,
    decidedBy: r.decidedBySubject,
    decisionNote: r.decisionNote,
  };
}

export interface RequestIncreaseInput {
  budget: BudgetRow;
  amountCreditSeconds: string;
  until: Date | null;
  reason: string;
}

/** Writes a PENDING request, its audit event and its `budget.increase_requested` money event. */
export async function requestBudgetIncrease(tx: Db, actor: AuditActor, input: RequestIncreaseInput, now: Date): Promise<BudgetRequestRow> {
  const amount = positiveAmount(input.amountCreditSeconds, 'amountCreditSeconds');
  if (input.until && input.until.getTime() <= now.getTime()) throw new ValidationError('until', 'until must be in the future');
  const reason = checkText(input.reason, 'reason', true)!;
  const [request] = await tx
    .insert(budgetRequestsTable)
    .values({
      budgetId: input.budget.id,
      orgUnitId: input.budget.orgUnitId,
      amountMicroCs: amount,
      until: input.until,
      reason,
      requestedBySubject: actor.subject,
      requestedByRole: actor.role,
      requestedByTokenId: actor.tokenId,
      createdAt: now,
    })
    .returning();
  await recordAudit(tx, actor, { action: 'budgetRequest.create', entityType: 'BudgetRequest', entityId: request!.id, before: null, after: request });
  await recordMoneyEvent(tx, {
    kind: 'budget.increase_requested',
    dedupeKey: request!.id,
    orgUnitId: request!.orgUnitId,
    data: { ...requestFacts(request!), limitMicroCs: input.budget.limitMicroCs.toString(), window: input.budget.window },
  });
  return request!;
}

/** The budget with a new standing limit, everything else as it is (window, dates, rollover), through setBudget's validation. */
function withLimit(tx: Db, b: BudgetRow, limit: bigint, now: Date): Promise<BudgetRow> {
  return setBudget(
    tx,
    {
      orgUnitId: b.orgUnitId,
      accountId: b.accountId,
      window: b.window,
      limitCreditSeconds: formatCreditSeconds(limit),
      enforcement: b.enforcement,
      allowOverage: b.allowOverage,
      alertThresholds: b.alertThresholds,
      windowFrom: b.windowFrom,
      windowTo: b.windowTo,
      rolloverCapCreditSeconds: b.rolloverCapMicroCs === null ? null : formatCreditSeconds(b.rolloverCapMicroCs),
    },
    now,
  );
}

/** What a decision changed: the request, and on approval the budget (a permanent raise) or the grant (a temporary one). */
export interface Decision {
  request: BudgetRequestRow;
  budget: BudgetRow;
  grant: BudgetGrantRow | null;
}

/**
 * Approves or rejects a PENDING request, once: the request row is claimed by an UPDATE … WHERE status = 'PENDING',
 * so of two concurrent decisions exactly one finds it pending (the other waits for its row lock, then finds it
 * decided). The requester never decides its own request. An approval changes the budget in the same transaction,
 * under the budget's row lock (the one the admission takes), with setBudget's validation for a permanent raise.
 */
export async function decideBudgetRequest(
  tx: Db,
  actor: AuditActor,
  requestId: string,
  decision: 'APPROVED' | 'REJECTED',
  note: string | null,
  now: Date,
): Promise<Decision> {
  const decisionNote = checkText(note, 'note', false);
  const [pending] = await tx.select().from(budgetRequestsTable).where(eq(budgetRequestsTable.id, requestId)).for('update');
  if (!pending) throw new NotFoundError('BudgetRequest', requestId);
  if (pending.requestedBySubject === actor.subject) throw new ForbiddenError('the requester cannot decide its own request');
  if (pending.status !== 'PENDING') throw new ValidationError('requestId', `the request was already ${pending.status.toLowerCase()}`);
  const [budget] = await tx.select().from(budgetsTable).where(eq(budgetsTable.id, pending.budgetId)).for('update');
  if (!budget) throw new NotFoundError('Budget', pending.budgetId);

  let after = budget;
  let grant: BudgetGrantRow | null = null;
  if (decision === 'APPROVED') {
    if (pending.until === null) {
      after = await withLimit(tx, budget, budget.limitMicroCs + pending.amountMicroCs, now);
    } else {
      if (pending.until.getTime() <= now.getTime()) throw new ValidationError('requestId', 'the raise was asked until an instant that has passed');
      const [{ granted } = { granted: '0' }] = await queryRows<{ granted: string }>(
        tx,
        sql`select gateway_budget_granted(${budget.id}::uuid, ${now.toISOString()}::timestamptz)::text as granted`,
      );
      if (budget.limitMicroCs + toBigInt(granted) + pending.amountMicroCs > MAX_INPUT_MICRO_CS) {
        throw new ValidationError('requestId', `the limit with its raises must be at most ${MAX_INPUT_MICRO_CS / MICRO_PER_CS} credit-seconds`);
      }
      const [inserted] = await tx
        .insert(budgetGrantsTable)
        .values({ budgetId: budget.id, requestId: pending.id, amountMicroCs: pending.amountMicroCs, until: pending.until, createdAt: now })
        .returning();
      grant = inserted!;
      // The budget row changes too, so that live subscribers of the unit re-read its budgets; naming its limit (the
      // same) makes budgets_money_events judge its thresholds again with the raise, resolving those it lifts.
      const [touched] = await tx
        .update(budgetsTable)
        .set({ limitMicroCs: budget.limitMicroCs, updatedAt: now })
        .where(eq(budgetsTable.id, budget.id))
        .returning();
      after = touched!;
    }
  }
  const [request] = await tx
    .update(budgetRequestsTable)
    .set({ status: decision, decidedBySubject: actor.subject, decidedByRole: actor.role, decidedAt: now, decisionNote })
    .where(and(eq(budgetRequestsTable.id, pending.id), eq(budgetRequestsTable.status, 'PENDING')))
    .returning();
  await recordAudit(tx, actor, {
    action: decision === 'APPROVED' ? 'budgetRequest.approve' : 'budgetRequest.reject',
    entityType: 'BudgetRequest',
    entityId: pending.id,
    before: { request: pending, budget },
    after: { request, budget: after, grant },
  });
  await recordMoneyEvent(tx, {
    kind: 'budget.increase_decided',
    dedupeKey: pending.id,
    orgUnitId: pending.orgUnitId,
    data: { ...requestFacts(request!), limitMicroCs: after.limitMicroCs.toString(), window: budget.window },
  });
  return { request: request!, budget: after, grant };
}

export interface Transfer {
  from: BudgetRow;
  to: BudgetRow;
}

/**
 * Moves `amount` of standing limit from one budget to another (same window, same account or both over all accounts,
 * units under a common parent, neither above the other). Both rows are locked in id order (the admission's order),
 * so an admission into the source either committed before (its hold is in the usage read here) or runs after with
 * the lowered limit. The source keeps at least its usage as the admission counts it (gateway_budget_usage: settled
 * in its current window plus every open hold) in its standing limit: temporary raises do not count towards that,
 * since they end on their own, nor does a MONTHLY budget's rollover, which is carried from the standing limit.
 */
export async function transferBudget(tx: Db, actor: AuditActor, fromId: string, toId: string, amountCreditSeconds: string, reason: string, now: Date): Promise<Transfer> {
  const amount = positiveAmount(amountCreditSeconds, 'amountCreditSeconds');
  const why = checkText(reason, 'reason', true)!;
  if (fromId === toId) throw new ValidationError('toBudgetId', 'a transfer needs two different budgets');
  const locked = await tx.select().from(budgetsTable).where(inArray(budgetsTable.id, [fromId, toId])).orderBy(budgetsTable.id).for('update');
  const from = locked.find((b) => b.id === fromId);
  const to = locked.find((b) => b.id === toId);
  if (!from) throw new NotFoundError('Budget', fromId);
  if (!to) throw new NotFoundError('Budget', toId);
  if (from.window !== to.window || from.accountId !== to.accountId) {
    throw new ValidationError('toBudgetId', 'both budgets must have the same window and the same account (or both be over all accounts)');
  }
  const units = await tx.select({ id: orgUnitsTable.id, path: orgUnitsTable.path, name: orgUnitsTable.name }).from(orgUnitsTable).where(inArray(orgUnitsTable.id, [from.orgUnitId, to.orgUnitId]));
  const fromUnit = units.find((u) => u.id === from.orgUnitId)!;
  const toUnit = units.find((u) => u.id === to.orgUnitId)!;
  // A unit's usage counts in every budget above it: moving limit along one branch would move nothing between units.
  if (fromUnit.path.includes(toUnit.id) || toUnit.path.includes(fromUnit.id)) {
    throw new ValidationError('toBudgetId', 'the two units must be on different branches (neither above the other)');
  }
  const [source] = await budgetsWithUsage(tx, { budgetIds: [from.id] }, now);
  const used = source!.usage.settledMicroCs + source!.usage.reservedMicroCs;
  const remaining = from.limitMicroCs - amount;
  if (remaining < 0n || remaining < used) {
    const movable = from.limitMicroCs - (used > 0n ? used : 0n);
    throw new ValidationError(
      'amountCreditSeconds',
      `the transfer would leave "${fromUnit.name}" with a limit of ${formatCreditSeconds(remaining)} cs, below its usage of ${formatCreditSeconds(used)} cs in the window; at most ${formatCreditSeconds(movable > 0n ? movable : 0n)} cs can be moved`,
    );
  }
  if (to.limitMicroCs + amount > MAX_INPUT_MICRO_CS) throw new ValidationError('amountCreditSeconds', `the limit must be at most ${MAX_INPUT_MICRO_CS / MICRO_PER_CS} credit-seconds`);
  const fromAfter = await withLimit(tx, from, remaining, now);
  const toAfter = await withLimit(tx, to, to.limitMicroCs + amount, now);
  await recordAudit(tx, actor, {
    action: 'budget.transfer',
    entityType: 'Budget',
    entityId: from.id,
    before: { from, to, amountMicroCs: amount, reason: why, fromUsageMicroCs: used },
    after: { from: fromAfter, to: toAfter },
  });
  return { from: fromAfter, to: toAfter };
}

// Governance by tag and by person: the organization's allowlist of tag keys, and the HARD budgets on a tag value (a
// campaign) or on a person within a unit (group_budgets). The admission function enforces both
// (gateway_check_group_budgets) over the unit budgets' windows (gateway_budget_bounds); this module writes them and
// reads their usage from the tag and person rollups (per period, and per day for the day windows).
import { and, asc, eq, inArray, isNull, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { queryRows, toBigInt } from '../db/client.js';
import { accountsTable, groupBudgetsTable, orgUnitsTable, tagKeysTable, type BudgetWindow } from '../db/schema.js';
import { NotFoundError, ValidationError } from '../errors.js';
import { recordAudit, type AuditActor } from '../audit/audit.js';
import { MAX_INPUT_MICRO_CS, requireLabel, requireTagKey } from '../validation.js';
import { accountsNow, alertThresholdsOf, customWindowOf, usdLimitToMicroCs, type BudgetUsage } from '../budgets/budgets.js';
import { MICRO_PER_CS, secondsToMicro } from '../primitives/money.js';

export type GroupBudgetRow = typeof groupBudgetsTable.$inferSelect;

/** Most keys an organization may allow. */
export const MAX_TAG_KEYS = 100;

async function organizationId(db: Db): Promise<string> {
  const [root] = await db.select({ id: orgUnitsTable.id }).from(orgUnitsTable).where(isNull(orgUnitsTable.parentId));
  if (!root) throw new ValidationError('keys', 'the organization does not exist yet');
  return root.id;
}

/** The tag keys jobs of the organization may carry, sorted. */
export async function tagKeys(db: Db): Promise<string[]> {
  const rows = await db
    .select({ key: tagKeysTable.key })
    .from(tagKeysTable)
    .innerJoin(orgUnitsTable, and(eq(orgUnitsTable.id, tagKeysTable.organizationId), isNull(orgUnitsTable.parentId)))
    .orderBy(asc(tagKeysTable.key));
  return rows.map((r) => r.key);
}

/**
 * Replaces the organization's allowlist. A key taken off it stays on the jobs that carry it (and in their reports);
 * new jobs may no longer use it. Audited.
 */
export async function setTagKeys(tx: Db, actor: AuditActor, keys: readonly string[]): Promise<string[]> {
  const wanted = [...new Set(keys.map((k, i) => requireTagKey(k, `keys.${i}`)))].sort();
  if (wanted.length > MAX_TAG_KEYS) throw new ValidationError('keys', `an organization allows at most ${MAX_TAG_KEYS} tag keys`);
  const org = await organizationId(tx);
  const before = (await tx.select({ key: tagKeysTable.key }).from(tagKeysTable).where(eq(tagKeysTable.organizationId, org)).for('update')).map((r) => r.key).sort();
  const gone = before.filter((k) => !wanted.includes(k));
  if (gone.length > 0) await tx.delete(tagKeysTable).where(and(eq(tagKeysTable.organizationId, org), inArray(tagKeysTable.key, gone)));
  const added = wanted.filter((k) => !before.includes(k));
  if (added.length > 0) await tx.insert(tagKeysTable).values(added.map((key) => ({ organizationId: org, key, createdBy: actor.subject })));
  await recordAudit(tx, actor, { action: 'tagKeys.set', entityType: 'OrgUnit', entityId: org, before: { keys: before }, after: { keys: wanted } });
  return wanted;
}

export interface SetGroupBudgetInput {
  orgUnitId: string;
  accountId: string | null;
  window: BudgetWindow;
  /** Exactly one group: a tag value, or a person. */
  group: { tagKey: string; tagValue: string } | { person: string };
  limitCreditSeconds: string | null;
  limitUsd: string | null;
  /** CUSTOM only (and required): the first day (inclusive) and the end day (exclusive), `YYYY-MM-DD`, account-local. */
  windowFrom?: string | null;
  windowTo?: string | null;
  /** Percentages of the limit at which `budget.threshold_crossed` is told (default 50, 80, 100), as a unit budget's. */
  alertThresholds?: readonly number[] | null;
}

/**
 * Creates or replaces the budget of one group (a tag value or a person) within a unit, for an account or all, over
 * any window of a unit budget (its CUSTOM dates and thresholds validated as setBudget's; no rollover). There is one
 * budget per unit, account, window and group: setting a CUSTOM one again moves its dates. Audited.
 */
export async function setGroupBudget(tx: Db, actor: AuditActor, input: SetGroupBudgetInput, now = new Date()): Promise<GroupBudgetRow> {
  const [unit] = await tx.select({ id: orgUnitsTable.id }).from(orgUnitsTable).where(eq(orgUnitsTable.id, input.orgUnitId));
  if (!unit) throw new NotFoundError('OrgUnit', input.orgUnitId);
  if (input.accountId) {
    const [account] = await tx.select({ id: accountsTable.id }).from(accountsTable).where(eq(accountsTable.id, input.accountId));
    if (!account) throw new NotFoundError('Account', input.accountId);
  }
  const { windowFrom, windowTo } = customWindowOf(input.window, input.windowFrom, input.windowTo);
  const alertThresholds = alertThresholdsOf(input.alertThresholds);
  const group = input.group;
  if ('tagKey' in group) {
    requireTagKey(group.tagKey, 'tagKey');
    requireLabel(group.tagValue, 'tagValue');
    if (!(await tagKeys(tx)).includes(group.tagKey)) throw new ValidationError('tagKey', `tag key "${group.tagKey}" is not in the organization's allowlist (setTagKeys)`);
  } else {
    requireLabel(group.person, 'person');
  }
  if ((input.limitCreditSeconds === null) === (input.limitUsd === null)) throw new ValidationError('limitCreditSeconds', 'give exactly one of limitCreditSeconds and limitUsd');
  let limit: bigint;
  if (input.limitUsd !== null) limit = await usdLimitToMicroCs(tx, input.accountId, input.limitUsd, now);
  else {
    try {
      if (!/^\d{1,15}(\.\d{1,6})?$/.test(input.limitCreditSeconds!.trim())) throw new Error('format');
      limit = secondsToMicro(input.limitCreditSeconds!);
    } catch {
      throw new ValidationError('limitCreditSeconds', 'limitCreditSeconds must be a non-negative decimal with at most 6 decimals');
    }
  }
  if (limit > MAX_INPUT_MICRO_CS) throw new ValidationError('limitCreditSeconds', `the limit must be at most ${MAX_INPUT_MICRO_CS / MICRO_PER_CS} credit-seconds`);
  const values = {
    orgUnitId: input.orgUnitId,
    accountId: input.accountId,
    window: input.window,
    limitMicroCs: limit,
    tagKey: 'tagKey' in group ? group.tagKey : null,
    tagValue: 'tagKey' in group ? group.tagValue : null,
    person: 'person' in group ? group.person : null,
    alertThresholds,
    windowFrom,
    windowTo,
    updatedAt: now,
  };
  // The budget row is locked while it changes: an admission checking it waits, and sees the new limit.
  const [before] = await tx
    .select()
    .from(groupBudgetsTable)
    .where(
      and(
        eq(groupBudgetsTable.orgUnitId, values.orgUnitId),
        values.accountId ? eq(groupBudgetsTable.accountId, values.accountId) : isNull(groupBudgetsTable.accountId),
        eq(groupBudgetsTable.window, values.window),
        values.tagKey !== null ? eq(groupBudgetsTable.tagKey, values.tagKey) : isNull(groupBudgetsTable.tagKey),
        values.tagValue !== null ? eq(groupBudgetsTable.tagValue, values.tagValue) : isNull(groupBudgetsTable.tagValue),
        values.person !== null ? eq(groupBudgetsTable.person, values.person) : isNull(groupBudgetsTable.person),
      ),
    )
    .for('update');
  const [after] = before
    ? await tx.update(groupBudgetsTable).set({ limitMicroCs: limit, alertThresholds, windowFrom, windowTo, updatedAt: now }).where(eq(groupBudgetsTable.id, before.id)).returning()
    : await tx.insert(groupBudgetsTable).values(values).returning();
  await recordAudit(tx, actor, { action: 'groupBudget.set', entityType: 'GroupBudget', entityId: after!.id, before: before ?? null, after: after! });
  return after!;
}

/** The group budgets set on these units, by id. */
export async function groupBudgetsOn(db: Db, unitIds: readonly string[]): Promise<GroupBudgetRow[]> {
  if (unitIds.length === 0) return [];
  return db.select().from(groupBudgetsTable).where(inArray(groupBudgetsTable.orgUnitId, [...unitIds])).orderBy(asc(groupBudgetsTable.id));
}

/**
 * A group budget's usage now, computed by the function the admission uses (gateway_group_budget_usage): every open
 * hold of the group within the unit, plus what settled in each account's window (gateway_budget_bounds). The window
 * shown is the budget's account's (UTC's for a budget over all accounts). Group budgets have no rollover and no grants.
 * Day windows (DAILY, WEEKLY, CUSTOM) are summed over the daily group rollups, the others over the period ones.
 */
export async function groupBudgetUsage(db: Db, budget: GroupBudgetRow, now: Date): Promise<BudgetUsage> {
  const { cur, shownFor } = accountsNow(now);
  const shown = shownFor(sql`g.account_id`);
  const [row] = await queryRows<{ usage: Record<string, string>; bounds: Record<string, string> }>(
    db,
    sql`select gateway_json_row(to_jsonb(gateway_group_budget_usage(g, ${cur}))) as usage,
               to_jsonb(gateway_budget_bounds(gateway_group_budget_as_budget(g), ${shown} ->> 'period', (${shown} ->> 'day')::date)) as bounds
          from group_budgets g where g.id = ${budget.id}`,
  );
  if (!row) throw new NotFoundError('GroupBudget', budget.id);
  return {
    reservedMicroCs: toBigInt(row.usage['reserved']!),
    settledMicroCs: toBigInt(row.usage['settled']!),
    carriedMicroCs: 0n,
    grantedMicroCs: 0n,
    windowFrom: row.bounds['w_from']!,
    windowTo: row.bounds['w_to']!,
  };
}

// Usage adjustments: usage made before the gateway existed, or corrections. Each is one ADJUSTMENT ledger
// entry (positive or negative), written like any other movement, plus a record of who and why, audited.
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { accountsTable, ledgerEntriesTable, orgUnitsTable, usageAdjustmentsTable } from '../db/schema.js';
import { NotFoundError, ValidationError } from '../errors.js';
import type { Actor } from '../auth/actor.js';
import { recordAudit } from '../audit/audit.js';
import { recordMovement } from '../ledger/ledger.js';
import { openPeriodFrom } from './closed-periods.js';
import { formatCreditSeconds, parseCreditSeconds } from '../primitives/money.js';
import { dayInPeriod, isValidPeriod } from '../primitives/period.js';

export interface UsageAdjustmentInput {
  orgUnitId: string;
  accountId: string;
  /** The period the usage belongs to; a closed period sends it to the next open one. */
  period: string;
  /** Decimal credit-seconds, negative for a correction downwards. */
  creditSeconds: string;
  reason: string;
}

export interface RecordedAdjustment {
  id: string;
  ledgerEntryId: bigint;
  orgUnitId: string;
  accountId: string;
  requestedPeriod: string;
  /** Where it was booked: the requested period, or the next open one when that was closed. */
  period: string;
  amountMicroCs: bigint;
  reason: string;
  createdBy: string;
  createdAt: Date;
}

export async function recordUsageAdjustment(db: Db, actor: Actor, input: UsageAdjustmentInput): Promise<RecordedAdjustment> {
  if (!isValidPeriod(input.period)) throw new ValidationError('period', 'period must be a month as YYYY-MM');
  const reason = input.reason.trim();
  if (!reason || reason.length > 1000 || reason.includes('\u0000')) throw new ValidationError('reason', 'reason must be 1 to 1000 characters, without NUL characters');
  const amount = parseCreditSeconds(input.creditSeconds.trim(), { allowNegative: true, field: 'creditSeconds' });
  if (amount === 0n) throw new ValidationError('creditSeconds', 'an adjustment of 0 credit-seconds moves nothing');

  return db.transaction(async (tx) => {
    // Lock order as in admission and settlement: the account row first, then (through recordMovement) the rollups.
    const [account] = await tx.select().from(accountsTable).where(eq(accountsTable.id, input.accountId)).for('no key update');
    if (!account) throw new NotFoundError('Account', input.accountId);
    const [unit] = await tx.select({ id: orgUnitsTable.id, path: orgUnitsTable.path }).from(orgUnitsTable).where(eq(orgUnitsTable.id, input.orgUnitId));
    if (!unit) throw new NotFoundError('OrgUnit', input.orgUnitId);
    const period = await openPeriodFrom(tx, account.id, input.period);

    if (amount < 0n) {
      // The unit's own usage of the period may not go below zero: its chargeback line would be a credit.
      const [row] = await tx
        .select({ own: sql<string>`coalesce(sum(${ledgerEntriesTable.amountMicroCs}), 0)::text` })
        .from(ledgerEntriesTable)
        .where(
          and(
            eq(ledgerEntriesTable.accountId, account.id),
            eq(ledgerEntriesTable.orgUnitId, unit.id),
            eq(ledgerEntriesTable.period, period),
            inArray(ledgerEntriesTable.entryType, ['DEBIT', 'ADJUSTMENT']),
          ),
        );
      const own = BigInt(row?.own ?? '0');
      if (own + amount < 0n) {
        throw new ValidationError(
          'creditSeconds',
          `the unit's usage in ${period} is ${formatCreditSeconds(own)} credit-seconds; it cannot be reduced by ${formatCreditSeconds(-amount)}`,
        );
      }
    }

    const note = period === input.period ? reason : `${reason} (for ${input.period}, which is closed)`;
    const ledgerEntryId = await recordMovement(tx, 'ADJUSTMENT', {
      jobId: null,
      accountId: account.id,
      orgUnitId: unit.id,
      path: unit.path,
      period,
      day: dayInPeriod(new Date(), period, account.timezone),
      amountMicroCs: amount,
      note,
    });
    const [record] = await tx
      .insert(usageAdjustmentsTable)
      .values({ ledgerEntryId, requestedPeriod: input.period, reason, createdBy: actor.subject })
      .returning();
    const adjustment: RecordedAdjustment = {
      id: record!.id,
      ledgerEntryId,
      orgUnitId: unit.id,
      accountId: account.id,
      requestedPeriod: input.period,
      period,
      amountMicroCs: amount,
      reason,
      createdBy: actor.subject,
      createdAt: record!.createdAt,
    };
    await recordAudit(tx, actor, {
      action: 'billing.usage.adjust',
      entityType: 'UsageAdjustment',
      entityId: record!.id,
      before: null,
      after: { ...adjustment, creditSeconds: formatCreditSeconds(amount) },
    });
    return adjustment;
  });
}

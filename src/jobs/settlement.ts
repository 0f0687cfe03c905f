// Settlement: one transaction that turns a job's hold into a debit of what HeyGen reported, or releases it.
// Idempotent: a job that is already terminal moves nothing.
import { recordMoneyEvent } from '../notifications/events.js';
import { eq } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { accountsTable, driftNotesTable, jobItemsTable, jobsTable, orgUnitsTable } from '../db/schema.js';
import { dayInPeriod, periodOf } from '../primitives/period.js';
import { formatDecimal, parseDecimalRational } from '../primitives/money.js';
import * as Q from '../primitives/rational.js';
import { openPeriodFrom } from '../billing/closed-periods.js';
import { ValidationError } from '../errors.js';
import { recordMovement } from '../ledger/ledger.js';
import { recordAudit, SYSTEM_ACTOR } from '../audit/audit.js';
import type { Actor } from '../auth/actor.js';
import { isTerminal, nextStatus, type JobEvent } from './lifecycle.js';
import type { JobRow } from './admission.js';
import { redactAndTruncate } from '../secrets/redact.js';
import { DEFAULT_APP_EVENTS, enqueueAppCallbackEvents, type AppEventSettings } from './app-events.js';

export type SettleOutcome =
  /** Every upstream item reached a terminal state; the debit is the sum of the completed items' cost. */
  | { type: 'upstream_terminal' }
  /** HeyGen refused the job for good (definite 4xx): nothing exists upstream, the hold is released. */
  | { type: 'rejected'; code: string; message: string }
  /** A caller cancelled a job that was never forwarded (a mutation: audited in the same transaction). */
  | { type: 'cancelled'; by: Actor }
  /**
   * The gateway gave up on the job: its hold outlived HOLD_TTL_HOURS with HeyGen still not done, or its submission
   * stayed unresolved past HeyGen's idempotency window, or it waited in the queue past QUEUE_TTL_SECONDS (only a job
   * still QUEUED expires so). The hold is released and the job is EXPIRED; when it may exist upstream (it was sent
   * at least once), a drift note says HeyGen may still bill it.
   */
  | { type: 'expired'; reason: 'hold_expired' | 'submit_unresolved' | 'queue_expired'; message: string };

export interface SettleResult {
  job: JobRow;
  /** False when the job was already terminal (a repeated settlement moves nothing). */
  changed: boolean;
}

/** What HeyGen bills for the outputs it completed: their costs and their seconds. */
function billedOutputs(completed: readonly (typeof jobItemsTable.$inferSelect)[]): { actual: bigint; actualSeconds: string } {
  return {
    actual: completed.reduce((sum, item) => sum + (item.costMicroCs ?? 0n), 0n),
    actualSeconds: formatDecimal(Q.sum(completed.map((i) => parseDecimalRational(i.durationSeconds ?? '0')))),
  };
}

/** A job sent at least once may exist upstream, unless it is back in the queue (HeyGen refused it with a 429). */
function mayExistUpstream(job: JobRow): boolean {
  return job.status !== 'QUEUED' && job.submitAttempts > 0;
}

/**
 * `events`: how the app's callback events (written here, in the same transaction, when the job named a callback) are
 * delivered.
 */
export async function settleJob(db: Db, jobId: string, outcome: SettleOutcome, now = new Date(), events: AppEventSettings = DEFAULT_APP_EVENTS): Promise<SettleResult> {
  return db.transaction(async (tx) => {
    const [job] = await tx.select().from(jobsTable).where(eq(jobsTable.id, jobId)).for('update');
    if (!job) throw new Error(`job ${jobId} vanished`);
    if (isTerminal(job.status)) return { job, changed: false };
    // A dispatcher claimed the job after the queue's expiry pass chose it: it is no longer waiting.
    if (outcome.type === 'expired' && outcome.reason === 'queue_expired' && job.status !== 'QUEUED') return { job, changed: false };
    const [account] = await tx.select().from(accountsTable).where(eq(accountsTable.id, job.accountId)).for('no key update');
    const [project] = await tx.select({ path: orgUnitsTable.path }).from(orgUnitsTable).where(eq(orgUnitsTable.id, job.projectId));

    let actual = 0n;
    let actualSeconds: string | null = null;
    let event: JobEvent;
    let failureCode: string | null = null;
    let failureMessage: string | null = null;
    if (outcome.type === 'upstream_terminal') {
      const items = await tx.select().from(jobItemsTable).where(eq(jobItemsTable.jobId, job.id));
      const completed = items.filter((i) => i.status === 'completed');
      if (items.length === 0 || items.some((i) => i.status !== 'completed' && i.status !== 'failed' && i.status !== 'not_found')) {
        throw new Error(`job ${job.id} is not terminal upstream`);
      }
      ({ actual, actualSeconds } = billedOutputs(completed));
      event = completed.length > 0 ? 'UPSTREAM_COMPLETED' : 'UPSTREAM_FAILED';
      const failed = items.filter((i) => i.status !== 'completed');
      if (failed.length > 0) {
        failureCode = completed.length > 0 ? 'partial_failure' : 'upstream_failed';
        failureMessage = failed.map((i) => `${i.language ?? i.upstreamId}: ${i.failureMessage ?? i.status}`).join('; ');
        failureMessage = redactAndTruncate(failureMessage, 1000);
      }
    } else if (outcome.type === 'rejected') {
      event = 'FORWARD_REJECTED';
      failureCode = outcome.code;
      failureMessage = redactAndTruncate(outcome.message, 1000);
    } else if (outcome.type === 'expired') {
      // Outputs HeyGen already completed are billed: they are debited; the rest of the hold is released.
      const completed = (await tx.select().from(jobItemsTable).where(eq(jobItemsTable.jobId, job.id))).filter((i) => i.status === 'completed');
      if (completed.length > 0) ({ actual, actualSeconds } = billedOutputs(completed));
      event = 'EXPIRE';
      failureCode = outcome.reason;
      failureMessage = redactAndTruncate(outcome.message, 1000);
    } else {
      // Only a job no process has started to forward is safe to cancel: anything else may exist upstream.
      // forwardJob and the dispatcher count their attempt under this same row lock, so they cannot interleave. A
      // queued job is not upstream: one back in the queue after HeyGen's 429 was refused by HeyGen, not created.
      if (job.status !== 'QUEUED' && (job.status !== 'RESERVED' || job.submitAttempts > 0)) {
        throw new ValidationError('jobId', `a ${job.status} job cannot be cancelled once it was sent to HeyGen, which bills completed outputs`);
      }
      event = 'CANCEL';
    }
    const status = nextStatus(job.status, event);
    if (!status) throw new Error(`job ${job.id}: ${event} does not apply to ${job.status}`);

    // Usage belongs to the period of its settlement in the account's time zone; should that period already be
    // closed (a settlement racing closePeriod), to the next open one: a closed statement never changes.
    const nowPeriod = periodOf(now, account!.timezone);
    const settledPeriod = actual > 0n ? await openPeriodFrom(tx, account!.id, nowPeriod) : nowPeriod;
    const base = { jobId: job.id, accountId: job.accountId, orgUnitId: job.projectId, path: project!.path };
    if (job.reservedMicroCs > 0n) {
      // Taken back from the day the hold sits on (jobs older than daily rollups: the first day of its period).
      const holdDay = job.holdDay ?? `${job.holdPeriod}-01`;
      await recordMovement(tx, 'RELEASE', { ...base, period: job.holdPeriod, day: holdDay, amountMicroCs: job.reservedMicroCs });
    }
    if (actual > 0n) {
      const day = dayInPeriod(now, settledPeriod, account!.timezone);
      await recordMovement(tx, 'DEBIT', { ...base, period: settledPeriod, day, amountMicroCs: actual });
    }
    const overrun = actual > job.estimatedMicroCs ? actual - job.estimatedMicroCs : 0n;
    const [updated] = await tx
      .update(jobsTable)
      .set({
        status,
        reservedMicroCs: 0n,
        actualSeconds,
        actualMicroCs: actual,
        overrunMicroCs: overrun,
        settledPeriod: actual > 0n ? settledPeriod : null,
        settledAt: now,
        queuedAt: null,
        failureCode,
        failureMessage,
        nextCheckAt: null,
        updatedAt: now,
      })
      .where(eq(jobsTable.id, job.id))
      .returning();
    // Whatever HeyGen bills past the hold is debited above, to the same budgets, at once; the audit trail says so.
    if (overrun > 0n) {
      await recordAudit(tx, SYSTEM_ACTOR, {
        action: 'job.overrun',
        entityType: 'Job',
        entityId: job.id,
        before: { estimatedMicroCs: job.estimatedMicroCs },
        after: { actualMicroCs: actual, overrunMicroCs: overrun, settledPeriod, projectId: job.projectId },
      });
    }
    if (outcome.type === 'expired') {
      const mayStillBill = mayExistUpstream(job);
      if (mayStillBill) {
        await tx
          .insert(driftNotesTable)
          .values({ accountId: job.accountId, jobId: job.id, projectId: job.projectId, period: nowPeriod, reason: outcome.reason, releasedMicroCs: job.reservedMicroCs })
          .onConflictDoNothing();
      }
      await recordAudit(tx, SYSTEM_ACTOR, {
        action: 'job.expire',
        entityType: 'Job',
        entityId: job.id,
        before: { status: job.status, reservedMicroCs: job.reservedMicroCs, holdExpiresAt: job.holdExpiresAt },
        after: { status: updated!.status, releasedMicroCs: job.reservedMicroCs, reason: outcome.reason, mayStillBill },
      });
    }
    if (outcome.type === 'cancelled') {
      await recordAudit(tx, outcome.by, {
        action: 'job.cancel',
        entityType: 'Job',
        entityId: job.id,
        before: { status: job.status, reservedMicroCs: job.reservedMicroCs },
        after: { status: updated!.status, reservedMicroCs: updated!.reservedMicroCs, releasedMicroCs: job.reservedMicroCs },
      });
    }
    // Money events of the end, in the same transaction (docs/notifications.md): the job's end, an overrun, a hold
    // that ran out while HeyGen may still bill.
    const jobData = {
      jobId: job.id, projectId: job.projectId, accountId: job.accountId, kind: job.kind, status: updated!.status,
      estimatedMicroCs: job.estimatedMicroCs.toString(), actualMicroCs: actual.toString(), settledPeriod: actual > 0n ? settledPeriod : null,
    };
    await recordMoneyEvent(tx, { kind: 'job.finished', dedupeKey: job.id, orgUnitId: job.projectId, data: jobData });
    if (overrun > 0n) {
      await recordMoneyEvent(tx, { kind: 'job.overrun', dedupeKey: job.id, orgUnitId: job.projectId, data: { ...jobData, overrunMicroCs: overrun.toString() } });
    }
    if (outcome.type === 'expired' && mayExistUpstream(job)) {
      await recordMoneyEvent(tx, {
        kind: 'hold.overdue',
        dedupeKey: job.id,
        orgUnitId: job.projectId,
        data: { ...jobData, releasedMicroCs: job.reservedMicroCs.toString(), holdExpiresAt: job.holdExpiresAt?.toISOString() ?? null, reason: outcome.reason },
      });
    }
    // The app's news of the end, exactly when the end commits (the outbox delivers it after the commit).
    if (updated!.callback) {
      const items = await tx.select().from(jobItemsTable).where(eq(jobItemsTable.jobId, job.id));
      await enqueueAppCallbackEvents(tx, updated!, items, events, now);
    }
    return { job: updated!, changed: true };
  });
}

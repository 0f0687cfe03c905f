// What the caps could not hold: overruns (HeyGen billed beyond a job's hold, debited at settlement) per project and
// period, and drift notes (holds released on jobs HeyGen may still bill). Both are read by finance; neither moves money.
import { and, eq, gte, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { toBigInt } from '../db/client.js';
import { driftNotesTable, jobsTable } from '../db/schema.js';

export interface OverrunFlag {
  projectId: string;
  accountId: string;
  period: string;
  overrunMicroCs: bigint;
  jobsWithOverrun: number;
  largestOverrunMicroCs: bigint;
}

/** Projects whose overruns settled in `period` (on one account, or all) add up to at least `thresholdMicroCs`, largest first. */
export async function overrunFlags(db: Db, opts: { accountId: string | null; period: string; thresholdMicroCs: bigint }): Promise<OverrunFlag[]> {
  const total = sql<string>`sum(${jobsTable.overrunMicroCs})`;
  const rows = await db
    .select({
      projectId: jobsTable.projectId,
      accountId: jobsTable.accountId,
      overrun: total,
      jobs: sql<string>`count(*)`,
      largest: sql<string>`max(${jobsTable.overrunMicroCs})`,
    })
    .from(jobsTable)
    .where(
      and(
        eq(jobsTable.settledPeriod, opts.period),
        sql`${jobsTable.overrunMicroCs} > 0`,
        opts.accountId ? eq(jobsTable.accountId, opts.accountId) : undefined,
      ),
    )
    .groupBy(jobsTable.projectId, jobsTable.accountId)
    .having(gte(total, opts.thresholdMicroCs > 0n ? opts.thresholdMicroCs.toString() : '1'))
    .orderBy(sql`sum(${jobsTable.overrunMicroCs}) desc`, jobsTable.projectId);
  return rows.map((r) => ({
    projectId: r.projectId,
    accountId: r.accountId,
    period: opts.period,
    overrunMicroCs: toBigInt(r.overrun),
    jobsWithOverrun: Number(r.jobs),
    largestOverrunMicroCs: toBigInt(r.largest),
  }));
}

export type DriftNoteRow = typeof driftNotesTable.$inferSelect;

export async function driftNotes(db: Db, accountId: string, period: string): Promise<DriftNoteRow[]> {
  return db
    .select()
    .from(driftNotesTable)
    .where(and(eq(driftNotesTable.accountId, accountId), eq(driftNotesTable.period, period)))
    .orderBy(driftNotesTable.id);
}

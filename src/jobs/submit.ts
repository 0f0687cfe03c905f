// The one way a job enters the gateway, whatever door it comes through (GraphQL `submitJob`, the HeyGen-compatible
// `/v3` front): admission (every cap, the hold, the idempotency key), then forwarding inline, after the admission
// committed. If this process dies in between, or forwarding fails, the worker forwards it later.
import { eq } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { driverReason, isDatabaseUnavailable } from '../db/client.js';
import { jobItemsTable } from '../db/schema.js';
import type { Actor } from '../auth/actor.js';
import type { Logger } from '../logging.js';
import { admitJob, type AdmissionSettings, type JobRow, type SubmitJobInput } from './admission.js';
import { forwardJob, type JobDeps } from './follow.js';

export interface SubmitDeps {
  db: Db;
  admission: AdmissionSettings;
  jobDeps: JobDeps;
  logger: Logger;
}

export type JobItemRow = typeof jobItemsTable.$inferSelect;

export interface Submitted {
  /** The job as it stands after forwarding was attempted (or, for a replay, as it stands now). */
  job: JobRow;
  /** True when an earlier request with the same idempotency key created it: nothing was admitted or forwarded. */
  replayed: boolean;
}

/**
 * Admits the job under every cap and forwards it at once; a replayed idempotency key returns the earlier job.
 * The admission counts the first submission attempt and hands back the account row it locked, so forwarding
 * starts with HeyGen's call (no statement of its own before it). `onItems` receives the items forwarding wrote.
 */
export async function submitJob(deps: SubmitDeps, actor: Actor, input: SubmitJobInput, onItems?: (jobId: string, items: JobItemRow[]) => void): Promise<Submitted> {
  const { job, replayed, account } = await admitJob(deps.db, actor, input, deps.admission, undefined, { forwardNow: true });
  // A QUEUED job is started by the dispatcher when a slot is its turn (src/jobs/queue.ts).
  if (replayed || job.status !== 'RESERVED') return { job, replayed };
  // If this process dies here, the worker forwards the job when the lease the admission set lapses.
  const claimed = account ? { job, account, ...(onItems ? { onItems: (items: JobItemRow[]) => onItems(job.id, items) } : {}) } : undefined;
  const forwarded = await forwardJob(deps.jobDeps, job.id, claimed).catch((error: unknown) => {
    // The job is admitted (committed) either way; a database that went away meanwhile is not a bug.
    if (isDatabaseUnavailable(error)) deps.logger.warn({ jobId: job.id, reason: driverReason(error) }, 'inline forwarding failed: the database is unavailable; the worker will retry');
    else deps.logger.error({ jobId: job.id, err: error }, 'inline forwarding failed; the worker will retry');
    return null;
  });
  return { job: forwarded ?? job, replayed: false };
}

/** The upstream items of a job, in the order HeyGen created them. */
export async function itemsOfJob(db: Db, jobId: string): Promise<JobItemRow[]> {
  return db.select().from(jobItemsTable).where(eq(jobItemsTable.jobId, jobId)).orderBy(jobItemsTable.createdAt, jobItemsTable.id);
}

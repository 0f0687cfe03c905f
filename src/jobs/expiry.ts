// Holds are resolved, never kept silently. A job past its hold deadline (HOLD_TTL_HOURS) is read from HeyGen once
// more and settled if it is done; otherwise its hold is released and the job is EXPIRED, with a drift note when
// HeyGen may still bill it (settlement writes the note and the audit event in the same transaction).
import { isDatabaseUnavailable } from '../db/client.js';
import type { JobStatus } from '../db/schema.js';
import { refreshJobs, type JobDeps } from './follow.js';
import { settleJob } from './settlement.js';

export interface ClaimedJob {
  id: string;
  status: JobStatus;
  holdExpiresAt: Date;
}

/** Past the deadline, a job whose status HeyGen does not answer for is retried this long before it is expired anyway. */
export const UNREADABLE_GRACE_MS = 24 * 3600_000;

export function holdExpired(job: ClaimedJob, now: Date): boolean {
  return job.holdExpiresAt.getTime() <= now.getTime();
}

export async function resolveExpiredHolds(deps: JobDeps, jobs: readonly ClaimedJob[], now = new Date()): Promise<void> {
  const expire = async (job: ClaimedJob, message: string) => {
    try {
      const { job: settled, changed } = await settleJob(deps.db, job.id, { type: 'expired', reason: 'hold_expired', message }, now, deps.appEvents);
      if (changed) {
        deps.logger.warn(
          { jobId: job.id, status: job.status, holdExpiresAt: job.holdExpiresAt.toISOString(), actualMicroCs: settled.actualMicroCs?.toString() },
          'hold expired: released; the job is EXPIRED',
        );
      }
    } catch (error) {
      // The database is away: stop the pass and let the loop back off.
      if (isDatabaseUnavailable(error)) throw error;
      deps.logger.warn({ jobId: job.id, err: error }, 'could not expire the hold; the claim lapses and another pass retries');
    }
  };
  for (const job of jobs.filter((j) => j.status === 'RESERVED' || j.status === 'SUBMIT_UNKNOWN')) {
    // Not forwarding a job whose hold is gone: it would spend without a reservation.
    await expire(job, 'the hold outlived its deadline before HeyGen accepted the job');
  }
  const followed = jobs.filter((j) => j.status === 'SUBMITTED' || j.status === 'PROCESSING');
  // One last read: a job HeyGen finished settles normally (and settleJob below then moves nothing).
  const unread = await refreshJobs(deps, followed.map((j) => j.id));
  for (const job of followed) {
    if (unread.has(job.id) && now.getTime() - job.holdExpiresAt.getTime() < UNREADABLE_GRACE_MS) continue;
    await expire(
      job,
      unread.has(job.id)
        ? 'HeyGen did not answer for the job for a day past its hold deadline; the hold was released and HeyGen may still bill it'
        : 'HeyGen had not finished the job by its hold deadline; completed outputs were debited, the rest of the hold released, and HeyGen may still bill it',
    );
  }
}

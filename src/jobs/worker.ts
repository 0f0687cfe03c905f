// Background work from a Postgres queue: the jobs table itself. A worker claims due jobs with
// FOR UPDATE SKIP LOCKED and pushes their claim (next_check_at) forward, so any number of gateway
// processes can run side by side without taking the same job at the same time.
import { sql } from 'drizzle-orm';
import { isDatabaseUnavailable, queryRows } from '../db/client.js';
import { forwardJob, refreshJobs, type JobDeps } from './follow.js';
import { runPeriodically, type Periodic } from '../background/periodic.js';

const CLAIM_BATCH = 50;

export async function claimDueJobs(deps: JobDeps, limit = CLAIM_BATCH): Promise<{ id: string; status: string }[]> {
  const leaseSeconds = Math.ceil(deps.follow.leaseMs / 1000);
  return queryRows<{ id: string; status: string }>(
    deps.db,
    sql`update jobs set next_check_at = now() + make_interval(secs => ${leaseSeconds}), check_attempts = check_attempts + 1
        where id in (
          select id from jobs
          where next_check_at <= now() and status in ('RESERVED', 'SUBMIT_UNKNOWN', 'SUBMITTED', 'PROCESSING')
          order by next_check_at
          limit ${limit}
          for update skip locked)
        returning id, status`,
  );
}

/** One pass of the queue; returns how many jobs it handled. */
export async function runWorkerOnce(deps: JobDeps): Promise<number> {
  const claimed = await claimDueJobs(deps);
  const toRefresh: string[] = [];
  for (const job of claimed) {
    if (job.status === 'RESERVED' || job.status === 'SUBMIT_UNKNOWN') {
      try {
        await forwardJob(deps, job.id);
      } catch (error) {
        // The database is away: stop the pass (the claims expire) and let the loop back off.
        if (isDatabaseUnavailable(error)) throw error;
        deps.logger.error({ jobId: job.id, err: error }, 'forwarding failed; the claim expires and another pass retries');
      }
    } else {
      toRefresh.push(job.id);
    }
  }
  await refreshJobs(deps, toRefresh);
  return claimed.length;
}

/** The job queue, run every `intervalMs` by this process. */
export function startWorker(deps: JobDeps, intervalMs: number, backoffMaxMs?: number): Periodic {
  return runPeriodically('job worker', async () => (await runWorkerOnce(deps)) >= CLAIM_BATCH, intervalMs, deps.logger, { backoffMaxMs });
}

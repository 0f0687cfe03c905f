// Background work from a Postgres queue: the jobs table itself. A worker claims due jobs with
// FOR UPDATE SKIP LOCKED and pushes their claim (next_check_at) forward, so any number of gateway
// processes can run side by side without taking the same job at the same time. A status read is also
// never claimed within STATUS_READ_MIN_INTERVAL_MS of the job's previous one (last_checked_at), which is
// what bounds the upstream reads webhooks and callbacks can cause.
import { isDatabaseUnavailable, namedStatement } from '../db/client.js';
import type { JobStatus } from '../db/schema.js';
import { forwardJob, refreshJobs, type JobDeps, type RefreshOptions } from './follow.js';
import { holdExpired, resolveExpiredHolds, type ClaimedJob } from './expiry.js';
import { runPeriodically, type Periodic } from '../background/periodic.js';

const CLAIM_BATCH = 50;

/** The claim's text: $1 the lease (s), $2 the shortest interval between two reads (ms), $3 the limit, $4 the one job (`one`). */
function claimText(one: boolean): string {
  return `update jobs set next_check_at = now() + make_interval(secs => $1), check_attempts = check_attempts + 1,
          last_checked_at = now()
        where id in (
          select id from jobs
          where next_check_at <= now() and status in ('RESERVED', 'SUBMIT_UNKNOWN', 'SUBMITTED', 'PROCESSING')
            and (status in ('RESERVED', 'SUBMIT_UNKNOWN') or last_checked_at is null
                 or last_checked_at <= now() - $2::int * interval '1 millisecond')
            ${one ? 'and id = $4' : ''}
          order by next_check_at
          limit $3
          for update skip locked)
        returning id, status, hold_expires_at`;
}
type ClaimRow = { id: string; status: JobStatus; hold_expires_at: string | Date };
const CLAIM_DUE = namedStatement<ClaimRow>('gateway_claim_due_jobs', claimText(false));
const CLAIM_ONE = namedStatement<ClaimRow>('gateway_claim_due_job', claimText(true));

/** Claims up to `limit` due jobs (or only `jobId` when given, if it is due) for this process. */
export async function claimDueJobs(deps: JobDeps, limit = CLAIM_BATCH, jobId?: string): Promise<ClaimedJob[]> {
  const leaseSeconds = Math.ceil(deps.follow.leaseMs / 1000);
  const minIntervalMs = deps.follow.statusReadMinIntervalMs;
  const rows =
    jobId !== undefined
      ? await CLAIM_ONE.rows(deps.db, [leaseSeconds, minIntervalMs, limit, jobId])
      : await CLAIM_DUE.rows(deps.db, [leaseSeconds, minIntervalMs, limit]);
  return rows.map((r) => ({ id: r.id, status: r.status, holdExpiresAt: new Date(r.hold_expires_at) }));
}

/**
 * Resolves expired holds, forwards the claimed jobs still awaiting submission and reads the others in bulk (per
 * account). Also for jobs claimed elsewhere by the worker's rules (a signed webhook's hintAndClaimJob).
 */
export async function runClaimed(deps: JobDeps, claimed: readonly ClaimedJob[], options: RefreshOptions = {}): Promise<void> {
  const now = new Date();
  const toRefresh: string[] = [];
  await resolveExpiredHolds(deps, claimed.filter((j) => holdExpired(j, now)), now);
  for (const job of claimed.filter((j) => !holdExpired(j, now))) {
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
  await refreshJobs(deps, toRefresh, options);
}

/** One pass of the queue; returns how many jobs it handled. */
export async function runWorkerOnce(deps: JobDeps): Promise<number> {
  const claimed = await claimDueJobs(deps);
  await runClaimed(deps, claimed);
  return claimed.length;
}

/**
 * Handles one job at once if it is due and no process holds it (a signed webhook's prompt handling). It goes
 * through the same claim as the worker, so it never reads a job sooner than the worker would.
 */
export async function runDueJobNow(deps: JobDeps, jobId: string, options: RefreshOptions = {}): Promise<boolean> {
  const claimed = await claimDueJobs(deps, 1, jobId);
  await runClaimed(deps, claimed, options);
  return claimed.length > 0;
}

/** The job queue, run every `intervalMs` by this process. */
export function startWorker(deps: JobDeps, intervalMs: number, backoffMaxMs?: number): Periodic {
  return runPeriodically('job worker', async () => (await runWorkerOnce(deps)) >= CLAIM_BATCH, intervalMs, deps.logger, { backoffMaxMs });
}

// After admission: forward the job to HeyGen, follow it to a terminal state, and settle it.
// Every step re-reads the job and checks the state it expects, so any process may run any step.
import { and, eq, inArray, sql } from 'drizzle-orm';
import pMap from 'p-map';
import { isDatabaseUnavailable, namedStatement, type Db } from '../db/client.js';
import { jsonRowOf, rowFromJson } from '../db/json-rows.js';
import { groupCommit, jsonCalls } from '../db/group-commit.js';
import { accountsTable, jobItemsTable, jobsTable, type ItemStatus, type JobStatus } from '../db/schema.js';
import type { ClaimedJob } from './expiry.js';
import { connectionOf, type AccountRow } from '../accounts/accounts.js';
import { parseBatchItemId, type BatchKind, type HeygenClient, type UpstreamJobState, type UpstreamStatus } from '../heygen/client.js';
import type { SecretBox } from '../secrets/secret-box.js';
import type { Logger } from '../logging.js';
import { itemCostMicroCs } from './estimate.js';
import { formatCreditSeconds, secondsToMicro } from '../primitives/money.js';
import { isTerminal, nextStatus, TERMINAL_STATUSES } from './lifecycle.js';
import { settleJob } from './settlement.js';
import type { JobRow } from './admission.js';
import type { AppEventSettings } from './app-events.js';
import { dayOf, periodOf } from '../primitives/period.js';
import { newRowId } from '../primitives/ids.js';

export interface FollowSettings {
  /** Base URL HeyGen can reach for per-job callbacks; null sends none (registered endpoints still work). */
  publicUrl: string | null;
  pollMinIntervalMs: number;
  pollMaxIntervalMs: number;
  /** Shortest time between two status reads of one job, whatever triggers them (webhooks, callbacks, polling). */
  statusReadMinIntervalMs: number;
  /** STATUS_READ_CONCURRENCY: a pass's reads of one account's jobs at HeyGen in flight at once. */
  statusReadConcurrency: number;
  /** How long a claim on a job lasts before another worker may take it. */
  leaseMs: number;
  /** HeyGen replays an Idempotency-Key for 24 h; past this age an unresolved submission is given up. */
  submitGiveUpMs: number;
  /**
   * Group commit (FOLLOW_GROUP_COMMIT_MAX): forwarding's bookkeeping calls, and an account's followed settlements, that
   * arrive while one is in flight in this process go together in one transaction, at most this many; unset or 1: alone.
   */
  groupCommitMax?: number;
}

export interface JobDeps {
  db: Db;
  box: SecretBox;
  heygen: HeygenClient;
  logger: Logger;
  follow: FollowSettings;
  /** How settlements write the app callback events (CALLBACK_MAX_ATTEMPTS); default DEFAULT_APP_EVENTS. */
  appEvents?: AppEventSettings;
}

const TERMINAL_ITEM: readonly ItemStatus[] = ['completed', 'failed', 'not_found'];
/** A fresh upstream id may not be readable yet; `not_found` only counts as final after this long. */
const NOT_FOUND_GRACE_MS = 10 * 60_000;

export function backoffMs(attempt: number, settings: FollowSettings): number {
  const exp = settings.pollMinIntervalMs * 2 ** Math.min(Math.max(attempt - 1, 0), 20);
  return Math.min(settings.pollMaxIntervalMs, exp);
}

async function loadAccount(db: Db, accountId: string): Promise<AccountRow> {
  const [account] = await db.select().from(accountsTable).where(eq(accountsTable.id, accountId));
  if (!account) throw new Error(`account ${accountId} vanished`);
  return account;
}

/** Sends a RESERVED or SUBMIT_UNKNOWN job to HeyGen with its id as Idempotency-Key and callback_id. */
export async function forwardJob(deps: JobDeps, jobId: string, claimed?: ClaimedByAdmission): Promise<JobRow | null> {
  const { db, logger } = deps;
  const now = new Date();
  let job: JobRow | undefined;
  let account: AccountRow;
  if (claimed) {
    // The admission that just committed counted this attempt and returned the account row it locked.
    ({ job, account } = claimed);
  } else {
    // Counting the attempt before the call is what makes cancelJob safe: a job with an attempt may exist upstream.
    [job] = await db
      .update(jobsTable)
      .set({ submitAttempts: sql`${jobsTable.submitAttempts} + 1`, nextCheckAt: new Date(now.getTime() + deps.follow.leaseMs), updatedAt: now })
      .where(and(eq(jobsTable.id, jobId), inArray(jobsTable.status, ['RESERVED', 'SUBMIT_UNKNOWN'])))
      .returning();
    if (!job) return null;
    account = await loadAccount(db, job.accountId);
  }
  // Per-job callbacks are not signed by HeyGen, so they have their own route (hints only, like every webhook).
  const callbackUrl = deps.follow.publicUrl ? `${deps.follow.publicUrl.replace(/\/+$/, '')}/webhooks/heygen/${account.id}/callback` : undefined;
  const outcome = await deps.heygen.submitJob(connectionOf(deps.box, account), job.kind, job.request as Record<string, unknown>, {
    idempotencyKey: job.id,
    callbackId: job.id,
    ...(callbackUrl ? { callbackUrl } : {}),
  });

  if (outcome.type === 'rejected') {
    logger.info({ jobId, code: outcome.code, httpStatus: outcome.httpStatus }, 'HeyGen rejected the job; releasing its hold');
    return (await settleJob(db, jobId, { type: 'rejected', code: outcome.code, message: outcome.message }, new Date(), deps.appEvents)).job;
  }
  if (outcome.type === 'unknown' && outcome.httpStatus === 429) {
    // HeyGen's own count of the key's slots is full (other clients of the key use it too): it created nothing. The job
    // goes back to the queue, keeping its place (admission order), and is not dispatched again before HeyGen's
    // Retry-After; its hold stays.
    const delay = outcome.retryAfterMs ?? backoffMs(job.submitAttempts, deps.follow);
    logger.warn({ jobId, reason: outcome.reason, retryInMs: delay }, 'HeyGen has no free concurrency slot; the job goes back to the queue');
    const [requeued] = await db
      .update(jobsTable)
      .set({ status: REQUEUED, queuedAt: new Date(), nextCheckAt: new Date(Date.now() + delay), updatedAt: new Date() })
      .where(and(eq(jobsTable.id, jobId), inArray(jobsTable.status, REQUEUABLE)))
      .returning();
    return requeued ?? null;
  }
  if (outcome.type === 'unknown') {
    const age = now.getTime() - job.createdAt.getTime();
    if (age > deps.follow.submitGiveUpMs) {
      // A retry past HeyGen's 24 h replay window could create a second job: stop, release, and note the drift risk.
      logger.warn({ jobId, reason: outcome.reason }, 'submission still unresolved after the idempotency window; expiring the job and releasing its hold');
      const message = `HeyGen's answer stayed unknown for ${Math.round(age / 3600_000)} h (${outcome.reason}); it may still have created and billed the job`;
      return (await settleJob(db, jobId, { type: 'expired', reason: 'submit_unresolved', message }, new Date(), deps.appEvents)).job;
    }
    const delay = outcome.retryAfterMs ?? backoffMs(job.submitAttempts, deps.follow);
    logger.warn({ jobId, reason: outcome.reason, retryInMs: delay }, 'submission outcome unknown; will retry with the same Idempotency-Key');
    const [updated] = await db
      .update(jobsTable)
      .set({ status: 'SUBMIT_UNKNOWN', nextCheckAt: new Date(Date.now() + delay), updatedAt: new Date() })
      .where(and(eq(jobsTable.id, jobId), inArray(jobsTable.status, ['RESERVED', 'SUBMIT_UNKNOWN'])))
      .returning();
    return updated ?? null;
  }

  // One call: lock the job, record its upstream items and the acceptance (a webhook that arrived while this call was
  // in flight, a fast job, was kept as hinted_at: the first status read is then due at once).
  const answer = await markSubmitted(db, account.id, {
    job_id: jobId,
    // Every item with the same columns (the function inserts the columns the rows name). A synchronous product
    // (text to speech) is done in HeyGen's answer: its cost is known now.
    items: outcome.items.map((i) =>
      jsonRowOf(jobItemsTable, {
        id: newRowId(),
        jobId,
        upstreamId: i.upstreamId,
        kind: i.kind,
        videoId: i.videoId ?? null,
        language: i.language ?? null,
        status: i.completed ? 'completed' : 'pending',
        durationSeconds: i.completed ? i.completed.durationSeconds : null,
        costMicroCs: i.completed ? itemCostMicroCs(job.product, secondsToMicro(i.completed.durationSeconds), job.rateMicroCsPerSecond, account.priceBook.billingIncrementSeconds) : null,
        createAnswer: i.output ?? null,
      }),
    ),
    next: FORWARD_ACCEPTED,
    poll_min_ms: deps.follow.pollMinIntervalMs,
    now: new Date().toISOString(),
  }, deps.follow.groupCommitMax ?? 1);
  const current = answer.job ? rowFromJson(jobsTable, answer.job) : null;
  if (answer.outcome === 'not_awaiting') {
    logger.error({ jobId, status: current?.status }, 'HeyGen accepted a job that is no longer awaiting submission');
    return current;
  }
  if (current && outcome.items.length > 0 && outcome.items.every((i) => i.completed) && !isTerminal(current.status)) {
    // Every output was in HeyGen's answer (text to speech): settled now, nothing to follow.
    const { job: settled } = await settleJob(db, jobId, { type: 'upstream_terminal' });
    logger.info({ jobId, status: settled.status, actualMicroCs: settled.actualMicroCs?.toString() }, 'job settled from the create answer');
    return settled;
  }
  claimed?.onItems?.(answer.items!.map((i) => rowFromJson(jobItemsTable, i)));
  return current;
}

/** A job the admission claimed for forwarding at once (its first attempt counted), with the account row it locked. */
export interface ClaimedByAdmission {
  job: JobRow;
  account: AccountRow;
  /** Told the job's upstream items once recorded (the answer of the bookkeeping call), e.g. to prime a loader. */
  onItems?: (items: ItemRow[]) => void;
}

/** The statuses a 429 sends back to the queue, and the queue's status, from the one lifecycle table. */
const REQUEUABLE = (['RESERVED', 'SUBMIT_UNKNOWN'] as const).filter((s) => nextStatus(s, 'REQUEUE') !== null);
const REQUEUED = nextStatus('RESERVED', 'REQUEUE')!;

/** Status → status after HeyGen accepted the job, from the one lifecycle table. */
const FORWARD_ACCEPTED = Object.fromEntries(
  (['RESERVED', 'SUBMIT_UNKNOWN', 'SUBMITTED', 'PROCESSING', ...TERMINAL_STATUSES] as const).flatMap((s) => {
    const next = nextStatus(s, 'FORWARD_ACCEPTED');
    return next ? [[s, next]] : [];
  }),
);

type MarkAnswer = { outcome: 'submitted' | 'not_awaiting'; job: Record<string, unknown> | null; items?: Record<string, unknown>[] };

// `gateway_mark_submitted`, and `gateway_follow_batch('mark', …)` for several (migrations), through group commit per
// account (src/db/group-commit.ts), so that one account's slow bookkeeping never holds up another's.
const markSubmitted = groupCommit(
  jsonCalls<Record<string, unknown>, MarkAnswer>(
    namedStatement('gateway_mark_submitted', 'select gateway_mark_submitted($1::jsonb) as r'),
    namedStatement('gateway_mark_submitted_batch', `select gateway_follow_batch('mark', $1::jsonb) as r`),
  ),
);

type ItemRow = typeof jobItemsTable.$inferSelect;

/** Which batch read names the items of each batch item kind. */
const BATCH_ITEM_KINDS: Partial<Record<string, BatchKind>> = { batch_video: 'video', batch_translation: 'translation', batch_lipsync: 'lipsync' };

interface ItemUpdate {
  id: string;
  status: ItemStatus;
  videoId?: string | null;
  durationSeconds?: string | null;
  costMicroCs?: bigint | null;
  failureMessage?: string | null;
}

type FollowedJob = Pick<JobRow, 'id' | 'accountId' | 'product' | 'estimatedSeconds' | 'rateMicroCsPerSecond' | 'checkAttempts' | 'createdAt' | 'submittedAt'> & {
  /** Languages asked for (a proofread's outputs), read without loading the request body. */
  languages: number;
};

/** A status read's row: the job's columns by their names, its running items and (with its first job) its account. */
type FollowedRow = Record<string, unknown> & { languages: number; items: Record<string, unknown>[]; account: Record<string, unknown> | null };

// The status read, in one statement: the jobs (not their request bodies: a batch of jobs being followed never needs
// them), each with its items still running upstream, and each account once (with its first job); in id order (time
// ordered: the oldest job first), the order in which their settlements lock them.
const FOLLOWED_JOBS = namedStatement<FollowedRow>(
  'gateway_followed_jobs',
  `select j.id, j.account_id, j.product, j.estimated_seconds,
     coalesce(jsonb_array_length(case when jsonb_typeof(j.request->'output_languages') = 'array' then j.request->'output_languages' end), 1) as languages,
     j.rate_micro_cs_per_second, j.check_attempts, j.created_at, j.submitted_at,
     (select coalesce(jsonb_agg(gateway_json_row(to_jsonb(i))), '[]'::jsonb) from job_items i
       where i.job_id = j.id and i.status not in (${TERMINAL_ITEM.map((s) => `'${s}'`).join(', ')})) as items,
     case when row_number() over (partition by j.account_id) = 1
       then (select gateway_json_row(to_jsonb(a)) from accounts a where a.id = j.account_id) end as account
   from jobs j
   where j.id = any($1::uuid[]) and j.status in ('SUBMITTED', 'PROCESSING')
   order by j.id`,
);

/** A status read's job, its columns mapped by the jobs table's own column mappers (rowFromJson), not by hand. */
function followedJob(r: FollowedRow): FollowedJob {
  const { id, accountId, product, estimatedSeconds, rateMicroCsPerSecond, checkAttempts, createdAt, submittedAt } = rowFromJson(jobsTable, r);
  return { id, accountId, product, estimatedSeconds, rateMicroCsPerSecond, checkAttempts, createdAt, submittedAt, languages: r.languages };
}

export interface RefreshOptions {
  /**
   * HeyGen said these jobs changed (a signed webhook: its events are a job's success or failure): their items are read
   * by their detail at once, the read that carries the duration, instead of the bulk status first (which would answer
   * "completed" and cost a second call for the detail). Untold, the bulk read comes first, as it saves calls when
   * most items are unchanged (polling).
   */
  detailFirst?: boolean;
}

/**
 * Reads the upstream state of SUBMITTED / PROCESSING jobs (bulk status first, details only for items that
 * changed; `detailFirst`: details only) and settles the jobs whose items are all terminal. Money moves only on what
 * HeyGen answered here.
 */
export async function refreshJobs(deps: JobDeps, jobIds: readonly string[], options: RefreshOptions = {}): Promise<Set<string>> {
  const unread = new Set<string>();
  if (jobIds.length === 0) return unread;
  const { db } = deps;
  const rows = await FOLLOWED_JOBS.rows(db, [jobIds]);
  const byAccount = new Map<string, { account: AccountRow | null; jobs: FollowedJob[]; items: ItemRow[] }>();
  for (const row of rows) {
    const { items, account } = row;
    const job = followedJob(row);
    let group = byAccount.get(job.accountId);
    if (!group) byAccount.set(job.accountId, (group = { account: null, jobs: [], items: [] }));
    if (account) group.account = rowFromJson(accountsTable, account);
    group.jobs.push(job);
    for (const item of items) group.items.push(rowFromJson(jobItemsTable, item));
  }
  for (const [accountId, group] of byAccount) {
    if (!group.account) throw new Error(`account ${accountId} vanished`);
    try {
      await refreshAccountJobs(deps, group.account, group.jobs, group.items, options);
    } catch (error) {
      // The database is away: nothing can be rescheduled; the claims expire and the worker backs off.
      if (isDatabaseUnavailable(error)) throw error;
      deps.logger.warn({ accountId, err: error }, 'status refresh failed; the poller will try again');
      for (const job of group.jobs) unread.add(job.id);
      await rescheduleJobs(deps, group.jobs);
    }
  }
  return unread;
}

async function rescheduleJobs(deps: JobDeps, jobs: FollowedJob[]): Promise<void> {
  for (const job of jobs) {
    await deps.db
      .update(jobsTable)
      .set({ nextCheckAt: new Date(Date.now() + backoffMs(job.checkAttempts, deps.follow)) })
      .where(and(eq(jobsTable.id, job.id), inArray(jobsTable.status, ['SUBMITTED', 'PROCESSING'])));
  }
}

/** `items`: the jobs' items still running upstream (read with the jobs). */
async function refreshAccountJobs(deps: JobDeps, account: AccountRow, jobs: FollowedJob[], items: ItemRow[], options: RefreshOptions): Promise<void> {
  const { heygen } = deps;
  const conn = connectionOf(deps.box, account);
  const jobById = new Map(jobs.map((j) => [j.id, j]));
  // One merged update per item: an agent session that gets its video id and completes in the same pass keeps both.
  const updates = new Map<string, ItemUpdate>();
  const update = (u: ItemUpdate) => updates.set(u.id, { ...updates.get(u.id), ...u });
  const increment = account.priceBook.billingIncrementSeconds;

  /**
   * HeyGen's answer for each of `list`, read STATUS_READ_CONCURRENCY at a time (one after the other, a pass of 50
   * finished jobs took 50 round trips to HeyGen), in `list`'s order. The first failure fails the pass (its jobs are
   * read again later); no read is started after it.
   */
  const readAll = <T, R>(list: readonly T[], read: (entry: T) => Promise<R>): Promise<[T, R][]> =>
    pMap(list, async (entry): Promise<[T, R]> => [entry, await read(entry)], { concurrency: deps.follow.statusReadConcurrency });

  // Video Agent sessions get their video id once generation starts.
  const sessions = items.filter((i) => i.kind === 'agent_session' && !i.videoId);
  for (const [item, session] of await readAll(sessions, (i) => heygen.getAgentSession(conn, i.upstreamId))) {
    if (session.status === 'failed') update({ id: item.id, status: 'failed', failureMessage: 'video agent session failed' });
    else if (session.videoId) {
      item.videoId = session.videoId;
      update({ id: item.id, status: 'processing', videoId: session.videoId });
    }
  }

  /** A non-completed state: failed, gone (after a grace period), or in progress. */
  const applyOther = (item: ItemRow, job: FollowedJob, state: UpstreamJobState) => {
    if (state.status === 'failed') {
      update({ id: item.id, status: 'failed', failureMessage: state.failureMessage ?? state.failureCode ?? 'failed' });
    } else if (state.status === 'not_found') {
      if (Date.now() - (job.submittedAt ?? job.createdAt).getTime() > NOT_FOUND_GRACE_MS) {
        update({ id: item.id, status: 'not_found', failureMessage: 'HeyGen no longer knows this id' });
      }
    } else if (state.status === 'processing' && item.status === 'pending') {
      update({ id: item.id, status: 'processing' });
    }
  };

  /**
   * Bulk status first; the detail (with the duration money depends on) only for items that left pending/processing.
   * `detailFirst`: for a job with one item still running (of that kind), its detail only (what the bulk status would
   * have led to for a changed item, in one call); a job with several (a translation into many languages, a batch)
   * still reads the bulk status first, so that each of its webhooks reads the details of the items that changed, not
   * of every item.
   */
  const follow = async (
    group: ItemRow[],
    upstreamIdOf: (i: ItemRow) => string,
    readStatuses: (ids: string[]) => Promise<Map<string, UpstreamStatus>>,
    readDetail: (id: string) => Promise<UpstreamJobState>,
  ) => {
    if (group.length === 0) return;
    const statuses = options.detailFirst && group.length === 1 ? null : await readStatuses(group.map(upstreamIdOf));
    const changed: ItemRow[] = [];
    for (const item of group) {
      // No bulk answer for the id (not read, or left out of HeyGen's answer): its detail decides.
      const bulk = statuses?.get(upstreamIdOf(item));
      if (bulk === 'pending') continue;
      if (bulk === 'processing') {
        if (item.status === 'pending') update({ id: item.id, status: 'processing' });
        continue;
      }
      changed.push(item);
    }
    for (const [item, state] of await readAll(changed, (i) => readDetail(upstreamIdOf(i)))) {
      const id = upstreamIdOf(item);
      const job = jobById.get(item.jobId)!;
      if (state.status === 'completed') {
        if (state.durationSeconds === null) {
          deps.logger.warn({ jobId: item.jobId, upstreamId: id }, 'HeyGen reported completed without a duration; not settling yet');
          continue;
        }
        const cost = itemCostMicroCs(job.product, secondsToMicro(state.durationSeconds), job.rateMicroCsPerSecond, increment);
        update({ id: item.id, status: 'completed', durationSeconds: state.durationSeconds, costMicroCs: cost });
      } else if (state.status === 'failed') {
        update({ id: item.id, status: 'failed', failureMessage: state.failureMessage ?? state.failureCode ?? 'failed' });
      } else if (state.status === 'not_found') {
        if (Date.now() - (job.submittedAt ?? job.createdAt).getTime() > NOT_FOUND_GRACE_MS) {
          update({ id: item.id, status: 'not_found', failureMessage: 'HeyGen no longer knows this id' });
        }
      } else if (state.status === 'processing' && item.status === 'pending') {
        update({ id: item.id, status: 'processing' });
      }
    }
  };

  // Batch items get their own id once HeyGen creates them; one that fails before that is failed here.
  const batchItems = items.filter((i) => BATCH_ITEM_KINDS[i.kind] !== undefined && !i.videoId);
  const byBatch = new Map<string, ItemRow[]>();
  for (const item of batchItems) {
    const ref = parseBatchItemId(item.upstreamId);
    if (ref) byBatch.set(ref.batchId, [...(byBatch.get(ref.batchId) ?? []), item]);
  }
  for (const [[, group], batch] of await readAll([...byBatch], ([id, group]) => heygen.getBatch(conn, BATCH_ITEM_KINDS[group[0]!.kind]!, id))) {
    const states = new Map(batch.map((s) => [s.index, s]));
    for (const item of group) {
      const state = states.get(parseBatchItemId(item.upstreamId)!.index);
      if (!state) continue;
      if (state.id) {
        item.videoId = state.id;
        update({ id: item.id, status: item.status === 'pending' && state.status === 'pending' ? 'pending' : 'processing', videoId: state.id });
      } else if (state.status === 'failed') {
        update({ id: item.id, status: 'failed', failureMessage: state.failureMessage ?? 'the batch item failed' });
      } else if (state.status === 'processing' && item.status === 'pending') {
        update({ id: item.id, status: 'processing' });
      }
    }
  }

  // Items HeyGen names by their own id (upstream_id), and those named once created (video_id).
  const idOf = (i: ItemRow) => (i.kind === 'video' || i.kind === 'translation' || i.kind === 'lipsync' ? i.upstreamId : i.videoId!);
  const named = (kinds: readonly string[]) => (i: ItemRow) => kinds.includes(i.kind) && (i.kind === 'video' || i.kind === 'translation' || i.kind === 'lipsync' || !!i.videoId);
  await follow(
    items.filter(named(['video', 'agent_session', 'batch_video'])),
    idOf,
    (ids) => heygen.getVideoStatuses(conn, ids),
    (id) => heygen.getVideo(conn, id),
  );
  await follow(
    items.filter(named(['translation', 'batch_translation'])),
    idOf,
    (ids) => heygen.getTranslationStatuses(conn, ids),
    (id) => heygen.getTranslation(conn, id),
  );
  await follow(
    items.filter(named(['lipsync', 'batch_lipsync'])),
    idOf,
    (ids) => heygen.getLipsyncStatuses(conn, ids),
    (id) => heygen.getLipsync(conn, id),
  );

  // Proofreads: HeyGen reports no length, so a completed one is billed at the source length the gateway measured
  // at admission (its estimatedSeconds: no caller estimate is taken for proofreads), per language.
  for (const [item, state] of await readAll(items.filter((i) => i.kind === 'proofread'), (i) => heygen.getProofread(conn, i.upstreamId))) {
    const job = jobById.get(item.jobId)!;
    if (state.status === 'completed') {
      // Per language asked for: HeyGen creating fewer sessions than languages never raises what one is billed.
      const perOutput = secondsToMicro(job.estimatedSeconds) / BigInt(Math.max(1, Number(job.languages)));
      const cost = itemCostMicroCs(job.product, perOutput, job.rateMicroCsPerSecond, increment);
      update({ id: item.id, status: 'completed', durationSeconds: formatCreditSeconds(perOutput), costMicroCs: cost });
    } else applyOther(item, job, state);
  }

  // Avatar creation: billed per created avatar, once its training completes.
  const avatars = items.filter((i) => i.kind === 'avatar_look' || i.kind === 'avatar_group');
  for (const [item, state] of await readAll(avatars, (i) => heygen.getAvatar(conn, i.kind === 'avatar_look' ? 'look' : 'group', i.upstreamId))) {
    const job = jobById.get(item.jobId)!;
    if (state.status === 'completed') {
      update({ id: item.id, status: 'completed', costMicroCs: itemCostMicroCs(job.product, 0n, job.rateMicroCsPerSecond, increment) });
    } else applyOther(item, job, state);
  }

  // Each job's changed items, for its own call.
  const jobOfItem = new Map(items.map((i) => [i.id, i.jobId]));
  const updatesOf = new Map<string, ItemUpdate[]>();
  for (const u of updates.values()) {
    const jobId = jobOfItem.get(u.id);
    if (jobId !== undefined) updatesOf.set(jobId, [...(updatesOf.get(jobId) ?? []), u]);
  }
  await applyItemUpdates(deps, account, jobs, updatesOf);
}

/** Status → status on an upstream event, from the one lifecycle table (for `gateway_settle_followed`). */
function transitions(event: 'UPSTREAM_PROCESSING' | 'UPSTREAM_COMPLETED'): Record<string, string> {
  return Object.fromEntries(
    (['SUBMITTED', 'PROCESSING'] as const).flatMap((s) => {
      const next = nextStatus(s, event);
      return next ? [[s, next]] : [];
    }),
  );
}
const ON_PROCESSING = transitions('UPSTREAM_PROCESSING');
const ON_COMPLETED = transitions('UPSTREAM_COMPLETED');

type SettleAnswer = { outcome: 'unchanged' | 'following' | 'terminal' } | { outcome: 'settled'; status: string; actual_micro_cs: string };

// `gateway_settle_followed`, and `gateway_follow_batch('settle', …)` for several (migrations), through group commit
// per account (src/db/group-commit.ts): a batch locks its jobs, then the account row, as each single settlement does.
const settleFollowed = groupCommit(
  jsonCalls<Record<string, unknown>, SettleAnswer>(
    namedStatement('gateway_settle_followed', 'select gateway_settle_followed($1::jsonb) as r'),
    namedStatement('gateway_settle_followed_batch', `select gateway_follow_batch('settle', $1::jsonb) as r`),
  ),
);

/**
 * One call per job (`gateway_settle_followed`, jobs of one pass together by group commit): the job's items take their
 * new states under the job's row lock and, when every item is then completed, the job is settled in the same
 * transaction, as settleJob's `upstream_terminal` would (its release, its debit, the rollups, the job's end and its
 * money event). Still running: the next read is scheduled. Terminal with what only settleJob does (a failure's message
 * to redact, an overrun's audit event, an app callback): settled by settleJob right after, one job after the other.
 * Every job's call is made even when another's fails; then a failure is thrown (the database being away first).
 */
async function applyItemUpdates(deps: JobDeps, account: AccountRow, jobs: readonly FollowedJob[], updatesOf: ReadonlyMap<string, ItemUpdate[]>): Promise<void> {
  const { db } = deps;
  const now = new Date();
  const period = periodOf(now, account.timezone);
  const day = dayOf(now, account.timezone);
  const max = deps.follow.groupCommitMax ?? 1;
  const settle = (job: FollowedJob) =>
    settleFollowed(db, account.id, {
      job_id: job.id,
      updates: (updatesOf.get(job.id) ?? []).map((u) => ({
        id: u.id,
        status: u.status,
        ...(u.videoId !== undefined ? { video_id: u.videoId } : {}),
        ...(u.durationSeconds !== undefined ? { duration_seconds: u.durationSeconds } : {}),
        ...(u.costMicroCs !== undefined ? { cost_micro_cs: u.costMicroCs === null ? null : u.costMicroCs.toString() } : {}),
        ...(u.failureMessage !== undefined ? { failure_message: u.failureMessage } : {}),
      })),
      now: now.toISOString(),
      timezone: account.timezone,
      period,
      day,
      processing: ON_PROCESSING,
      completed: ON_COMPLETED,
      poll_min_ms: deps.follow.pollMinIntervalMs,
      poll_max_ms: deps.follow.pollMaxIntervalMs,
    }, max);
  // Together (group commit), or without it one after the other: never all at once, each holding a connection while it
  // waits for the account row's lock.
  let answers: PromiseSettledResult<SettleAnswer>[];
  if (max > 1) answers = await Promise.allSettled(jobs.map(settle));
  else {
    answers = [];
    for (const job of jobs) answers.push(await settle(job).then((value) => ({ status: 'fulfilled', value }), (reason: unknown) => ({ status: 'rejected', reason })));
  }
  let failure: { error: unknown } | null = null;
  for (const [i, job] of jobs.entries()) {
    const answer = answers[i]!;
    if (answer.status === 'rejected') {
      // The database being away is what the caller must know first (it stops the pass instead of rescheduling).
      if (!failure || (isDatabaseUnavailable(answer.reason) && !isDatabaseUnavailable(failure.error))) failure = { error: answer.reason };
      continue;
    }
    if (answer.value.outcome === 'settled') {
      deps.logger.info({ jobId: job.id, status: answer.value.status, actualMicroCs: answer.value.actual_micro_cs, overrunMicroCs: '0' }, 'job settled');
      continue;
    }
    if (answer.value.outcome !== 'terminal') continue;
    const { job: settled, changed } = await settleJob(db, job.id, { type: 'upstream_terminal' }, new Date(), deps.appEvents);
    if (changed) {
      deps.logger.info(
        { jobId: settled.id, status: settled.status, actualMicroCs: settled.actualMicroCs?.toString(), overrunMicroCs: settled.overrunMicroCs?.toString() },
        'job settled',
      );
    }
  }
  if (failure) throw failure.error;
}

export interface JobHint {
  /** The job's id (`callback_id`), when the hint carries one. */
  jobId: string | null;
  /** A video / translation / session id HeyGen reported, when the hint carries one. */
  upstreamId: string | null;
}

export interface HintResult {
  accountKnown: boolean;
  /** The job the hint is about, if the account has it. */
  jobId: string | null;
  /** This hint changed the job (moved its due time, or was remembered for a job still being forwarded). */
  scheduled: boolean;
  /**
   * The job may be read now (due, and its last read is at least the interval ago), by this hint or before it. In the
   * claiming form (hintAndClaimJob) only when this hint changed it: a job this hint did not claim is being read.
   */
  dueNow: boolean;
}

/**
 * The text of hintJob's statement for a hint naming the job (`byId`), an upstream id, both or neither: $1 the account,
 * $2 the shortest interval between two reads (ms), then the job's id and the upstream id, those given. `claim`
 * (hintAndClaimJob): $3 is the worker's lease (s) and the ids follow it; a SUBMITTED / PROCESSING job that may be read
 * now (its last read at least the interval ago) is also claimed in the same row update, written as the worker's claim
 * writes it (lease, attempts, last_checked_at). Unlike the worker's claim it does not wait for the job's due time (a
 * hint makes the job due at once, as hintJob's does), so a job whose read is already under way elsewhere, past the
 * interval, may be read twice: money-safe (the settling call locks the job and leaves a settled one unchanged).
 */
function hintText(byId: boolean, byUpstream: boolean, claim = false): string {
  const first = claim ? 4 : 3;
  const lookups = [
    ...(byId ? [`select j.id from jobs j where j.account_id = $1 and j.id = $${first}`] : []),
    ...(byUpstream
      ? [`select i.job_id as id from job_items i join jobs j on j.id = i.job_id
            where j.account_id = $1 and (i.upstream_id = $${byId ? first + 1 : first} or i.video_id = $${byId ? first + 1 : first})`]
      : []),
  ];
  const target = lookups.length > 0 ? lookups.join(' union all ') : 'select null::uuid as id where false';
  const earliest = `greatest(now(), coalesce(last_checked_at + $2::int * interval '1 millisecond', now()))`;
  // The same bound on the wall clock, for the condition: concurrent hints on one job queue on its row lock and
  // re-check the row a winner wrote; against their own (earlier) statement time its new due time would still look
  // later than theirs, and each would write again. The clock at the re-check does not move backwards.
  const earliestNow = `greatest(clock_timestamp(), coalesce(last_checked_at + $2::int * interval '1 millisecond', clock_timestamp()))`;
  const readable = `(last_checked_at is null or last_checked_at <= now() - $2::int * interval '1 millisecond')`;
  // The claim's condition, on the row as locked (re-checked like the rest when a concurrent writer got there first: the
  // winner's claim sets last_checked_at, so the others find the job read, not readable).
  const claimable = `(status in ('SUBMITTED', 'PROCESSING') and ${readable})`;
  // A RESERVED job is being forwarded (its lease keeps workers off it): the hint is only remembered, once, and
  // the forwarding makes the job due when it records HeyGen's acceptance.
  return `with target as (${target} limit 1),
        hinted as (
          update jobs set
            next_check_at = case when status = 'RESERVED' then next_check_at${claim ? ` when ${claimable} then now() + make_interval(secs => $3)` : ''} else ${earliest} end,
            check_attempts = case when status = 'RESERVED' then check_attempts${claim ? ` when ${claimable} then 1` : ''} else 0 end,${
              claim ? `
            last_checked_at = case when ${claimable} then now() else last_checked_at end,` : ''
            }
            hinted_at = case when status = 'RESERVED' then now() else hinted_at end
          where id = (select id from target) and account_id = $1
            and ((status = 'RESERVED' and hinted_at is null)${claim ? `
              or ${claimable}` : ''}
              or (status in ('SUBMITTED', 'PROCESSING', 'SUBMIT_UNKNOWN') and (next_check_at is null or next_check_at > ${earliestNow})))
          returning status <> 'RESERVED' and next_check_at <= now() as due_now${
            // Claimed by this statement: its read time is this statement's (no other transaction writes this now()).
            claim ? `, status in ('SUBMITTED', 'PROCESSING') and last_checked_at = now() as claimed, status, hold_expires_at` : ''
          })
        select exists (select 1 from accounts where id = $1) as account_known,
               (select id from target)::text as job_id,
               exists (select 1 from hinted) as scheduled,${
                 // Claiming: a SUBMITTED / PROCESSING job readable at the row check is claimed (moved), so one not moved
                 // is not due. The read below would be wrong here: it sees the row as of this statement's start, and a
                 // hint that lost the claim to a concurrent one (and waited on its row lock) would find the job as it
                 // was before that claim, readable, and call it due, for a worker's claim that can only find it read.
                 claim ? `
               coalesce((select due_now from hinted), false) as due_now` : `
               -- Not moved (already due, or due between this statement's start and its row check): due by the
               -- wall clock, as the row check saw it; by now() it could look later, and no prompt read would follow.
               coalesce((select due_now from hinted),
                        (select status in ('SUBMITTED', 'PROCESSING') and next_check_at <= clock_timestamp() and ${readable}
                         from jobs where id = (select id from target))) as due_now`
               }${
                           claim ? `,
               coalesce((select claimed from hinted), false) as claimed,
               (select status from hinted) as status,
               (select hold_expires_at from hinted) as hold_expires_at` : ''
                         }`;
}

type HintRow = { account_known: boolean; job_id: string | null; scheduled: boolean; due_now: boolean | null };
const HINT_STATEMENTS = {
  both: namedStatement<HintRow>('gateway_hint_job', hintText(true, true)),
  byId: namedStatement<HintRow>('gateway_hint_job_by_id', hintText(true, false)),
  byUpstream: namedStatement<HintRow>('gateway_hint_job_by_upstream', hintText(false, true)),
  none: namedStatement<HintRow>('gateway_hint_job_none', hintText(false, false)),
};
type HintClaimRow = HintRow & { claimed: boolean; status: JobStatus | null; hold_expires_at: string | Date | null };
const HINT_CLAIM_STATEMENTS = {
  both: namedStatement<HintClaimRow>('gateway_hint_claim_job', hintText(true, true, true)),
  byId: namedStatement<HintClaimRow>('gateway_hint_claim_job_by_id', hintText(true, false, true)),
  byUpstream: namedStatement<HintClaimRow>('gateway_hint_claim_job_by_upstream', hintText(false, true, true)),
  none: namedStatement<HintClaimRow>('gateway_hint_claim_job_none', hintText(false, false, true)),
};
const hintKind = (hint: JobHint) => (hint.jobId !== null ? (hint.upstreamId !== null ? 'both' : 'byId') : hint.upstreamId !== null ? 'byUpstream' : 'none');

/**
 * A webhook's hint, coalesced: makes the job due for its next upstream read, but never sooner than
 * `minIntervalMs` after the last one (last_checked_at). The UPDATE is conditional, so once the job is due that
 * soon a repeated hint writes nothing; the worker that claims the job (FOR UPDATE SKIP LOCKED, in bulk per
 * account) makes the one read. PostgreSQL is the only coordinator, so this holds across gateway processes.
 * One statement per hint, so a flood of them (known or unknown ids) costs one indexed round trip each.
 */
export async function hintJob(db: Db, accountId: string, hint: JobHint, minIntervalMs: number): Promise<HintResult> {
  const statement = HINT_STATEMENTS[hintKind(hint)];
  const values: unknown[] = [accountId, minIntervalMs];
  if (hint.jobId !== null) values.push(hint.jobId);
  if (hint.upstreamId !== null) values.push(hint.upstreamId);
  const [row] = await statement.rows(db, values);
  return { accountKnown: row!.account_known, jobId: row!.job_id, scheduled: row!.scheduled, dueNow: row!.due_now === true };
}

export interface HintClaimResult extends HintResult {
  /** The job, claimed for this process by the hint's own statement (written as the worker's claim writes it), or null. */
  claimed: ClaimedJob | null;
}

/**
 * hintJob, and in the same statement the worker's claim of the job when it may be read now: a signed webhook's prompt
 * read without a second statement (and a second write of the job's row). Never claims sooner than the worker would:
 * the claim's condition is the worker's (SUBMITTED / PROCESSING, last read at least `minIntervalMs` ago), under the
 * job's row lock. A job it does not claim is scheduled exactly as by hintJob; it is due now only when this hint made
 * it due (a SUBMITTED / PROCESSING job it does not claim is not readable, or was claimed by a concurrent hint).
 */
export async function hintAndClaimJob(db: Db, accountId: string, hint: JobHint, minIntervalMs: number, leaseMs: number): Promise<HintClaimResult> {
  const values: unknown[] = [accountId, minIntervalMs, Math.ceil(leaseMs / 1000)];
  if (hint.jobId !== null) values.push(hint.jobId);
  if (hint.upstreamId !== null) values.push(hint.upstreamId);
  const [row] = await HINT_CLAIM_STATEMENTS[hintKind(hint)].rows(db, values);
  const claimed =
    row!.claimed && row!.job_id !== null && row!.status !== null && row!.hold_expires_at !== null
      ? { id: row!.job_id, status: row!.status, holdExpiresAt: new Date(row!.hold_expires_at) }
      : null;
  return { accountKnown: row!.account_known, jobId: row!.job_id, scheduled: row!.scheduled, dueNow: row!.due_now === true, claimed };
}

// Admission: one transaction that checks every cap and writes the job with its hold, or writes nothing. It is one
// call of the server-side function `gateway_admit` (migrations), a prepared statement: one round trip, and no lock
// held while the gateway waits for the network. What it needs from before the transaction (the project's path and
// account, the account's price book and time zone, hence the estimate and the periods) comes from a per-process cache
// of rows that never change (units) or that the function checks are unchanged (accounts: it answers `stale`, and the
// gateway reads them again and retries).
// Lock order, shared with settlement: job row → account row → rate-limit rows (unit policies on the path by id, then
// the calling token's; admission only, docs/governance.md) → HARD budget rows (by id) → group budget rows (budgets on
// a tag value or a person, by id: gateway_check_group_budgets) → rollups (path order).
// The audit event is the admission's last insert (it takes no lock that admissions contend on).
import { createHash } from 'node:crypto';
import { newRowId } from '../primitives/ids.js';
import { and, eq, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { isDatabaseUnavailable, namedStatement } from '../db/client.js';
import { jsonRowOf, rowFromJson } from '../db/json-rows.js';
import { groupCommit, jsonCalls } from '../db/group-commit.js';
import { accountTermsTable, accountsTable, auditEventsTable, budgetsTable, groupBudgetsTable, jobsTable, orgUnitsTable, type JobKind } from '../db/schema.js';
import {
  BudgetExceededError,
  ConcurrencyLimitError,
  DomainError,
  ForbiddenError,
  IdempotencyConflictError,
  NotFoundError,
  PolicyViolationError,
  RateLimitedError,
  ValidationError,
  type PolicyRule,
} from '../errors.js';
import { canReadAccountTotals, canReadCostsOf, canReadUnit, canSubmitFor, type Actor } from '../auth/actor.js';
import { isUuid } from '../org/units.js';
import { requireLabel, requireTagKey } from '../validation.js';
import { termPeriods, type AccountRow, type AccountTermsRow } from '../accounts/accounts.js';
import { budgetRateUsdPerCs } from '../billing/terms.js';
import { formatCents, formatCreditSeconds, MICRO_PER_CS, usdToCentsHalfUp } from '../primitives/money.js';
import * as Q from '../primitives/rational.js';
import { dayOf, periodOf } from '../primitives/period.js';
import { auditRow } from '../audit/audit.js';
import { estimateJob, governedFacts, prepareJob } from './estimate.js';
import type { MediaProbeLimits } from '../pricing/media.js';
import type { CallbackPolicy } from './callback.js';
import { IN_FLIGHT_STATUSES } from './lifecycle.js';
import { queueStanding, type QueueSettings } from './queue.js';

/** A job id after every other in (created_at, id) order: a newcomer's place behind the jobs admitted at its instant. */
const YOUNGEST = 'ffffffff-ffff-ffff-ffff-ffffffffffff';

export type JobRow = typeof jobsTable.$inferSelect;

export interface SubmitJobInput {
  projectId: string;
  kind: JobKind;
  request: unknown;
  estimatedSeconds: string | null;
  idempotencyKey: string | null;
  /**
   * True: when the job may not start now (no free concurrency slot, or the free ones are due to waiting jobs, or its
   * unit is at its maximum: gateway_queue_starts), it is admitted QUEUED with its hold and started by the dispatcher
   * (src/jobs/queue.ts); false or absent: refused (ConcurrencyLimitError).
   */
  queue?: boolean;
  /** Key/value tags (keys from the organization's allowlist); none by default. */
  tags?: Readonly<Record<string, string>>;
  /** The person an app acts for (SERVICE tokens only): the job's person becomes `user:<endUser>`. */
  endUser?: string | null;
}

export interface AdmissionSettings {
  holdTtlHours: number;
  /** How long the submitting process owns the job before a worker may take over its forwarding. */
  forwardLeaseMs: number;
  /** The queue's run-time default, for the wait a concurrency refusal suggests (the estimate a queued job shows). */
  queue: Pick<QueueSettings, 'defaultRunSeconds'>;
  /**
   * Told how every admission ended (for the /metrics counters): once per call, after the transaction committed or
   * rolled back. Must not throw.
   */
  onOutcome?: (outcome: AdmissionOutcome) => void;
  /** Limits on reading the duration of media a request points at (before the transaction). */
  media: MediaProbeLimits;
  /** Largest `request` stored, in bytes of JSON (JOB_REQUEST_MAX_BYTES). */
  maxRequestBytes: number;
  /** Most tags a job may carry (JOB_MAX_TAGS; default 10). */
  maxTags?: number;
  /** Deepest nesting of a request body accepted (MAX_JSON_DEPTH). */
  maxJsonDepth?: number;
  /** Which app callback URLs a body may name (CALLBACK_ALLOW_HTTP, CALLBACK_ALLOW_PRIVATE); default https to public addresses. */
  callbacks?: CallbackPolicy;
  /**
   * Group commit (ADMISSION_GROUP_COMMIT_MAX): most admissions of one account sent together in one transaction when
   * they arrive while one of its admissions is in flight; 1 (the default here) sends each alone.
   */
  groupCommitMax?: number;
}

/**
 * How an admission ended. `admitted`: a new job and its hold (`new`; `queued` when it waits for a concurrency slot)
 * or the job of an earlier request with the same idempotency key (`replayed`). `refused`: a cap said no (`budget`: a HARD budget, `pool`: the account pool,
 * `concurrency`: the account's concurrency limit, `policy`: a unit policy, `rate_limit`: a rate limit). `rejected`: the request itself was refused, whatever the caps:
 * `validation` (a ValidationError), else the code of its typed error in lower case (`not_found`,
 * `forbidden`, `idempotency_conflict`, `upstream_error`), `unavailable` (the database is away) or `error` (a bug).
 */
export type AdmissionOutcome =
  | { readonly outcome: 'admitted'; readonly reason: 'new' | 'queued' | 'replayed' }
  | {
      readonly outcome: 'refused';
      readonly reason: 'budget' | 'pool' | 'concurrency' | 'policy' | 'rate_limit';
      readonly refusal: BudgetExceededError | ConcurrencyLimitError | PolicyViolationError | RateLimitedError;
      readonly projectId: string;
    }
  | { readonly outcome: 'rejected'; readonly reason: string };

const ADMITTED_NEW: AdmissionOutcome = { outcome: 'admitted', reason: 'new' };
const ADMITTED_REPLAYED: AdmissionOutcome = { outcome: 'admitted', reason: 'replayed' };
const ADMITTED_QUEUED: AdmissionOutcome = { outcome: 'admitted', reason: 'queued' };
const REJECTED_BY_VALIDATION: AdmissionOutcome = { outcome: 'rejected', reason: 'validation' };
const REJECTED_UNAVAILABLE: AdmissionOutcome = { outcome: 'rejected', reason: 'unavailable' };
const REJECTED_BY_ERROR: AdmissionOutcome = { outcome: 'rejected', reason: 'error' };

function outcomeOf(error: unknown, projectId: string): AdmissionOutcome {
  if (error instanceof BudgetExceededError) return { outcome: 'refused', reason: error.reason === 'POOL' ? 'pool' : 'budget', refusal: error, projectId };
  if (error instanceof ConcurrencyLimitError) return { outcome: 'refused', reason: 'concurrency', refusal: error, projectId };
  if (error instanceof PolicyViolationError) return { outcome: 'refused', reason: 'policy', refusal: error, projectId };
  if (error instanceof RateLimitedError) return { outcome: 'refused', reason: 'rate_limit', refusal: error, projectId };
  if (error instanceof DomainError) return error.code === 'VALIDATION_FAILED' ? REJECTED_BY_VALIDATION : { outcome: 'rejected', reason: error.code.toLowerCase() };
  return isDatabaseUnavailable(error) ? REJECTED_UNAVAILABLE : REJECTED_BY_ERROR;
}

export interface Admitted {
  job: JobRow;
  /** True when an earlier request with the same idempotency key created the job. */
  replayed: boolean;
  /** A new job's account row as the admission locked it (its key still encrypted), for forwarding at once. */
  account?: AccountRow;
}

export interface AdmitOptions {
  /**
   * The caller forwards the new job itself right after: its first submission attempt is counted by the admission
   * (forwardJob's claim), so forwarding needs no statement of its own before calling HeyGen.
   */
  forwardNow?: boolean;
}

/** HeyGen's own rule for an Idempotency-Key, the one rule of every door (GraphQL idempotencyKey, the /v3 header). */
export const IDEMPOTENCY_KEY = /^[A-Za-z0-9_\-:.]{1,255}$/;

/** Canonical JSON (sorted keys), so that the same request always hashes the same. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function requestHash(input: SubmitJobInput): string {
  // Tags and the end user count only when given, so that the hash of a request without them is what it always was.
  const tags = input.tags && Object.keys(input.tags).length > 0 ? input.tags : undefined;
  return createHash('sha256')
    .update(canonical({ projectId: input.projectId, kind: input.kind, request: input.request, estimatedSeconds: input.estimatedSeconds, tags, endUser: input.endUser ?? undefined }))
    .digest('hex');
}

const DEFAULT_MAX_TAGS = 10;

/** A job's person: the end user an app named, else the subject that submitted it (as the rollups key it). */
export function personOf(job: { createdBy: string; endUser: string | null }): string {
  return job.endUser !== null ? `user:${job.endUser}` : job.createdBy;
}

/** The syntax of tags and of an end user; the allowlist of keys is checked by the admission function. */
function checkTagsAndEndUser(actor: Actor, input: SubmitJobInput, maxTags: number): void {
  const entries = Object.entries(input.tags ?? {});
  if (entries.length > maxTags) throw new ValidationError('tags', `a job carries at most ${maxTags} tags; ${entries.length} were given`);
  for (const [key, value] of entries) {
    requireTagKey(key, 'tags');
    requireLabel(value, `tags.${key}`);
  }
  if (input.endUser === undefined || input.endUser === null) return;
  // Only an app names the person it acts for; a person's own token is its person already.
  if (actor.role !== 'SERVICE') throw new ValidationError('endUser', 'endUser is for apps: a SERVICE token names the person it submits for');
  requireLabel(input.endUser, 'endUser');
}

/** The scope an idempotency key lives in: the calling identity (a service token is its own scope). */
function idempotencyScope(actor: Actor): string {
  return actor.subject;
}

export async function admitJob(
  db: Db,
  actor: Actor,
  input: SubmitJobInput,
  settings: AdmissionSettings,
  now = new Date(),
  opts: AdmitOptions = {},
): Promise<Admitted> {
  const report = settings.onOutcome;
  if (!report) return admit(db, actor, input, settings, now, opts.forwardNow ?? false);
  let admitted: Admitted;
  try {
    admitted = await admit(db, actor, input, settings, now, opts.forwardNow ?? false);
  } catch (error) {
    report(outcomeOf(error, input.projectId));
    throw error;
  }
  report(admitted.replayed ? ADMITTED_REPLAYED : admitted.job.status === 'QUEUED' ? ADMITTED_QUEUED : ADMITTED_NEW);
  return admitted;
}

async function admit(db: Db, actor: Actor, input: SubmitJobInput, settings: AdmissionSettings, now: Date, claimForwarding = false): Promise<Admitted> {
  if (input.idempotencyKey !== null && !IDEMPOTENCY_KEY.test(input.idempotencyKey)) {
    throw new ValidationError('idempotencyKey', 'idempotencyKey must be 1 to 255 characters of A-Z a-z 0-9 _ - : .');
  }
  if (!isUuid(input.projectId)) throw new NotFoundError('OrgUnit', input.projectId);
  checkRequestSize(input.request, settings.maxRequestBytes);
  checkTagsAndEndUser(actor, input, settings.maxTags ?? DEFAULT_MAX_TAGS);
  // Validation and media measurement are network I/O: done before the transaction, never inside it.
  const prepared = await prepareJob(input.kind, input.request, settings.media, settings.maxJsonDepth, settings.callbacks);
  // App callbacks are signed with the calling service token's callback secret: only an app (a token) can name one.
  if (prepared.callback && (actor.role !== 'SERVICE' || !actor.tokenId)) {
    throw new ValidationError('request.callback_url', 'callback_url is for apps: submit with a SERVICE token, whose callback signing secret signs the deliveries');
  }
  const hash = requestHash(input);
  const scope = idempotencyScope(actor);
  const cache = metadataOf(db);
  for (let attempt = 0; ; attempt++) {
    const project = await cache.project(input.projectId);
    if (!project || !canReadUnit(actor, project)) throw new NotFoundError('OrgUnit', input.projectId);
    if (project.kind !== 'PROJECT') throw new ValidationError('projectId', 'jobs belong to a PROJECT unit');
    if (!canSubmitFor(actor, project)) throw new ForbiddenError('this caller cannot submit jobs for this project');
    if (!project.accountId) throw new ValidationError('projectId', 'no account is assigned to this project or any unit above it');
    const accounts = await cache.accounts(attempt > 0 || !cache.knows(project.accountId));
    const account = accounts.get(project.accountId);
    if (!account) throw new NotFoundError('Account', project.accountId);

    let estimate;
    try {
      estimate = estimateJob(prepared, input.estimatedSeconds, account.priceBook);
    } catch (error) {
      // An earlier request with this key was admitted: it is replayed (or conflicts) whatever this one would cost.
      if (input.idempotencyKey !== null && error instanceof DomainError) {
        const existing = await findByIdempotencyKey(db, scope, input.idempotencyKey);
        if (existing) return replay(existing, hash);
      }
      throw error;
    }
    const requested = estimate.estimatedMicroCs;
    const period = periodOf(now, account.timezone);
    const day = dayOf(now, account.timezone);
    const jobId = newRowId();
    const job = jsonRowOf(jobsTable, {
      id: jobId,
      projectId: project.id,
      accountId: account.id,
      kind: input.kind,
      status: 'RESERVED',
      request: prepared.body,
      requestHash: hash,
      idempotencyScope: scope,
      idempotencyKey: input.idempotencyKey,
      createdBy: actor.subject,
      endUser: input.endUser ?? null,
      tags: input.tags ?? {},
      product: estimate.product,
      rateMicroCsPerSecond: estimate.rateMicroCsPerSecond,
      estimatedSeconds: estimate.estimatedSeconds,
      estimatedMicroCs: requested,
      reservedMicroCs: requested,
      holdPeriod: period,
      holdDay: day,
      holdExpiresAt: new Date(now.getTime() + settings.holdTtlHours * 3600_000),
      nextCheckAt: new Date(now.getTime() + settings.forwardLeaseMs),
      createdAt: now,
      callback: prepared.callback ? { ...prepared.callback, tokenId: actor.tokenId! } : null,
      // The caller forwards at once: its first submission attempt is counted with the admission (as forwardJob's claim would).
      ...(claimForwarding ? { submitAttempts: 1 } : {}),
    });
    const audit = jsonRowOf(
      auditEventsTable,
      auditRow(actor, {
        action: 'job.submit',
        entityType: 'Job',
        entityId: jobId,
        before: null,
        after: {
          projectId: project.id,
          accountId: account.id,
          kind: input.kind,
          status: 'RESERVED',
          product: estimate.product,
          estimatedSeconds: estimate.estimatedSeconds,
          estimatedMicroCs: requested,
          holdPeriod: period,
          idempotencyKey: input.idempotencyKey,
          requestHash: hash,
          ...(input.tags && Object.keys(input.tags).length > 0 ? { tags: input.tags } : {}),
          ...(input.endUser ? { endUser: input.endUser } : {}),
        },
      }),
    );
    // Every account's current period and day (budgets over all accounts count each account's own window).
    const periods: Record<string, { timezone: string; period: string; day: string }> = {};
    for (const a of accounts.values()) periods[a.id] = { timezone: a.timezone, period: periodOf(now, a.timezone), day: dayOf(now, a.timezone) };
    const answer = await callAdmit(db, account.id, {
      account_id: account.id,
      project_id: project.id,
      path: project.path,
      period,
      day,
      requested: requested.toString(),
      price_book_md5: account.priceBookMd5,
      timezone: account.timezone,
      accounts: periods,
      scope,
      idempotency_key: input.idempotencyKey,
      request_hash: hash,
      in_flight_statuses: IN_FLIGHT_STATUSES,
      queue: input.queue ?? false,
      job,
      audit,
      // Unit policies and rate limits (gateway_check_governance): the gateway's clock, the calling token, the job's facts.
      now: now.toISOString(),
      token_id: actor.role === 'SERVICE' && actor.tokenId && isUuid(actor.tokenId) ? actor.tokenId : null,
      policy: policyFactsOf(governedFacts(prepared, estimate)),
    }, settings.groupCommitMax ?? 1);
    switch (answer.outcome) {
      case 'admitted':
        return { job: rowFromJson(jobsTable, answer.job), replayed: false, account: rowFromJson(accountsTable, answer.account) };
      case 'replayed':
        return { job: rowFromJson(jobsTable, answer.job), replayed: true };
      case 'conflict':
        throw new IdempotencyConflictError(answer.job_id);
      case 'concurrency': {
        // The wait suggested is the one the job would show had it been queued now (the youngest of its project).
        const standing = await queueStanding(db, { id: YOUNGEST, status: 'QUEUED', projectId: project.id, accountId: account.id, createdAt: now, nextCheckAt: null }, settings.queue, now);
        throw new ConcurrencyLimitError(answer.limit, answer.in_flight, standing!.retryAfterSeconds, answer.waiting);
      }
      case 'budget': {
        const b = rowFromJson(budgetsTable, answer.budget);
        // The limit in force: with a MONTHLY budget's rollover, more than its own.
        const refusal = new BudgetExceededError(b.id, b.orgUnitId, BigInt(answer.limit), BigInt(answer.available), requested, 'BUDGET');
        const accountRow = rowFromJson(accountsTable, answer.account);
        const terms = answer.terms ? rowFromJson(accountTermsTable, answer.terms) : null;
        const window = windowLabel(b.window, answer.from, answer.to);
        throw describeRefusal(actor, refusal, { what: `the ${b.enforcement} budget of`, window, rate: budgetRateUsdPerCs(accountRow, terms) }, { id: b.orgUnitId, ...answer.unit });
      }
      case 'tag_key':
        throw new ValidationError(`tags.${answer.key}`, `tag key "${answer.key}" is not in the organization's allowlist (setTagKeys)`);
      case 'group_budget': {
        const b = rowFromJson(groupBudgetsTable, answer.budget);
        const accountRow = rowFromJson(accountsTable, answer.account);
        const terms = answer.terms ? rowFromJson(accountTermsTable, answer.terms) : null;
        const group = b.person !== null ? { person: b.person } : { tagKey: b.tagKey!, tagValue: b.tagValue! };
        const refusal = new BudgetExceededError(b.id, b.orgUnitId, b.limitMicroCs, BigInt(answer.available), requested, b.person !== null ? 'PERSON' : 'TAG', null, group);
        const window = windowLabel(b.window, answer.from, answer.to);
        const what = 'person' in group ? `the budget of person "${group.person}" in` : `the budget of tag ${group.tagKey}=${group.tagValue} in`;
        throw describeRefusal(actor, refusal, { what, window, rate: budgetRateUsdPerCs(accountRow, terms) }, { id: b.orgUnitId, ...answer.unit });
      }
      case 'pool': {
        const accountRow = rowFromJson(accountsTable, answer.account);
        const terms = answer.terms ? rowFromJson(accountTermsTable, answer.terms) : null;
        const refusal = new BudgetExceededError(answer.budget_id, answer.org_unit_id, BigInt(answer.limit), BigInt(answer.available), requested, 'POOL');
        throw describeRefusal(actor, refusal, poolContext(accountRow, terms, period), { id: answer.org_unit_id, ...answer.unit });
      }
      case 'policy':
        throw policyViolation(answer.rule, answer.org_unit_id, answer.token_id, answer.unit?.name ?? null, answer.limit, answer.actual);
      case 'rate_limited': {
        const unitName = answer.unit?.name ?? null;
        const limit = answer.rule === 'JOBS_PER_MINUTE' ? `${answer.limit} jobs per minute` : `${formatCreditSeconds(BigInt(answer.limit))} credit-seconds per hour`;
        const who = answer.token_id ? 'this service token' : `"${unitName ?? answer.org_unit_id}"`;
        // The function counts from this admission's own clock, read before it waited (for a connection, for its batch);
        // an admission stamped later, in another process, may have landed in a newer bucket meanwhile. Counted from
        // the answer, which comes after that admission, the wait is never longer than the window.
        const retryAfter = Math.min(answer.retry_after_seconds, RATE_WINDOW_SECONDS[answer.rule]);
        throw new RateLimitedError(answer.rule, answer.org_unit_id, unitName, limit, retryAfter,
          `refused: the rate limit of ${who} (${limit}) is reached; retry in ${retryAfter} s`, answer.token_id);
      }
      case 'stale':
        // The account changed since it was cached (or is not known yet): read it again and retry, a few times.
        if (attempt >= 3) throw new Error(`account ${account.id} kept changing during admission`);
        continue;
    }
  }
}

/** A refused budget's window in its message: `LIFETIME`, or the window and its bounds (`DAILY 2026-03-07`, `WEEKLY 2026-10-19..2026-10-25`). */
function windowLabel(window: string, from: string, to: string): string {
  return window === 'LIFETIME' ? 'LIFETIME' : `${window} ${from === to ? from : `${from}..${to}`}`;
}

type AdmitAnswer =
  | { outcome: 'admitted'; job: Record<string, unknown>; account: Record<string, unknown> }
  | { outcome: 'replayed'; job: Record<string, unknown> }
  | { outcome: 'conflict'; job_id: string }
  | { outcome: 'concurrency'; limit: number; in_flight: number; waiting: number }
  | {
      outcome: 'budget';
      budget: Record<string, unknown>;
      limit: string;
      available: string;
      /** The window's bounds, inclusive: periods, or days for DAILY, WEEKLY and CUSTOM (gateway_budget_bounds). */
      from: string;
      to: string;
      account: Record<string, unknown>;
      terms: Record<string, unknown> | null;
      unit: { name: string; path: string[] };
    }
  | {
      outcome: 'pool';
      budget_id: string | null;
      org_unit_id: string;
      limit: string;
      available: string;
      account: Record<string, unknown>;
      terms: Record<string, unknown> | null;
      unit: { name: string; path: string[] };
    }
  | { outcome: 'policy'; rule: PolicyRule; org_unit_id: string; token_id: string | null; limit: string | string[]; actual: string; unit: { name: string; path: string[] } | null }
  | {
      outcome: 'rate_limited';
      rule: 'JOBS_PER_MINUTE' | 'CREDIT_SECONDS_PER_HOUR';
      org_unit_id: string;
      token_id: string | null;
      limit: string;
      retry_after_seconds: number;
      unit: { name: string; path: string[] } | null;
    }
  | { outcome: 'tag_key'; key: string }
  | {
      outcome: 'group_budget';
      budget: Record<string, unknown>;
      available: string;
      from: string;
      to: string;
      account: Record<string, unknown>;
      terms: Record<string, unknown> | null;
      unit: { name: string; path: string[] };
    }
  | { outcome: 'stale' };

function policyFactsOf(facts: ReturnType<typeof governedFacts>) {
  return {
    kind: facts.kind,
    products: facts.products,
    resolution: facts.resolution,
    length_micro: facts.longestOutputMicroSeconds.toString(),
    languages: facts.languages,
  };
}

/** A rule's value in words: lists joined, seconds and credit-seconds from their micro-units. */
function ruleValue(rule: PolicyRule, value: string | string[]): string {
  if (Array.isArray(value)) return value.join(', ');
  if (rule === 'MAX_LENGTH_SECONDS') return `${formatCreditSeconds(BigInt(value))} s`;
  if (rule === 'MAX_COST_CREDIT_SECONDS' || rule === 'CREDIT_SECONDS_PER_HOUR') return `${formatCreditSeconds(BigInt(value))} cs`;
  return value;
}

/** The sliding window of each rate limit (gateway_check_governance: 60 buckets of 1 s, or of 60 s). */
const RATE_WINDOW_SECONDS = { JOBS_PER_MINUTE: 60, CREDIT_SECONDS_PER_HOUR: 3600 } as const;

/** The refusal of a job by a policy rule, in words. */
function policyViolation(rule: PolicyRule, orgUnitId: string, tokenId: string | null, unitName: string | null, limit: string | string[], actual: string): PolicyViolationError {
  const who = tokenId ? "this service token's rate limit" : `the policy of "${unitName ?? orgUnitId}"`;
  const limitText = ruleValue(rule, limit);
  const actualText = ruleValue(rule, actual);
  return new PolicyViolationError(rule, orgUnitId, unitName, limitText, actualText, `refused by ${who}: ${rule} is ${limitText}; the job has ${actualText}`, tokenId);
}

// `gateway_admit` (migrations) does one whole admission in one call, `gateway_admit_batch` several in one transaction;
// their answers pass through `gateway_noted_admission(s)`, which writes a refusal's `budget.refused` money event (once
// per budget and hour, docs/notifications.md) in the same statement.
const ADMIT_ONE = namedStatement<{ r: AdmitAnswer | string }>('gateway_admit', 'select gateway_noted_admission(q.p, gateway_admit(q.p)) as r from (select $1::jsonb as p) as q');
const ADMIT_BATCH = namedStatement<{ r: (AdmitAnswer | { outcome: 'error' })[] | string }>(
  'gateway_admit_batch',
  'select gateway_noted_admissions(q.p, gateway_admit_batch(q.p)) as r from (select $1::jsonb as p) as q',
);

/**
 * Group commit (src/db/group-commit.ts): admissions of one account arriving while one of its admissions is in flight
 * are admitted together, in arrival order, in one transaction (gateway_admit_batch), each answered as it would be
 * alone. Batches are of one account, so that they take the locks in the order single admissions do.
 */
const callAdmit = groupCommit(
  // An answer `error`: failed inside the batch (and rolled back alone), made again on its own, to fail as it would alone.
  jsonCalls<Record<string, unknown>, AdmitAnswer, { outcome: 'error' }>(ADMIT_ONE, ADMIT_BATCH, (answer): answer is { outcome: 'error' } => answer.outcome === 'error'),
);

/** What admission reads of a project: units never move, and their account assignment never changes. */
interface ProjectMetadata {
  id: string;
  kind: string;
  path: string[];
  /** The account of the nearest unit on the path that has one. */
  accountId: string | null;
}

/** What admission reads of an account before its transaction; the admission function checks it is still so. */
interface AccountMetadata {
  id: string;
  timezone: string;
  priceBook: (typeof accountsTable.$inferSelect)['priceBook'];
  priceBookMd5: string;
}

const METADATA_MAX = 10_000;

interface MetadataCache {
  project(id: string): Promise<ProjectMetadata | null>;
  knows(accountId: string): boolean;
  accounts(refresh: boolean): Promise<Map<string, AccountMetadata>>;
}

const metadataCaches = new WeakMap<Db, MetadataCache>();

function metadataOf(db: Db): MetadataCache {
  let cache = metadataCaches.get(db);
  if (cache) return cache;
  const projects = new Map<string, ProjectMetadata>();
  let accounts: Map<string, AccountMetadata> | null = null;
  cache = {
    async project(id) {
      const known = projects.get(id);
      if (known) return known;
      const [row] = await db
        .select({
          id: orgUnitsTable.id,
          kind: orgUnitsTable.kind,
          path: orgUnitsTable.path,
          // Correlated on the outer row by its table name (the inner one is x).
          accountId: sql<string | null>`(select x.account_id from org_units x where x.id = any(org_units.path) and x.account_id is not null
            order by array_position(org_units.path, x.id) desc limit 1)`,
        })
        .from(orgUnitsTable)
        .where(eq(orgUnitsTable.id, id));
      if (!row) return null;
      if (projects.size >= METADATA_MAX) projects.delete(projects.keys().next().value!);
      projects.set(id, row);
      return row;
    },
    knows(accountId) {
      return accounts?.has(accountId) ?? false;
    },
    async accounts(refresh) {
      if (accounts && !refresh) return accounts;
      const rows = await db
        .select({ id: accountsTable.id, timezone: accountsTable.timezone, priceBook: accountsTable.priceBook, priceBookMd5: sql<string>`md5(${accountsTable.priceBook}::text)` })
        .from(accountsTable);
      accounts = new Map(rows.map((r) => [r.id, r]));
      return accounts;
    },
  };
  metadataCaches.set(db, cache);
  return cache;
}

/**
 * Every job keeps its request (it is re-sent on every submission retry and shown on the job), so its size is
 * bounded before anything is written: memory per page of jobs, and per forwarding, stays bounded.
 */
function checkRequestSize(request: unknown, maxBytes: number): void {
  let text: string | undefined;
  try {
    text = JSON.stringify(request);
  } catch {
    throw new ValidationError('request', 'request cannot be stored as JSON');
  }
  const bytes = text === undefined ? 0 : Buffer.byteLength(text, 'utf8');
  if (bytes > maxBytes) throw new ValidationError('request', `request is ${bytes} bytes of JSON; at most ${maxBytes} are accepted`);
}

async function findByIdempotencyKey(db: Db, scope: string, key: string): Promise<JobRow | undefined> {
  const [row] = await db
    .select()
    .from(jobsTable)
    .where(and(eq(jobsTable.idempotencyScope, scope), eq(jobsTable.idempotencyKey, key)));
  return row;
}

function replay(existing: JobRow, hash: string): Admitted {
  if (existing.requestHash !== hash) throw new IdempotencyConflictError(existing.id);
  return { job: existing, replayed: true };
}

/** What a refusal's description needs besides the unit's name, taken from the rows the admission already read. */
interface RefusalContext {
  /** `the HARD budget of`, `the account's pool (no overage allowed) for`. */
  what: string;
  /** `MONTHLY 2026-12`, `CONTRACT_TERM 2026-01..2026-12`, `LIFETIME`, `included pool 2026-12`, … */
  window: string;
  /** USD per credit-second budgets convert with (the overage rate, or a credit package's price); null: none. */
  rate: Q.Rational | null;
}

function poolContext(account: AccountRow, terms: AccountTermsRow | null, period: string): RefusalContext {
  const term = account.billingModel === 'CREDIT_PACKAGE' ? termPeriods(terms) : null;
  return {
    what: "the account's pool (no overage allowed) for",
    window: term ? `credit package term ${term.from}..${term.to}` : `included pool ${period}`,
    rate: budgetRateUsdPerCs(account, terms),
  };
}

/**
 * How to ask for more under a refusing budget: the mutation and the budget's GraphQL global id (base64 of
 * `Budget:<uuid>`, as src/graphql/ids.ts decodes it), so that an app can pass the message on to a person.
 */
function askForMore(budgetId: string): string {
  return `ask for more with requestBudgetIncrease(budgetId: "${Buffer.from(`Budget:${budgetId}`).toString('base64')}")`;
}

/**
 * The refusal in words: the unit's name (returned by the admission function), the window, the limit, what is
 * available and what was requested, in credit-seconds and in USD, and how to ask for more.
 */
function describeRefusal(
  actor: Actor,
  refusal: BudgetExceededError,
  context: RefusalContext,
  unit: { id: string; name?: string; path?: string[] } | null,
): BudgetExceededError {
  const { rate } = context;
  const amount = (micro: bigint) => {
    const cs = `${formatCreditSeconds(micro)} cs`;
    return rate ? `${cs} ($${formatCents(usdToCentsHalfUp(Q.mul(Q.rational(micro, MICRO_PER_CS), rate)))})` : cs;
  };
  const known = unit?.name !== undefined && unit.path !== undefined ? { id: unit.id, name: unit.name, path: unit.path } : null;
  const unitName = known?.name ?? refusal.orgUnitId;
  // The limit of a budget above the caller's own subtree (or the account pool) would, with what is available,
  // tell the siblings' usage: such a caller learns only what is available (as BudgetExceededError.limitCreditSeconds).
  const limitVisible = refusal.reason === 'POOL' ? canReadAccountTotals(actor) : !!known && canReadCostsOf(actor, known);
  const message =
    `refused: the job would exceed ${context.what} "${unitName}" (${context.window}): ` +
    `${limitVisible ? `limit ${amount(refusal.limitMicroCs)}, ` : ''}available ${amount(refusal.availableMicroCs)}, requested ${amount(refusal.requestedMicroCs)}` +
    (refusal.reason === 'BUDGET' && refusal.budgetId ? `; ${askForMore(refusal.budgetId)}` : '');
  return refusal.withDetails({ unitName, window: context.window, message });
}

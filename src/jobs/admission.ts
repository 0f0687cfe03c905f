// Admission: one transaction that checks every cap and writes the job with its hold, or writes nothing.
// Lock order, shared with settlement: job row → account row → HARD budget rows (by id) → rollups (path order).
// The audit event is the admission's last insert (it takes no lock that admissions contend on).
import { createHash } from 'node:crypto';
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { isDatabaseUnavailable, isUniqueViolation, queryRows, toBigInt } from '../db/client.js';
import { accountsTable, budgetsTable, jobsTable, orgUnitsTable, type JobKind } from '../db/schema.js';
import {
  BudgetExceededError,
  ConcurrencyLimitError,
  DomainError,
  ForbiddenError,
  IdempotencyConflictError,
  NotFoundError,
  ValidationError,
} from '../errors.js';
import { canReadAccountTotals, canReadCostsOf, canReadUnit, canSubmitFor, type Actor } from '../auth/actor.js';
import { accountForPath, isUuid } from '../org/units.js';
import { budgetsOnPath, usageOfBudgets, windowOf, type WindowBounds } from '../budgets/budgets.js';
import { termPeriods, termsFor, type AccountTermsRow } from '../accounts/accounts.js';
import { budgetRateUsdPerCs } from '../billing/terms.js';
import { formatCents, formatCreditSeconds, MICRO_PER_CS, usdToCentsHalfUp } from '../primitives/money.js';
import * as Q from '../primitives/rational.js';
import { periodOf } from '../primitives/period.js';
import { recordMovement } from '../ledger/ledger.js';
import { recordAudit } from '../audit/audit.js';
import { estimateJob, prepareJob, type PreparedJob } from './estimate.js';
import type { MediaProbeLimits } from '../pricing/media.js';
import { IN_FLIGHT_STATUSES } from './lifecycle.js';

export type JobRow = typeof jobsTable.$inferSelect;

export interface SubmitJobInput {
  projectId: string;
  kind: JobKind;
  request: unknown;
  estimatedSeconds: string | null;
  idempotencyKey: string | null;
}

export interface AdmissionSettings {
  holdTtlHours: number;
  /** How long the submitting process owns the job before a worker may take over its forwarding. */
  forwardLeaseMs: number;
  /** Suggested wait after a concurrency refusal. */
  concurrencyRetryAfterSeconds: number;
  /**
   * Told how every admission ended (for the /metrics counters): once per call, after the transaction committed or
   * rolled back. Must not throw.
   */
  onOutcome?: (outcome: AdmissionOutcome) => void;
  /** Limits on reading the duration of media a request points at (before the transaction). */
  media: MediaProbeLimits;
  /** Largest `request` stored, in bytes of JSON (JOB_REQUEST_MAX_BYTES). */
  maxRequestBytes: number;
  /** Deepest nesting of a request body accepted (MAX_JSON_DEPTH). */
  maxJsonDepth?: number;
}

/**
 * How an admission ended. `admitted`: a new job and its hold (`new`) or the job of an earlier request with the same
 * idempotency key (`replayed`). `refused`: a cap said no (`budget`: a HARD budget, `pool`: the account pool,
 * `concurrency`: the account's concurrency limit). `rejected`: the request itself was refused, whatever the caps:
 * `validation` (a ValidationError), else the code of its typed error in lower case (`not_found`,
 * `forbidden`, `idempotency_conflict`, `upstream_error`), `unavailable` (the database is away) or `error` (a bug).
 */
export type AdmissionOutcome =
  | { readonly outcome: 'admitted'; readonly reason: 'new' | 'replayed' }
  | {
      readonly outcome: 'refused';
      readonly reason: 'budget' | 'pool' | 'concurrency';
      readonly refusal: BudgetExceededError | ConcurrencyLimitError;
      readonly projectId: string;
    }
  | { readonly outcome: 'rejected'; readonly reason: string };

const ADMITTED_NEW: AdmissionOutcome = { outcome: 'admitted', reason: 'new' };
const ADMITTED_REPLAYED: AdmissionOutcome = { outcome: 'admitted', reason: 'replayed' };
const REJECTED_BY_VALIDATION: AdmissionOutcome = { outcome: 'rejected', reason: 'validation' };
const REJECTED_UNAVAILABLE: AdmissionOutcome = { outcome: 'rejected', reason: 'unavailable' };
const REJECTED_BY_ERROR: AdmissionOutcome = { outcome: 'rejected', reason: 'error' };

function outcomeOf(error: unknown, projectId: string): AdmissionOutcome {
  if (error instanceof BudgetExceededError) return { outcome: 'refused', reason: error.reason === 'POOL' ? 'pool' : 'budget', refusal: error, projectId };
  if (error instanceof ConcurrencyLimitError) return { outcome: 'refused', reason: 'concurrency', refusal: error, projectId };
  if (error instanceof DomainError) return error.code === 'VALIDATION_FAILED' ? REJECTED_BY_VALIDATION : { outcome: 'rejected', reason: error.code.toLowerCase() };
  return isDatabaseUnavailable(error) ? REJECTED_UNAVAILABLE : REJECTED_BY_ERROR;
}

export interface Admitted {
  job: JobRow;
  /** True when an earlier request with the same idempotency key created the job. */
  replayed: boolean;
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
  return createHash('sha256')
    .update(canonical({ projectId: input.projectId, kind: input.kind, request: input.request, estimatedSeconds: input.estimatedSeconds }))
    .digest('hex');
}

/** The scope an idempotency key lives in: the calling identity (a service token is its own scope). */
function idempotencyScope(actor: Actor): string {
  return actor.subject;
}

export async function admitJob(db: Db, actor: Actor, input: SubmitJobInput, settings: AdmissionSettings, now = new Date()): Promise<Admitted> {
  const report = settings.onOutcome;
  if (!report) return admit(db, actor, input, settings, now);
  let admitted: Admitted;
  try {
    admitted = await admit(db, actor, input, settings, now);
  } catch (error) {
    report(outcomeOf(error, input.projectId));
    throw error;
  }
  report(admitted.replayed ? ADMITTED_REPLAYED : ADMITTED_NEW);
  return admitted;
}

async function admit(db: Db, actor: Actor, input: SubmitJobInput, settings: AdmissionSettings, now: Date): Promise<Admitted> {
  if (input.idempotencyKey !== null && !IDEMPOTENCY_KEY.test(input.idempotencyKey)) {
    throw new ValidationError('idempotencyKey', 'idempotencyKey must be 1 to 255 characters of A-Z a-z 0-9 _ - : .');
  }
  if (!isUuid(input.projectId)) throw new NotFoundError('OrgUnit', input.projectId);
  checkRequestSize(input.request, settings.maxRequestBytes);
  // Validation and media measurement are network I/O: done before the transaction, never inside it.
  const prepared = await prepareJob(input.kind, input.request, settings.media, settings.maxJsonDepth);
  const hash = requestHash(input);
  const scope = idempotencyScope(actor);
  try {
    return await db.transaction((tx) => admitInTransaction(tx, actor, input, prepared, hash, scope, settings, now));
  } catch (error) {
    if (error instanceof BudgetExceededError) throw await describeRefusal(db, actor, error);
    // Two identical requests on different accounts' locks can race to the unique key; the loser replays.
    if (input.idempotencyKey !== null && isUniqueViolation(error)) {
      const existing = await findByIdempotencyKey(db, scope, input.idempotencyKey);
      if (existing) return replay(existing, hash);
    }
    throw error;
  }
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

async function admitInTransaction(
  tx: Db,
  actor: Actor,
  input: SubmitJobInput,
  prepared: PreparedJob,
  hash: string,
  scope: string,
  settings: AdmissionSettings,
  now: Date,
): Promise<Admitted> {
  const [project] = await tx.select().from(orgUnitsTable).where(eq(orgUnitsTable.id, input.projectId));
  if (!project || !canReadUnit(actor, project)) throw new NotFoundError('OrgUnit', input.projectId);
  if (project.kind !== 'PROJECT') throw new ValidationError('projectId', 'jobs belong to a PROJECT unit');
  if (!canSubmitFor(actor, project)) throw new ForbiddenError('this caller cannot submit jobs for this project');
  const accountId = await accountForPath(tx, project.path);
  if (!accountId) throw new ValidationError('projectId', 'no account is assigned to this project or any unit above it');

  // The account row serialises admissions of one account: the concurrency count and the pool guard
  // read state that only holders of this lock change.
  const [account] = await tx.select().from(accountsTable).where(eq(accountsTable.id, accountId)).for('no key update');
  if (!account) throw new NotFoundError('Account', accountId);

  if (input.idempotencyKey !== null) {
    const existing = await findByIdempotencyKey(tx, scope, input.idempotencyKey);
    if (existing) return replay(existing, hash);
  }

  const estimate = estimateJob(prepared, input.estimatedSeconds, account.priceBook);
  const requested = estimate.estimatedMicroCs;
  const period = periodOf(now, account.timezone);

  const [inFlight] = await queryRows<{ n: number }>(
    tx,
    sql`select count(*)::int as n from jobs where account_id = ${account.id} and status in (${sql.join(
      IN_FLIGHT_STATUSES.map((s) => sql`${s}`),
      sql`, `,
    )})`,
  );
  const inFlightCount = Number(inFlight?.n ?? 0);
  if (inFlightCount >= account.concurrencyLimit) {
    throw new ConcurrencyLimitError(account.concurrencyLimit, inFlightCount, settings.concurrencyRetryAfterSeconds);
  }

  const budgets = await budgetsOnPath(tx, project.path, account.id);
  const hardIds = budgets.filter((b) => b.enforcement === 'HARD').map((b) => b.id);
  // Lock in id order, and use the rows as locked: admissions of other accounts that share an
  // all-accounts budget serialise here, and a concurrent setBudget is seen whole or not at all.
  const hard = hardIds.length === 0
    ? []
    : await tx.select().from(budgetsTable).where(inArray(budgetsTable.id, hardIds)).orderBy(budgetsTable.id).for('update');
  const terms = await termsFor(tx, account.id, period);
  const windows = new Map<string, WindowBounds>();
  for (const b of hard) windows.set(b.id, windowOf(b, b.accountId ? account : null, terms));
  const usage = await usageOfBudgets(tx, windows, now);
  let tightest: { refusal: BudgetExceededError; budget: (typeof hard)[number] } | null = null;
  for (const b of hard) {
    const u = usage.get(b.id) ?? { reservedMicroCs: 0n, settledMicroCs: 0n };
    const available = b.limitMicroCs - u.reservedMicroCs - u.settledMicroCs;
    if (requested > available) {
      const refusal = new BudgetExceededError(b.id, b.orgUnitId, b.limitMicroCs, available > 0n ? available : 0n, requested, 'BUDGET');
      if (!tightest || refusal.availableMicroCs < tightest.refusal.availableMicroCs) tightest = { refusal, budget: b };
    }
  }
  if (tightest) {
    const { refusal, budget: b } = tightest;
    const bounds = windows.get(b.id)!;
    const window = b.window === 'LIFETIME' ? 'LIFETIME' : 'currentMonth' in bounds ? `MONTHLY ${period}` : `${b.window} ${bounds.from}..${bounds.to}`;
    throw withRefusalContext(refusal, { what: `the ${b.enforcement} budget of`, window, rate: budgetRateUsdPerCs(account, terms) });
  }

  await checkPool(tx, account, terms, project.path, budgets, requested, period);

  const [job] = await tx
    .insert(jobsTable)
    .values({
      projectId: project.id,
      accountId: account.id,
      kind: input.kind,
      status: 'RESERVED',
      request: prepared.body,
      requestHash: hash,
      idempotencyScope: scope,
      idempotencyKey: input.idempotencyKey,
      createdBy: actor.subject,
      product: estimate.product,
      rateMicroCsPerSecond: estimate.rateMicroCsPerSecond,
      estimatedSeconds: estimate.estimatedSeconds,
      estimatedMicroCs: requested,
      reservedMicroCs: requested,
      holdPeriod: period,
      holdExpiresAt: new Date(now.getTime() + settings.holdTtlHours * 3600_000),
      nextCheckAt: new Date(now.getTime() + settings.forwardLeaseMs),
      createdAt: now,
    })
    .returning();
  await recordMovement(tx, 'HOLD', {
    jobId: job!.id,
    accountId: account.id,
    orgUnitId: project.id,
    path: project.path,
    period,
    amountMicroCs: requested,
  });
  // Last write of the admission: a refusal above leaves no audit event, an admission always has one.
  await recordAudit(tx, actor, {
    action: 'job.submit',
    entityType: 'Job',
    entityId: job!.id,
    before: null,
    after: {
      projectId: job!.projectId,
      accountId: job!.accountId,
      kind: job!.kind,
      status: job!.status,
      product: job!.product,
      estimatedSeconds: job!.estimatedSeconds,
      estimatedMicroCs: job!.estimatedMicroCs,
      holdPeriod: job!.holdPeriod,
      idempotencyKey: job!.idempotencyKey,
      requestHash: job!.requestHash,
    },
  });
  return { job: job!, replayed: false };
}

/**
 * The account's own pool: a credit package can never be overdrawn; a usage-based pool is only a limit for
 * units under a budget with allowOverage: false. Usage is read at the root, which every project sits under.
 */
async function checkPool(
  tx: Db,
  account: typeof accountsTable.$inferSelect,
  terms: AccountTermsRow | null,
  path: readonly string[],
  budgets: { allowOverage: boolean; orgUnitId: string; id: string }[],
  requested: bigint,
  period: string,
): Promise<void> {
  const noOverage = budgets.find((b) => !b.allowOverage);
  let pool: bigint | null = null;
  let from = period;
  let to = period;
  if (account.billingModel === 'CREDIT_PACKAGE') {
    pool = terms?.poolMicroCs ?? 0n;
    const term = termPeriods(terms);
    if (term) ({ from, to } = term);
    if (period < from || period > to) {
      throw withRefusalContext(new BudgetExceededError(null, path[0]!, pool, 0n, requested, 'POOL'), poolContext(account, terms, period));
    }
  } else if (noOverage) {
    pool = terms?.includedMicroCs ?? 0n;
  }
  if (pool === null) return;
  const [used] = await queryRows<{ used: string }>(
    tx,
    // Settled in the pool's periods, plus every open hold (one from last month settles into this one).
    sql`select (coalesce(sum(settled_micro_cs) filter (where period between ${from} and ${to}), 0) + coalesce(sum(reserved_micro_cs), 0))::text as used
        from usage_rollups where org_unit_id = ${path[0]!} and account_id = ${account.id}`,
  );
  const available = pool - toBigInt(used?.used);
  if (requested > available) {
    const refusal = new BudgetExceededError(noOverage?.id ?? null, noOverage?.orgUnitId ?? path[0]!, pool, available > 0n ? available : 0n, requested, 'POOL');
    throw withRefusalContext(refusal, poolContext(account, terms, period));
  }
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

const refusalContexts = new WeakMap<BudgetExceededError, RefusalContext>();

function withRefusalContext(refusal: BudgetExceededError, context: RefusalContext): BudgetExceededError {
  refusalContexts.set(refusal, context);
  return refusal;
}

function poolContext(account: typeof accountsTable.$inferSelect, terms: AccountTermsRow | null, period: string): RefusalContext {
  const term = account.billingModel === 'CREDIT_PACKAGE' ? termPeriods(terms) : null;
  return {
    what: "the account's pool (no overage allowed) for",
    window: term ? `credit package term ${term.from}..${term.to}` : `included pool ${period}`,
    rate: budgetRateUsdPerCs(account, terms),
  };
}

/**
 * The refusal in words, after the admission rolled back: the unit's name (the one read a refusal adds), the
 * window, the limit, what is available and what was requested, in credit-seconds and in USD.
 */
async function describeRefusal(db: Db, actor: Actor, refusal: BudgetExceededError): Promise<BudgetExceededError> {
  const context = refusalContexts.get(refusal);
  if (!context) return refusal;
  const [unit] = await db.select({ id: orgUnitsTable.id, name: orgUnitsTable.name, path: orgUnitsTable.path }).from(orgUnitsTable).where(eq(orgUnitsTable.id, refusal.orgUnitId));
  const { rate } = context;
  const amount = (micro: bigint) => {
    const cs = `${formatCreditSeconds(micro)} cs`;
    return rate ? `${cs} ($${formatCents(usdToCentsHalfUp(Q.mul(Q.rational(micro, MICRO_PER_CS), rate)))})` : cs;
  };
  const unitName = unit?.name ?? refusal.orgUnitId;
  // The limit of a budget above the caller's own subtree (or the account pool) would, with what is available,
  // tell the siblings' usage: such a caller learns only what is available (as BudgetExceededError.limitCreditSeconds).
  const limitVisible = refusal.reason === 'POOL' ? canReadAccountTotals(actor) : !!unit && canReadCostsOf(actor, unit);
  const message =
    `refused: the job would exceed ${context.what} "${unitName}" (${context.window}): ` +
    `${limitVisible ? `limit ${amount(refusal.limitMicroCs)}, ` : ''}available ${amount(refusal.availableMicroCs)}, requested ${amount(refusal.requestedMicroCs)}`;
  return refusal.withDetails({ unitName, window: context.window, message });
}

// The fair job queue in front of an account's concurrency limit (docs/governance.md, "Concurrency queue").
// A job admitted under its budgets while its account has no free slot waits as QUEUED with its hold taken (the
// admission function decides). Any process dispatches: on a short tick, and at once when PostgreSQL announces a freed
// slot (`gateway_queue`, a trigger on jobs), it claims the next job by weighted fair share over the org tree in one
// call (`gateway_dispatch`: the account row locked, the job FOR UPDATE SKIP LOCKED) and forwards it exactly as an
// admission that forwards at once would. There is no leader and no state outside the tables: a process killed while
// forwarding leaves a RESERVED job with a lapsing lease, which the worker forwards (src/jobs/worker.ts).
import { and, asc, eq, inArray, isNotNull, sql } from 'drizzle-orm';
import { isDatabaseUnavailable, queryRows, type Db } from '../db/client.js';
import { jsonValue, rowFromJson } from '../db/json-rows.js';
import { accountsTable, concurrencySharesTable, jobsTable, orgUnitsTable } from '../db/schema.js';
import type { Actor } from '../auth/actor.js';
import { recordAudit } from '../audit/audit.js';
import { NotFoundError, ValidationError } from '../errors.js';
import { runPeriodically, type Periodic } from '../background/periodic.js';
import { forwardJob, type JobDeps } from './follow.js';
import { settleJob } from './settlement.js';
import { IN_FLIGHT_STATUSES, nextStatus } from './lifecycle.js';
import type { JobRow } from './admission.js';

/** The channel a freed slot is announced on (payload: the account id), by the trigger of the queue's migration. */
export const QUEUE_CHANNEL = 'gateway_queue';

export interface QueueSettings {
  /** A job that has not started this long after its admission expires (its hold released): QUEUE_TTL_SECONDS. */
  ttlMs: number;
  /** The dispatcher's tick (QUEUE_INTERVAL_MS); freed slots wake it sooner. */
  intervalMs: number;
  /** HOLD_TTL_HOURS: a dispatched job's hold lasts at least this long from its dispatch. */
  holdTtlHours: number;
  /** A job's expected run time while the account has no finished job to measure it by (QUEUE_DEFAULT_RUN_SECONDS). */
  defaultRunSeconds: number;
  /** Told of each job this process takes from the queue, by account name (the /metrics counter). Must not throw. */
  onDispatched?: (accountName: string) => void;
}

const DISPATCHED = nextStatus('QUEUED', 'DISPATCH')!;
const EXPIRE_BATCH = 50;

type DispatchAnswer = { outcome: 'dispatched'; job: Record<string, unknown>; account: Record<string, unknown> } | { outcome: 'full' | 'none' };

/** Claims and forwards queued jobs of one account while it has free slots; returns how many it dispatched. */
export async function dispatchAccount(deps: JobDeps, settings: QueueSettings, accountId: string): Promise<number> {
  const forwards: Promise<unknown>[] = [];
  for (;;) {
    const now = new Date();
    const [row] = await queryRows<{ r: DispatchAnswer | string }>(
      deps.db,
      sql`select gateway_dispatch(${JSON.stringify({
        account_id: accountId,
        in_flight_statuses: IN_FLIGHT_STATUSES,
        status: DISPATCHED,
        now: now.toISOString(),
        lease_until: new Date(now.getTime() + deps.follow.leaseMs).toISOString(),
        hold_expires_at: new Date(now.getTime() + settings.holdTtlHours * 3600_000).toISOString(),
      })}::jsonb) as r`,
    );
    const answer = jsonValue(row!.r as DispatchAnswer | string);
    if (answer.outcome !== 'dispatched') break;
    const job = rowFromJson(jobsTable, answer.job);
    const account = rowFromJson(accountsTable, answer.account);
    settings.onDispatched?.(account.name);
    // The same forwarding as a direct submission's; the claim above counted its attempt and set its lease.
    forwards.push(
      forwardJob(deps, job.id, { job, account }).catch((error: unknown) => {
        if (isDatabaseUnavailable(error)) deps.logger.warn({ jobId: job.id }, 'forwarding a dispatched job failed: the database is unavailable; the worker will retry');
        else deps.logger.error({ jobId: job.id, err: error }, 'forwarding a dispatched job failed; the worker will retry');
      }),
    );
  }
  await Promise.all(forwards);
  return forwards.length;
}

/** Expires queued jobs older than the queue's time limit: their holds are released, as any end of a job is settled. */
export async function expireQueuedJobs(deps: JobDeps, settings: QueueSettings, now = new Date()): Promise<number> {
  const due = await deps.db
    .select({ id: jobsTable.id })
    .from(jobsTable)
    .where(and(isNotNull(jobsTable.queuedAt), sql`${jobsTable.createdAt} <= ${new Date(now.getTime() - settings.ttlMs)}`))
    .orderBy(asc(jobsTable.createdAt))
    .limit(EXPIRE_BATCH);
  const seconds = Math.round(settings.ttlMs / 1000);
  for (const { id } of due) {
    // settleJob locks the job and expires it only if it is still QUEUED (a dispatcher may have claimed it since).
    await settleJob(deps.db, id, { type: 'expired', reason: 'queue_expired', message: `no concurrency slot was free within ${seconds} s of admission` }, now, deps.appEvents);
  }
  return due.length;
}

/** One pass: expire, then dispatch every account with waiting jobs. True when more expiries may be due. */
export async function runQueueOnce(deps: JobDeps, settings: QueueSettings, accountIds?: readonly string[]): Promise<boolean> {
  const expired = await expireQueuedJobs(deps, settings);
  const accounts =
    accountIds ??
    (await queryRows<{ account_id: string }>(deps.db, sql`select distinct account_id from jobs where queued_at is not null`)).map((r) => r.account_id);
  for (const accountId of accounts) await dispatchAccount(deps, settings, accountId);
  return expired >= EXPIRE_BATCH;
}

export interface Dispatcher extends Periodic {
  /** A slot of the account was freed (a notification): dispatch now rather than at the next tick. */
  wake(accountId: string): void;
}

/** This process's dispatcher: a tick, and a pass for an account as soon as one of its slots is announced free. */
export function startDispatcher(deps: JobDeps, settings: QueueSettings, backoffMaxMs?: number): Dispatcher {
  const periodic = runPeriodically('queue dispatcher', () => runQueueOnce(deps, settings), settings.intervalMs, deps.logger, { backoffMaxMs });
  // Woken accounts are served one pass at a time; a wake during a pass is served by one more pass after it.
  const woken = new Set<string>();
  let running: Promise<void> | null = null;
  let stopped = false;
  const serve = async () => {
    while (!stopped && woken.size > 0) {
      const accounts = [...woken];
      woken.clear();
      for (const accountId of accounts) {
        await dispatchAccount(deps, settings, accountId).catch((error: unknown) => {
          // The tick retries (with backoff); nothing is lost by giving up here.
          if (!isDatabaseUnavailable(error)) deps.logger.error({ accountId, err: error }, 'queue dispatch failed; the tick retries');
        });
      }
    }
    running = null;
  };
  return {
    wake(accountId) {
      if (stopped) return;
      woken.add(accountId);
      running ??= serve();
    },
    runWithin(withinMs) {
      periodic.runWithin(withinMs);
    },
    async stop() {
      stopped = true;
      await periodic.stop();
      await running;
    },
  };
}

export interface QueueStanding {
  /** 1 for the next job of its project to start: jobs of a project start in admission order. */
  position: number;
  /** When the job is expected to start, from the slots its project gets by fair share and the account's recent run times. */
  estimatedStartAt: Date;
  /** Seconds until then, at least 1: when asking again is worth it. */
  retryAfterSeconds: number;
}

/**
 * Where a queued job stands, and an honest estimate of its start: the slots its project can expect are the account's
 * limit times, at each level of its path, its unit's weight over the weights of the sibling units with jobs running
 * or waiting (bounded by the unit's minimum and maximum); the jobs ahead of it in its project start that many at a
 * time, each batch after the account's mean run time of its last jobs. Null for a job that is not queued.
 */
export async function queueStanding(db: Db, job: Pick<JobRow, 'id' | 'status' | 'projectId' | 'accountId' | 'createdAt' | 'nextCheckAt'>, settings: Pick<QueueSettings, 'defaultRunSeconds'>, now = new Date()): Promise<QueueStanding | null> {
  if (job.status !== 'QUEUED') return null;
  const [row] = await queryRows<{ ahead: number; limit: number; run_seconds: number | null; path: string[] }>(
    db,
    sql`select
          (select count(*)::int from jobs x where x.account_id = ${job.accountId} and x.project_id = ${job.projectId} and x.queued_at is not null
             and (x.created_at, x.id) < (${job.createdAt}::timestamptz, ${job.id}::uuid)) as ahead,
          (select concurrency_limit from accounts where id = ${job.accountId}) as limit,
          (select extract(epoch from avg(s.settled_at - s.submitted_at))::float8 from
             (select settled_at, submitted_at from jobs where account_id = ${job.accountId} and submitted_at is not null and settled_at is not null
              order by settled_at desc limit 20) s) as run_seconds,
          (select path from org_units where id = ${job.projectId}) as path`,
  );
  const { ahead, limit, path } = row!;
  // Per unit of the tree under the root: its weight, bounds, and whether it has jobs running or waiting.
  const active = await queryRows<{ unit: string; parent: string; weight: number; min_slots: number; max_slots: number | null }>(
    db,
    sql`select distinct u.id as unit, u.parent_id as parent, coalesce(s.weight, 1) as weight, coalesce(s.min_slots, 0) as min_slots, s.max_slots
        from jobs j join org_units p on p.id = j.project_id
        join org_units u on u.id = any(p.path) and u.parent_id is not null
        left join concurrency_shares s on s.account_id = ${job.accountId} and s.org_unit_id = u.id
        where j.account_id = ${job.accountId} and (j.queued_at is not null or j.status in (${sql.join(IN_FLIGHT_STATUSES.map((s) => sql`${s}`), sql`, `)}))`,
  );
  let slots = Number(limit);
  for (const unit of path.slice(1)) {
    const me = active.find((a) => a.unit === unit);
    if (!me) break;
    const siblings = active.filter((a) => a.parent === me.parent);
    const total = siblings.reduce((sum, s) => sum + Number(s.weight), 0);
    slots = (slots * Number(me.weight)) / total;
    slots = Math.max(slots, Math.min(Number(me.min_slots), Number(limit)));
    if (me.max_slots !== null) slots = Math.min(slots, Number(me.max_slots));
  }
  const runSeconds = row!.run_seconds ?? settings.defaultRunSeconds;
  const backoff = job.nextCheckAt && job.nextCheckAt > now ? (job.nextCheckAt.getTime() - now.getTime()) / 1000 : 0;
  const waitSeconds = Math.max(backoff, Math.ceil((Number(ahead) + 1) / Math.max(slots, 1e-9)) * runSeconds);
  const retryAfterSeconds = Math.max(1, Math.ceil(waitSeconds));
  return { position: Number(ahead) + 1, estimatedStartAt: new Date(now.getTime() + waitSeconds * 1000), retryAfterSeconds };
}

export interface ConcurrencyShareInput {
  orgUnitId: string;
  weight: number;
  minSlots: number;
  maxSlots: number | null;
}

export type ConcurrencyShare = typeof concurrencySharesTable.$inferSelect;

/** Replaces an account's concurrency shares (ADMIN, FINANCE): units not listed get weight 1, no minimum, no maximum. Audited. */
export async function setConcurrencyShares(tx: Db, actor: Actor, accountId: string, shares: readonly ConcurrencyShareInput[]): Promise<ConcurrencyShare[]> {
  const [account] = await tx.select({ id: accountsTable.id, limit: accountsTable.concurrencyLimit }).from(accountsTable).where(eq(accountsTable.id, accountId)).for('no key update');
  if (!account) throw new NotFoundError('Account', accountId);
  const ids = new Set<string>();
  for (const [i, s] of shares.entries()) {
    if (ids.has(s.orgUnitId)) throw new ValidationError(`shares[${i}].orgUnitId`, 'each unit at most once');
    ids.add(s.orgUnitId);
    if (!Number.isInteger(s.weight) || s.weight < 1 || s.weight > 1_000_000) throw new ValidationError(`shares[${i}].weight`, 'weight must be an integer from 1 to 1000000');
    if (!Number.isInteger(s.minSlots) || s.minSlots < 0) throw new ValidationError(`shares[${i}].minSlots`, 'minSlots must be an integer of at least 0');
    if (s.maxSlots !== null && (!Number.isInteger(s.maxSlots) || s.maxSlots < Math.max(1, s.minSlots))) {
      throw new ValidationError(`shares[${i}].maxSlots`, 'maxSlots must be an integer of at least 1 and at least minSlots');
    }
  }
  const units = ids.size > 0 ? await tx.select({ id: orgUnitsTable.id, parentId: orgUnitsTable.parentId }).from(orgUnitsTable).where(inArray(orgUnitsTable.id, [...ids])) : [];
  for (const [i, s] of shares.entries()) {
    const unit = units.find((u) => u.id === s.orgUnitId);
    if (!unit) throw new NotFoundError('OrgUnit', s.orgUnitId);
    // The root holds every slot: a share is a unit's part among its siblings.
    if (unit.parentId === null) throw new ValidationError(`shares[${i}].orgUnitId`, 'the root unit has every slot; shares are set on the units below it');
  }
  // Guaranteed minimums of siblings cannot promise more than the account has.
  const bySibling = new Map<string, number>();
  for (const s of shares) {
    const parent = units.find((u) => u.id === s.orgUnitId)!.parentId!;
    bySibling.set(parent, (bySibling.get(parent) ?? 0) + s.minSlots);
  }
  if ([...bySibling.values()].some((sum) => sum > account.limit)) {
    throw new ValidationError('shares', `the minimums of sibling units add up to more than the account's concurrency limit (${account.limit})`);
  }
  const before = await tx.select().from(concurrencySharesTable).where(eq(concurrencySharesTable.accountId, accountId));
  await tx.delete(concurrencySharesTable).where(eq(concurrencySharesTable.accountId, accountId));
  const rows =
    shares.length > 0
      ? await tx
          .insert(concurrencySharesTable)
          .values(shares.map((s) => ({ accountId, orgUnitId: s.orgUnitId, weight: s.weight, minSlots: s.minSlots, maxSlots: s.maxSlots, updatedBy: actor.subject })))
          .returning()
      : [];
  const view = (r: ConcurrencyShareInput) => ({ orgUnitId: r.orgUnitId, weight: r.weight, minSlots: r.minSlots, maxSlots: r.maxSlots });
  await recordAudit(tx, actor, {
    action: 'account.concurrency_shares.set',
    entityType: 'Account',
    entityId: accountId,
    before: before.length > 0 ? { shares: before.map(view) } : null,
    after: { shares: rows.map(view) },
  });
  return rows;
}

/** An account's concurrency shares, by unit. */
export async function concurrencySharesOf(db: Db, accountId: string): Promise<ConcurrencyShare[]> {
  return db.select().from(concurrencySharesTable).where(eq(concurrencySharesTable.accountId, accountId)).orderBy(asc(concurrencySharesTable.orgUnitId));
}

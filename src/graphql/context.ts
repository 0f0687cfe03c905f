// Per-request context: the verified caller and the request's DataLoaders.
import DataLoader from 'dataloader';
import { and, inArray, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { queryRows, toBigInt } from '../db/client.js';
import {
  accountTermsTable,
  accountsTable,
  committedSharesTable,
  jobItemsTable,
  jobsTable,
} from '../db/schema.js';
import { latestSnapshots, type WalletSnapshotRow } from '../billing/wallet.js';
import { usagesAtRoot, type RootUsageKey } from '../billing/account-period.js';
import type { Actor } from '../auth/actor.js';
import type { AccountRow, AccountTermsRow } from '../accounts/accounts.js';
import { knownUnits, unitsByIds, type OrgUnitRow } from '../org/units.js';
import { budgetsWithUsage, type BudgetRow, type BudgetUsage } from '../budgets/budgets.js';
import { NotFoundError } from '../errors.js';
import { periodOf } from '../primitives/period.js';
import { IN_FLIGHT_STATUSES } from '../jobs/lifecycle.js';
import type { Services } from '../app.js';

export interface GraphQLContext {
  readonly services: Services;
  readonly db: Db;
  readonly actor: Actor | null;
  readonly requestId: string;
  readonly now: Date;
  readonly loaders: Loaders;
}

export interface UsageKey {
  unitId: string;
  accountId: string | null;
  period: string;
}

export interface UsageTotals {
  reservedMicroCs: bigint;
  settledMicroCs: bigint;
}

/** A value now, or once it has been read: resolvers return values they already have without a promise. */
export type MaybePromise<T> = T | Promise<T>;

/** `fn` applied to a value now or once it has come: no promise (and no turn of the event loop) when it is here. */
export function whenReady<T, R>(value: MaybePromise<T>, fn: (value: T) => MaybePromise<R>): MaybePromise<R> {
  return value instanceof Promise ? value.then(fn) : fn(value);
}

/**
 * A DataLoader that also answers synchronously for keys it has already loaded (or was primed with) in this request:
 * a field over a list of 200 units then costs no promise per item once the batch has come. A key that failed is
 * loaded (and fails) as with DataLoader.
 */
export class RequestLoader<K, V, C = K> extends DataLoader<K, V, C> {
  private readonly loaded = new Map<C, V>();
  // What a key is waiting for, once: the 400 budgets of a page ask for the same account before it has come.
  private readonly pending = new Map<C, Promise<V>>();

  constructor(batch: DataLoader.BatchLoadFn<K, V>, private readonly keyOf: (key: K) => C = (key) => key as unknown as C) {
    super(batch, { cacheKeyFn: keyOf });
  }

  /** The value of `key`: at once when this request has it, else through the batch. */
  loadNow(key: K): MaybePromise<V> {
    const id = this.keyOf(key);
    const value = this.loaded.get(id);
    if (value !== undefined || this.loaded.has(id)) return value as V;
    const waiting = this.pending.get(id);
    if (waiting) return waiting;
    // A load whose key was cleared meanwhile leaves the key alone: a newer load (or none) stands for it.
    const current = () => this.pending.get(id) === started;
    const started: Promise<V> = this.load(key).then(
      (value) => {
        if (current()) {
          this.loaded.set(id, value);
          this.pending.delete(id);
        }
        return value;
      },
      (error: unknown) => {
        if (current()) this.pending.delete(id);
        throw error;
      },
    );
    this.pending.set(id, started);
    return started;
  }

  /** What the request has (loaded or primed): at once; anything else through the batch, as DataLoader does. */
  override load(key: K): Promise<V> {
    const id = this.keyOf(key);
    const value = this.loaded.get(id);
    return value !== undefined || this.loaded.has(id) ? Promise.resolve(value as V) : super.load(key);
  }

  /**
   * A value is kept as loaded, and `load` answers it from there: no promise is made per primed key (a page primes
   * its 201 units and 400 budgets' counters, of which the fields read most at once). An error or a promise goes to
   * DataLoader's cache as before.
   */
  override prime(key: K, value: V | PromiseLike<V> | Error): this {
    if (value instanceof Error || value instanceof Promise) return super.prime(key, value);
    const id = this.keyOf(key);
    if (!this.loaded.has(id)) this.loaded.set(id, value as V);
    return this;
  }

  override clear(key: K): this {
    this.loaded.delete(this.keyOf(key));
    this.pending.delete(this.keyOf(key));
    return super.clear(key);
  }

  override clearAll(): this {
    this.loaded.clear();
    this.pending.clear();
    return super.clearAll();
  }
}

function byKey<K, V>(keys: readonly K[], rows: V[], keyOf: (row: V) => K): (V | null)[] {
  const map = new Map(rows.map((r) => [keyOf(r), r]));
  return keys.map((k) => map.get(k) ?? null);
}

function groupBy<K, V>(keys: readonly K[], rows: V[], keyOf: (row: V) => K): V[][] {
  const map = new Map<K, V[]>();
  for (const r of rows) {
    const key = keyOf(r);
    const group = map.get(key);
    if (group) group.push(r);
    else map.set(key, [r]);
  }
  return keys.map((k) => map.get(k) ?? []);
}

export function createLoaders(db: Db, now: Date) {
  // Removes the N+1 of resolving `parent`, `orgUnit`, `project` and node ids one unit at a time; the units the
  // process has read before cost no SQL (knownUnits).
  const { recall, remember } = knownUnits(db);
  const unitById = new RequestLoader<string, OrgUnitRow | null>(async (ids) => {
    const found = await unitsByIds(db, ids);
    return ids.map((id) => found.get(id) ?? null);
  });
  /**
   * A unit a statement of its own has read (a page of units): the one the process knows when it has read it before
   * (the same values), else `map(row)`, known from then on. A page of units already read costs no mapping, and its
   * units are not the request's own copies.
   */
  const knownUnit = <R>(id: string, row: R, map: (row: R) => OrgUnitRow): OrgUnitRow => {
    let unit = recall(id);
    if (!unit) remember((unit = map(row)));
    return unit;
  };
  // Removes the N+1 of `account` on budgets, units and jobs.
  const accountById = new RequestLoader<string, AccountRow | null>(async (ids) =>
    byKey(ids, await db.select().from(accountsTable).where(inArray(accountsTable.id, [...ids])), (r) => r.id),
  );
  // Removes the N+1 of reading each account's terms (all versions; the period picks one).
  const termsByAccount = new DataLoader<string, AccountTermsRow[]>(async (ids) =>
    groupBy(
      ids,
      await db.select().from(accountTermsTable).where(inArray(accountTermsTable.accountId, [...ids])).orderBy(accountTermsTable.effectiveFrom),
      (r) => r.accountId,
    ),
  );
  const termsAt = async (accountId: string, period: string): Promise<AccountTermsRow | null> => {
    const versions = await termsByAccount.load(accountId);
    return versions.filter((t) => t.effectiveFrom <= period).at(-1) ?? null;
  };
  // Removes the N+1 of every budget's reserved/settled counters: one statement for all budgets of a request, with
  // their windows worked out in SQL (no read of accounts, terms or time zones first).
  const budgetUsage = new RequestLoader<BudgetRow, BudgetUsage, string>(
    async (budgets) => {
      const usage = new Map((await budgetsWithUsage(db, { budgetIds: budgets.map((b) => b.id) }, now)).map((r) => [r.budget.id, r.usage]));
      return budgets.map((b) => usage.get(b.id) ?? new NotFoundError('Budget', b.id));
    },
    (b) => b.id,
  );
  // Removes the N+1 of `OrgUnit.budgets` over a list of units; the same statement reads their counters.
  const budgetsByUnit = new RequestLoader<string, BudgetRow[]>(async (ids) => {
    const rows = await budgetsWithUsage(db, { unitIds: ids }, now);
    for (const r of rows) budgetUsage.prime(r.budget, r.usage);
    return groupBy(ids, rows.map((r) => r.budget), (r) => r.orgUnitId);
  });
  // Removes the N+1 of `Job.upstreamIds` over a page of jobs.
  const itemsByJob = new DataLoader<string, (typeof jobItemsTable.$inferSelect)[]>(async (ids) =>
    groupBy(ids, await db.select().from(jobItemsTable).where(inArray(jobItemsTable.jobId, [...ids])).orderBy(jobItemsTable.createdAt), (r) => r.jobId),
  );
  // Removes the N+1 of `Job.request` over a page of jobs, which is listed without its (large) request column.
  const requestByJob = new DataLoader<string, unknown>(async (ids) =>
    byKey(ids, await db.select({ id: jobsTable.id, request: jobsTable.request }).from(jobsTable).where(inArray(jobsTable.id, [...ids])), (r) => r.id).map(
      (r) => r?.request ?? null,
    ),
  );
  // Removes the N+1 of `Account.inFlightJobs` over the account list.
  const inFlightByAccount = new DataLoader<string, number>(async (ids) => {
    const rows = await db
      .select({ accountId: jobsTable.accountId, n: sql<number>`count(*)::int` })
      .from(jobsTable)
      .where(and(inArray(jobsTable.accountId, [...ids]), inArray(jobsTable.status, [...IN_FLIGHT_STATUSES])))
      .groupBy(jobsTable.accountId);
    const map = new Map(rows.map((r) => [r.accountId, Number(r.n)]));
    return ids.map((id) => map.get(id) ?? 0);
  });
  // Removes the N+1 of `OrgUnit.usage` over a list of units: one grouped read of the rollups.
  const unitUsage = new RequestLoader<UsageKey, UsageTotals, string>(
    async (keys) => {
      // The (unit, period) pairs as two array parameters: a page of 200 units is 2 parameters, not 400.
      const rows = await queryRows<{ unit_id: string; account_id: string; period: string; reserved: string; settled: string }>(
        db,
        sql`select org_unit_id as unit_id, account_id, period, reserved_micro_cs::text as reserved, settled_micro_cs::text as settled
            from usage_rollups
           where (org_unit_id, period) in (select * from unnest(${sql.param(keys.map((k) => k.unitId))}::uuid[], ${sql.param(keys.map((k) => k.period))}::text[]))`,
      );
      const byUnit = groupBy(
        keys.map((k) => `${k.unitId}|${k.period}`),
        rows,
        (r) => `${r.unit_id}|${r.period}`,
      );
      return keys.map((k, i) => {
        let reserved = 0n;
        let settled = 0n;
        for (const r of byUnit[i]!) {
          if (k.accountId === null || r.account_id === k.accountId) {
            reserved += toBigInt(r.reserved);
            settled += toBigInt(r.settled);
          }
        }
        return { reservedMicroCs: reserved, settledMicroCs: settled };
      });
    },
    (k) => `${k.unitId}|${k.accountId ?? '*'}|${k.period}`,
  );
  // Removes the N+1 of `Account.wallet` over the account list: the latest snapshot of each, in one statement.
  const walletByAccount = new DataLoader<string, WalletSnapshotRow | null>(async (ids) => {
    const latest = await latestSnapshots(db, ids);
    return ids.map((id) => latest.get(id) ?? null);
  });
  // Removes the N+1 of `Account.committedShares` over the account list (all versions; the period picks one).
  const sharesByAccount = new DataLoader<string, (typeof committedSharesTable.$inferSelect)[]>(async (ids) =>
    groupBy(
      ids,
      await db
        .select()
        .from(committedSharesTable)
        .where(inArray(committedSharesTable.accountId, [...ids]))
        .orderBy(committedSharesTable.effectiveFrom, committedSharesTable.orgUnitId),
      (r) => r.accountId,
    ),
  );
  // Removes the N+1 of `Account.period` over the account list: every account's usage at the root in one statement.
  const rootUsage = new DataLoader<RootUsageKey, { reserved: bigint; settled: bigint }, string>((keys) => usagesAtRoot(db, keys), {
    cacheKeyFn: (k) => `${k.accountId}|${k.from}|${k.to}`,
  });
  // The current period of each time zone, worked out once per request (every unit of a page asks).
  const periods = new Map<string, string>();
  const periodNow = (timeZone: string): string => {
    let period = periods.get(timeZone);
    if (period === undefined) periods.set(timeZone, (period = periodOf(now, timeZone)));
    return period;
  };
  return {
    periodNow,
    rootUsage,
    unitById,
    knownUnit,
    accountById,
    termsByAccount,
    termsAt,
    budgetsByUnit,
    budgetUsage,
    itemsByJob,
    requestByJob,
    inFlightByAccount,
    unitUsage,
    walletByAccount,
    sharesByAccount,
  };
}

export type Loaders = ReturnType<typeof createLoaders>;

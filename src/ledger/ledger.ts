// Every movement of credit-seconds goes through here: one append-only ledger entry and, in the same
// transaction, the rollup counters of every unit on the project's path. Counters are a cache of the ledger.
// The one exception is an admission's HOLD, written by the server-side `gateway_admit` (migrations) with the same
// entry and the same rollup upsert in path order, so that an admission is one round trip.
import { sql, type SQL } from 'drizzle-orm';
import { queryRows, type Db } from '../db/client.js';
import { ledgerEntriesTable, type LedgerEntryType } from '../db/schema.js';

export function uuidArray(ids: readonly string[]): SQL {
  if (ids.length === 0) return sql`'{}'::uuid[]`;
  return sql`ARRAY[${sql.join(ids.map((id) => sql`${id}`), sql`, `)}]::uuid[]`;
}

export interface Movement {
  jobId: string | null;
  accountId: string;
  /** The unit the usage belongs to (the job's project, or an adjustment's unit). */
  orgUnitId: string;
  /** Root … orgUnitId: every unit whose rollup moves. */
  path: readonly string[];
  period: string;
  /**
   * The day (`YYYY-MM-DD`, account's time zone, computed by the caller) it counts on in the daily rollups
   * (usage_daily, moved by a trigger on the entry): for a RELEASE, the day of the hold it releases.
   */
  day: string;
  amountMicroCs: bigint;
  note?: string;
}

const effect: Record<LedgerEntryType, { reserved: 1n | -1n | 0n; settled: 1n | 0n }> = {
  HOLD: { reserved: 1n, settled: 0n },
  RELEASE: { reserved: -1n, settled: 0n },
  DEBIT: { reserved: 0n, settled: 1n },
  ADJUSTMENT: { reserved: 0n, settled: 1n },
};

/**
 * Appends one ledger entry and moves the path's rollups by the same amount. Call inside a transaction.
 * Returns the entry's id.
 */
export async function recordMovement(tx: Db, type: LedgerEntryType, m: Movement): Promise<bigint> {
  if (type !== 'ADJUSTMENT' && m.amountMicroCs < 0n) throw new RangeError(`${type} amount must not be negative`);
  const [entry] = await tx.insert(ledgerEntriesTable).values({
    jobId: m.jobId,
    entryType: type,
    accountId: m.accountId,
    orgUnitId: m.orgUnitId,
    period: m.period,
    day: m.day,
    amountMicroCs: m.amountMicroCs,
    note: m.note ?? null,
  }).returning({ id: ledgerEntriesTable.id });
  const reservedDelta = m.amountMicroCs * effect[type].reserved;
  const settledDelta = m.amountMicroCs * effect[type].settled;
  // Rows are touched in path order (root first) by every writer, so concurrent writers cannot deadlock.
  if (reservedDelta < 0n) {
    // A release shrinks rows its hold created. (An upsert cannot be used: PostgreSQL checks the
    // proposed row's CHECK constraint, reserved >= 0, before it sees the conflict.)
    const updated = await queryRows<{ n: number }>(
      tx,
      sql`with moved as (
            update usage_rollups r set reserved_micro_cs = r.reserved_micro_cs + ${reservedDelta.toString()}::bigint,
              settled_micro_cs = r.settled_micro_cs + ${settledDelta.toString()}::bigint
            from unnest(${uuidArray(m.path)}) with ordinality as u(id, ord)
            where r.org_unit_id = u.id and r.account_id = ${m.accountId}::uuid and r.period = ${m.period}
            returning 1)
          select count(*)::int as n from moved`,
    );
    if (Number(updated[0]?.n ?? 0) !== m.path.length) throw new Error(`${type} for ${m.jobId}: rollup rows missing`);
    return entry!.id;
  }
  await tx.execute(sql`
    insert into usage_rollups (org_unit_id, account_id, period, reserved_micro_cs, settled_micro_cs)
    select u.id, ${m.accountId}::uuid, ${m.period}, ${reservedDelta.toString()}::bigint, ${settledDelta.toString()}::bigint
    from unnest(${uuidArray(m.path)}) with ordinality as u(id, ord)
    order by u.ord
    on conflict (org_unit_id, account_id, period) do update set
      reserved_micro_cs = usage_rollups.reserved_micro_cs + excluded.reserved_micro_cs,
      settled_micro_cs = usage_rollups.settled_micro_cs + excluded.settled_micro_cs`);
  return entry!.id;
}

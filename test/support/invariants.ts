// Invariant checks against the database: the rollup counters are exactly the sum of the ledger.
import { sql } from 'drizzle-orm';
import { expect } from 'vitest';
import type { Db } from '../../src/db/client.js';
import { queryRows } from '../../src/db/client.js';

/** For every (unit, account, period): rollup reserved = Σ HOLD − Σ RELEASE, settled = Σ DEBIT + Σ ADJUSTMENT over the subtree. */
export async function expectCountersEqualLedger(db: Db): Promise<void> {
  const mismatches = await queryRows<Record<string, string>>(
    db,
    sql`with expected as (
          select anc.id as org_unit_id, l.account_id, l.period,
            sum(case l.entry_type when 'HOLD' then l.amount_micro_cs when 'RELEASE' then -l.amount_micro_cs else 0 end) as reserved,
            sum(case when l.entry_type in ('DEBIT', 'ADJUSTMENT') then l.amount_micro_cs else 0 end) as settled
          from ledger_entries l
          join org_units u on u.id = l.org_unit_id
          join org_units anc on anc.id = any(u.path)
          group by anc.id, l.account_id, l.period)
        select coalesce(e.org_unit_id, r.org_unit_id)::text as unit, e.reserved::text as e_res, r.reserved_micro_cs::text as r_res,
               e.settled::text as e_set, r.settled_micro_cs::text as r_set
        from expected e full outer join usage_rollups r
          on r.org_unit_id = e.org_unit_id and r.account_id = e.account_id and r.period = e.period
        where coalesce(e.reserved, 0) <> coalesce(r.reserved_micro_cs, 0) or coalesce(e.settled, 0) <> coalesce(r.settled_micro_cs, 0)`,
  );
  expect(mismatches).toEqual([]);
  // The daily rollups (usage_daily) are the same ledger per (unit on the path, account, product, day).
  const daily = await queryRows<Record<string, string>>(
    db,
    sql`with expected as (
          select anc.id as org_unit_id, l.account_id, coalesce(j.product, 'ADJUSTMENT') as product, l.day,
            sum(case l.entry_type when 'HOLD' then l.amount_micro_cs when 'RELEASE' then -l.amount_micro_cs else 0 end) as reserved,
            sum(case when l.entry_type in ('DEBIT', 'ADJUSTMENT') then l.amount_micro_cs else 0 end) as settled
          from ledger_entries l
          left join jobs j on j.id = l.job_id
          join org_units u on u.id = l.org_unit_id
          join org_units anc on anc.id = any(u.path)
          group by 1, 2, 3, 4)
        select coalesce(e.org_unit_id, d.org_unit_id)::text as unit, coalesce(e.day, d.day)::text as day, e.reserved::text as e_res,
               d.reserved_micro_cs::text as d_res, e.settled::text as e_set, d.settled_micro_cs::text as d_set
        from expected e full outer join usage_daily d
          on d.org_unit_id = e.org_unit_id and d.account_id = e.account_id and d.product = e.product and d.day = e.day
        where coalesce(e.reserved, 0) <> coalesce(d.reserved_micro_cs, 0) or coalesce(e.settled, 0) <> coalesce(d.settled_micro_cs, 0)
           or d.reserved_micro_cs < 0 or e.day is null`,
  );
  expect(daily).toEqual([]);
  // Every job's open hold is its HOLD minus its RELEASE.
  const jobs = await queryRows<Record<string, string>>(
    db,
    sql`select j.id::text, j.reserved_micro_cs::text as job_reserved,
          coalesce(sum(case l.entry_type when 'HOLD' then l.amount_micro_cs when 'RELEASE' then -l.amount_micro_cs else 0 end), 0)::text as ledger_reserved,
          coalesce(j.actual_micro_cs, 0)::text as job_actual,
          coalesce(sum(case l.entry_type when 'DEBIT' then l.amount_micro_cs else 0 end), 0)::text as ledger_debit
        from jobs j left join ledger_entries l on l.job_id = j.id
        group by j.id
        having j.reserved_micro_cs <> coalesce(sum(case l.entry_type when 'HOLD' then l.amount_micro_cs when 'RELEASE' then -l.amount_micro_cs else 0 end), 0)
            or coalesce(j.actual_micro_cs, 0) <> coalesce(sum(case l.entry_type when 'DEBIT' then l.amount_micro_cs else 0 end), 0)`,
  );
  expect(jobs).toEqual([]);
  await expectGroupRollupsEqualLedger(db);
  await expectPoolRollupsEqualLedger(db);
}

/**
 * MARGINAL's pool rollups are the ledger's DEBIT and ADJUSTMENT entries of each (account, period) in settlement order
 * (settled at, to the millisecond, then id): per unit its own settled usage and, unless the period has a negative
 * correction, its in-pool part min(amount, max(0, included − settled before)) with the pool the period was split with;
 * per period the total, the last entry and whether it has a negative correction.
 */
export async function expectPoolRollupsEqualLedger(db: Db): Promise<void> {
  const entries = sql`select l.id, l.account_id, l.period, l.org_unit_id, l.amount_micro_cs as a, date_trunc('milliseconds', l.created_at) as at,
      sum(l.amount_micro_cs) over (partition by l.account_id, l.period order by date_trunc('milliseconds', l.created_at), l.id rows unbounded preceding) as cum
    from ledger_entries l where l.entry_type in ('DEBIT', 'ADJUSTMENT')`;
  const units = await queryRows<Record<string, string>>(
    db,
    sql`with e as (${entries}),
        expected as (
          select e.account_id, e.period, e.org_unit_id, sum(e.a) as settled,
                 sum(least(e.a, greatest(0, p.included_micro_cs - (e.cum - e.a)))) as in_pool, coalesce(bool_or(p.corrected), false) as corrected
            from e left join usage_pool_periods p on p.account_id = e.account_id and p.period = e.period
           group by 1, 2, 3)
        select coalesce(e.org_unit_id, r.org_unit_id)::text as unit, coalesce(e.period, r.period) as period, e.settled::text as e_set,
               r.settled_micro_cs::text as r_set, e.in_pool::text as e_pool, r.in_pool_micro_cs::text as r_pool
          from expected e full outer join usage_pool_rollups r
            on r.account_id = e.account_id and r.period = e.period and r.org_unit_id = e.org_unit_id
         where coalesce(e.settled, 0) <> coalesce(r.settled_micro_cs, 0)
            or (not coalesce(e.corrected, false) and coalesce(e.in_pool, 0) <> coalesce(r.in_pool_micro_cs, 0))`,
  );
  expect(units, 'usage_pool_rollups').toEqual([]);
  const periods = await queryRows<Record<string, string>>(
    db,
    sql`with e as (${entries}),
        expected as (
          select account_id, period, sum(a) as settled, bool_or(a < 0) as corrected,
                 (array_agg(id order by at desc, id desc))[1] as last_id, max(at) as last_at
            from e group by 1, 2)
        select coalesce(e.period, p.period) as period, e.settled::text as e_set, p.settled_micro_cs::text as p_set, e.corrected as e_corr,
               p.corrected as p_corr, e.last_id::text as e_last, p.last_id::text as p_last
          from expected e full outer join usage_pool_periods p on p.account_id = e.account_id and p.period = e.period
         where e.settled is distinct from p.settled_micro_cs or e.corrected is distinct from p.corrected
            or e.last_id is distinct from p.last_id or e.last_at is distinct from p.last_at`,
  );
  expect(periods, 'usage_pool_periods').toEqual([]);
}

/**
 * The tag-set and person rollups are the ledger of the jobs that carry them, per (unit on the path, account, period),
 * and so are their daily rollups per (unit on the path, account, day): the day of each entry (a hold's and its
 * release's the hold's day), never negative reserved.
 */
export async function expectGroupRollupsEqualLedger(db: Db): Promise<void> {
  const tables = [
    ['usage_tag_rollups', 'tags', 'period'],
    ['usage_person_rollups', 'person', 'period'],
    ['usage_tag_daily', 'tags', 'day'],
    ['usage_person_daily', 'person', 'day'],
  ] as const;
  for (const [table, key, bucket] of tables) {
    const group = key === 'tags' ? sql`j.tags` : sql`coalesce('user:' || j.end_user, j.created_by)`;
    const mismatches = await queryRows<Record<string, string>>(
      db,
      sql`with expected as (
            select anc.id as org_unit_id, l.account_id, l.${sql.identifier(bucket)} as bucket, ${group} as g,
              sum(case l.entry_type when 'HOLD' then l.amount_micro_cs when 'RELEASE' then -l.amount_micro_cs else 0 end) as reserved,
              sum(case when l.entry_type in ('DEBIT', 'ADJUSTMENT') then l.amount_micro_cs else 0 end) as settled
            from ledger_entries l
            join jobs j on j.id = l.job_id
            join org_units u on u.id = l.org_unit_id
            join org_units anc on anc.id = any(u.path)
            where ${key === 'tags' ? sql`j.tags <> '{}'::jsonb` : sql`true`}
            group by 1, 2, 3, 4)
          select coalesce(e.org_unit_id, r.org_unit_id)::text as unit, coalesce(e.g, r.${sql.identifier(key)})::text as g,
                 coalesce(e.bucket, r.${sql.identifier(bucket)})::text as bucket,
                 e.reserved::text as e_res, r.reserved_micro_cs::text as r_res, e.settled::text as e_set, r.settled_micro_cs::text as r_set
          from expected e full outer join ${sql.identifier(table)} r
            on r.org_unit_id = e.org_unit_id and r.account_id = e.account_id and r.${sql.identifier(bucket)} = e.bucket and r.${sql.identifier(key)} = e.g
          where coalesce(e.reserved, 0) <> coalesce(r.reserved_micro_cs, 0) or coalesce(e.settled, 0) <> coalesce(r.settled_micro_cs, 0)
             or e.bucket is null or r.reserved_micro_cs < 0`,
    );
    expect(mismatches, table).toEqual([]);
  }
}

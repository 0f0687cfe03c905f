// The budget reads' `LANGUAGE sql` functions (gateway_budget_usage_rows, gateway_budget_bounds_rows, inlined into
// budgetsWithUsage) against the admission's PL/pgSQL ones (gateway_budget_usage, gateway_budget_bounds): the same
// answers for every budget of the database, at each instant given (every account's current period and day then).
import { sql } from 'drizzle-orm';
import { expect } from 'vitest';
import type { Db } from '../../src/db/client.js';
import { queryRows } from '../../src/db/client.js';
import { accountsNow } from '../../src/budgets/budgets.js';

/** Checks every budget at every instant; returns how many budgets of each window were compared. */
export async function expectBudgetFunctionsAgree(db: Db, instants: readonly string[]): Promise<Record<string, number>> {
  const windows: Record<string, number> = {};
  for (const at of instants) {
    const { cur, utc } = accountsNow(new Date(at));
    const shown = sql`coalesce(n.cur -> b.account_id::text, ${utc})`;
    const rows = await queryRows<{ id: string; window: string; plpgsql: string; inlined: string }>(
      db,
      sql`select b.id, b.window::text as window,
                 jsonb_build_object('reserved', u1.reserved, 'settled', u1.settled, 'carried', u1.carried,
                   'from', w1.w_from, 'to', w1.w_to, 'acc', a1)::text as plpgsql,
                 jsonb_build_object('reserved', u2.reserved, 'settled', u2.settled, 'carried', u2.carried,
                   'from', w2.w_from, 'to', w2.w_to, 'acc', a2)::text as inlined
            from (select ${cur} as cur offset 0) n
           cross join budgets b
           cross join lateral gateway_budget_usage(b, n.cur) u1
           cross join lateral gateway_budget_usage_rows(b, n.cur) u2
           cross join lateral gateway_budget_bounds(b, ${shown} ->> 'period', (${shown} ->> 'day')::date) w1
           cross join lateral gateway_budget_bounds_rows(b, ${shown} ->> 'period', (${shown} ->> 'day')::date) w2
           -- each account's own window too (what the usage sums over), for budgets over all accounts
           cross join lateral (select coalesce(jsonb_agg(jsonb_build_array(c.key, w.w_from, w.w_to) order by c.key), '[]') as a1
                                 from jsonb_each(n.cur) c, gateway_budget_bounds(b, c.value ->> 'period', (c.value ->> 'day')::date) w) x1
           cross join lateral (select coalesce(jsonb_agg(jsonb_build_array(c.key, w.w_from, w.w_to) order by c.key), '[]') as a2
                                 from jsonb_each(n.cur) c, gateway_budget_bounds_rows(b, c.value ->> 'period', (c.value ->> 'day')::date) w) x2
           order by b.id`,
    );
    for (const r of rows) {
      expect({ at, budget: r.id, window: r.window, answer: JSON.parse(r.inlined) }).toEqual({ at, budget: r.id, window: r.window, answer: JSON.parse(r.plpgsql) });
      windows[r.window] = (windows[r.window] ?? 0) + 1;
    }
  }
  return windows;
}

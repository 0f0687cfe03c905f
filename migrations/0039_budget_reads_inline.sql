-- Budget reads without a PL/pgSQL call per budget: gateway_budget_bounds and gateway_budget_usage (0021) as
-- `LANGUAGE sql` set-returning functions of one SELECT each, which the planner inlines into the statement that calls
-- them in FROM (a lateral subquery: no function call, no PL/pgSQL interpretation per row). budgetsWithUsage
-- (src/budgets/budgets.ts) reads a page of 200 units' 400 budgets with them; calling the PL/pgSQL functions cost
-- ~70 µs a budget (~28 ms a page), these a few µs. The admission and the threshold triggers keep calling 0021's
-- functions; test/budget-reads-inline.test.ts checks both pairs give the same answers for every window.
-- Inlining needs: LANGUAGE sql, STABLE (not VOLATILE, not STRICT, no SET), RETURNS TABLE (a set), one SELECT, and
-- arguments without sub-selects (the caller passes `cur` as a column of a FROM item, not as a sub-select).

-- gateway_budget_bounds (0021), one row: the window [w_from, w_to] of a budget at `period` / `today`.
CREATE OR REPLACE FUNCTION gateway_budget_bounds_rows(b budgets, period text, today date)
RETURNS TABLE (w_from text, w_to text) LANGUAGE sql STABLE AS $$
  SELECT
    CASE b.window::text
      WHEN 'DAILY' THEN to_char(today, 'YYYY-MM-DD')
      WHEN 'WEEKLY' THEN to_char(today - (extract(isodow FROM today)::int - 1), 'YYYY-MM-DD')
      WHEN 'CUSTOM' THEN to_char(b.window_from, 'YYYY-MM-DD')
      WHEN 'MONTHLY' THEN period
      WHEN 'QUARTERLY' THEN substr(period, 1, 5) || lpad(((substr(period, 6, 2)::int - 1) / 3 * 3 + 1)::text, 2, '0')
      WHEN 'CONTRACT_TERM' THEN coalesce(t.term_from, '0000-01')
      ELSE '0000-01'
    END,
    CASE b.window::text
      WHEN 'DAILY' THEN to_char(today, 'YYYY-MM-DD')
      WHEN 'WEEKLY' THEN to_char(today - (extract(isodow FROM today)::int - 1) + 6, 'YYYY-MM-DD')
      WHEN 'CUSTOM' THEN to_char(b.window_to - 1, 'YYYY-MM-DD')
      WHEN 'MONTHLY' THEN period
      WHEN 'QUARTERLY' THEN substr(period, 1, 5) || lpad(((substr(period, 6, 2)::int - 1) / 3 * 3 + 3)::text, 2, '0')
      WHEN 'CONTRACT_TERM' THEN coalesce(t.term_to, '9999-12')
      ELSE '9999-12'
    END
  FROM (SELECT 1) one
  -- The terms in force at `period`, when they have both dates (otherwise: lifetime, as in 0021).
  LEFT JOIN LATERAL (
    SELECT substr(x.term_start, 1, 7) AS term_from, substr(x.term_end, 1, 7) AS term_to
      FROM (SELECT a.term_start, a.term_end FROM account_terms a
             WHERE b.window::text = 'CONTRACT_TERM' AND b.account_id IS NOT NULL
               AND a.account_id = b.account_id AND a.effective_from <= period
             ORDER BY a.effective_from DESC LIMIT 1) x
     WHERE x.term_start IS NOT NULL AND x.term_end IS NOT NULL
  ) t ON true
$$;
--> statement-breakpoint
-- gateway_budget_usage (0021), one row: reserved (every open hold of the unit, on the budget's account or all),
-- settled in each account's own window, and what a MONTHLY budget's rollover carries into this month.
CREATE OR REPLACE FUNCTION gateway_budget_usage_rows(b budgets, cur jsonb)
RETURNS TABLE (reserved bigint, settled bigint, carried bigint) LANGUAGE sql STABLE AS $$
  SELECT
    (SELECT coalesce(sum(r.reserved_micro_cs), 0) FROM usage_rollups r
      WHERE r.org_unit_id = b.org_unit_id AND (b.account_id IS NULL OR r.account_id = b.account_id))::bigint,
    CASE WHEN gateway_budget_by_day(b) THEN
      (SELECT coalesce(sum(d.settled_micro_cs), 0)
         FROM jsonb_each(cur) c
        CROSS JOIN LATERAL gateway_budget_bounds_rows(b, c.value->>'period', (c.value->>'day')::date) w
         JOIN usage_daily d ON d.org_unit_id = b.org_unit_id AND d.account_id = c.key::uuid
          AND d.day BETWEEN w.w_from::date AND w.w_to::date
        WHERE b.account_id IS NULL OR c.key::uuid = b.account_id)
    ELSE
      (SELECT coalesce(sum(r.settled_micro_cs), 0)
         FROM jsonb_each(cur) c
        CROSS JOIN LATERAL gateway_budget_bounds_rows(b, c.value->>'period', NULL) w
         JOIN usage_rollups r ON r.org_unit_id = b.org_unit_id AND r.account_id = c.key::uuid
          AND r.period BETWEEN w.w_from AND w.w_to
        WHERE b.account_id IS NULL OR c.key::uuid = b.account_id)
    END::bigint,
    CASE WHEN b.window::text = 'MONTHLY' AND b.rollover_cap_micro_cs IS NOT NULL THEN
      (SELECT CASE WHEN bool_or(gateway_prev_period(c.value->>'period') >= b.rollover_from)
                   THEN least(b.rollover_cap_micro_cs, greatest(b.limit_micro_cs - coalesce(sum(r.settled_micro_cs), 0), 0))
                   ELSE 0 END
         FROM jsonb_each(cur) c
         LEFT JOIN usage_rollups r ON r.org_unit_id = b.org_unit_id AND r.account_id = c.key::uuid
          AND r.period = gateway_prev_period(c.value->>'period') AND r.period >= b.rollover_from
        WHERE b.account_id IS NULL OR c.key::uuid = b.account_id)
    ELSE 0 END::bigint
$$;

-- Budget reads planned once per session (src/budgets/budgets.ts, budgetsWithUsage: a unit's balance, a page of
-- units' budgets, a budget by id).
--
-- The statement was a prepared statement of the gateway's, and PostgreSQL chose its plan per execution: five custom
-- plans, then the generic plan only when it looked no dearer than their average. For a few units (the balance an app
-- polls: one unit, two budgets) the custom plan always looked cheaper, because the planner saw how short the id array
-- was, so the statement was planned at every execution, and planning its inlined window and usage functions cost
-- ~1.5 ms against ~0.2 ms of execution (counted on pg_prepared_statements: 0 generic plans after 15 executions on one
-- connection; a generic plan answered in 0.36 ms against 1.9 ms). A page of 200 units already got the generic plan.
--
-- The read is now this function, whose two statements (by unit, by budget id) are planned once per session with a
-- generic plan, as the job path's functions are (migration generic_plans). The budget comes back as the table's row
-- type, so a column added to budgets needs no change here; the gateway names the columns it reads.
-- gateway_budget_read is what each budget's row adds (its counters, its window, its grants), inlined into both;
-- gateway_now_in is an instant's {period, day} in a time zone, the one definition of "now" for the budget windows
-- read (the gateway's tag budget reads use it too); inlined where it is called.
CREATE FUNCTION gateway_now_in(now_at timestamptz, tz text) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('period', to_char(now_at AT TIME ZONE tz, 'YYYY-MM'), 'day', to_char(now_at AT TIME ZONE tz, 'YYYY-MM-DD'))
$$;
--> statement-breakpoint
CREATE FUNCTION gateway_budget_read(b budgets, cur jsonb, now_at timestamptz)
RETURNS TABLE (reserved bigint, settled bigint, carried bigint, window_from text, window_to text, granted bigint)
LANGUAGE sql STABLE AS $$
  SELECT u.reserved, u.settled, u.carried, w.w_from, w.w_to,
         (SELECT coalesce(sum(g.amount_micro_cs), 0) FROM budget_grants g WHERE g.budget_id = b.id AND g.until > now_at)::bigint
    -- The window shown: the budget's account's, UTC's for a budget over all accounts.
    FROM (SELECT coalesce(cur -> b.account_id::text, gateway_now_in(now_at, 'UTC')) AS shown) s
   CROSS JOIN LATERAL gateway_budget_usage_rows(b, cur) u
   CROSS JOIN LATERAL gateway_budget_bounds_rows(b, s.shown ->> 'period', (s.shown ->> 'day')::date) w
$$;
--> statement-breakpoint
-- Every account's {period, day} (the admission's `p.accounts`) is computed once per call (`offset 0`: not pulled up
-- into every place that reads it), in the statement itself: a function of its own (it reads accounts) would not be
-- inlined, and would be planned again at every read. The parameters are named apart from every column (the default
-- conflict rule refuses an ambiguous name). Two statements, alike but for their key, rather than one with an OR over
-- `by_unit`: each gets a generic plan on its own index (budgets by unit, by id), where one plan for both would read both.
CREATE FUNCTION gateway_budgets_with_usage(now_at timestamptz, ids uuid[], by_unit boolean)
RETURNS TABLE (budget budgets, reserved bigint, settled bigint, carried bigint, window_from text, window_to text, granted bigint)
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_generic_plan AS $$
BEGIN
  IF by_unit THEN
    RETURN QUERY
      SELECT b, r.reserved, r.settled, r.carried, r.window_from, r.window_to, r.granted
        FROM (SELECT (SELECT coalesce(jsonb_object_agg(a.id, gateway_now_in(now_at, a.timezone)), '{}'::jsonb) FROM accounts a) AS cur OFFSET 0) n
       CROSS JOIN budgets b
       CROSS JOIN LATERAL gateway_budget_read(b, n.cur, now_at) r
       WHERE b.org_unit_id = ANY(ids);
  ELSE
    RETURN QUERY
      SELECT b, r.reserved, r.settled, r.carried, r.window_from, r.window_to, r.granted
        FROM (SELECT (SELECT coalesce(jsonb_object_agg(a.id, gateway_now_in(now_at, a.timezone)), '{}'::jsonb) FROM accounts a) AS cur OFFSET 0) n
       CROSS JOIN budgets b
       CROSS JOIN LATERAL gateway_budget_read(b, n.cur, now_at) r
       WHERE b.id = ANY(ids);
  END IF;
END $$;

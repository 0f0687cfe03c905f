-- Custom migration [pgcpu]. LANGUAGE sql functions that PostgreSQL cannot inline are parsed, analysed and planned again
-- by every query execution that calls them (the plan lives in the call's expression state, rebuilt per execution and
-- per transaction), where a PL/pgSQL body keeps its plans for the session. On the job path this was 16 % of a
-- backend's CPU (perf, test/perf/job-functions-replay.sql: fmgr_sql 15.7 % inclusive → 0; the parser and the planner
-- 13 % → 1.5 %): chiefly gateway_budget_by_day, called per budget row by the money-event triggers' WHEN look-ups
-- (gateway_budgets_to_judge: 33 → 12.6 µs a call, 16 calls a job) and by the rollup triggers, and not inlined because
-- its enum-to-text cast (enum_out) is STABLE inside a function declared IMMUTABLE. Results are unchanged:
-- - gateway_budget_by_day is declared STABLE, what its body is, so it is inlined wherever it is called (comparing the
--   enum with its labels instead would resolve them when the body is parsed, which fails in the transaction that
--   migrates a new database: the labels are added by migration 0020 in the same transaction);
-- - gateway_budget_now, gateway_budget_granted and gateway_pool_included (an aggregate or a subquery: never inlinable)
--   are the same queries in PL/pgSQL bodies.

-- Body from migration 0021.
-- [pgcpu] STABLE, was IMMUTABLE: its enum-to-text cast (enum_out) is STABLE, and PostgreSQL does not inline a function
-- declared IMMUTABLE whose body is not (nothing depends on it being IMMUTABLE: no index, constraint or generated column).
CREATE OR REPLACE FUNCTION gateway_budget_by_day(b budgets) RETURNS boolean LANGUAGE sql STABLE AS $$ -- [pgcpu]
  SELECT b.window::text IN ('DAILY', 'WEEKLY', 'CUSTOM')
$$;
--> statement-breakpoint
-- Body from migration 0021.
CREATE OR REPLACE FUNCTION gateway_budget_now(b budgets, period text, today date) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$ -- [pgcpu] was LANGUAGE sql
BEGIN -- [pgcpu]
  RETURN (SELECT coalesce(jsonb_object_agg(a.id, jsonb_build_object('period', period, 'day', to_char(today, 'YYYY-MM-DD'))), '{}'::jsonb) -- [pgcpu] RETURN (...)
  FROM accounts a WHERE b.account_id IS NULL OR a.id = b.account_id); -- [pgcpu] RETURN (...)
END $$; -- [pgcpu]
--> statement-breakpoint
-- Body from migration 0023.
CREATE OR REPLACE FUNCTION gateway_budget_granted(p_budget uuid, p_at timestamptz) RETURNS bigint LANGUAGE plpgsql STABLE AS $$ -- [pgcpu] was LANGUAGE sql
BEGIN -- [pgcpu]
  RETURN (SELECT coalesce(sum(g.amount_micro_cs), 0)::bigint FROM budget_grants g WHERE g.budget_id = p_budget AND g.until > p_at); -- [pgcpu] RETURN (...)
END $$; -- [pgcpu]
--> statement-breakpoint
-- Body from migration 0032.
CREATE OR REPLACE FUNCTION gateway_pool_included(p_account uuid, p_period text) RETURNS bigint LANGUAGE plpgsql STABLE AS $$ -- [pgcpu] was LANGUAGE sql
BEGIN -- [pgcpu]
  RETURN coalesce((SELECT t.included_micro_cs FROM account_terms t -- [pgcpu] RETURN
                    WHERE t.account_id = p_account AND t.effective_from <= p_period
                    ORDER BY t.effective_from DESC LIMIT 1), 0);
END $$; -- [pgcpu]
--> statement-breakpoint
-- [pgcpu] Two row triggers on the job path whose functions return at once in most of their calls get that test as
-- their WHEN clause, which PostgreSQL evaluates without calling PL/pgSQL (functions unchanged, so is what they do):
-- ledger_entries_day (migration 0015) does nothing to an entry that has its day (the settlement's RELEASE and DEBIT:
-- 2 of a job's 3 entries); jobs_queue_slot_freed (migration 0028) nothing unless the job leaves the running states
-- (forwarding's RESERVED → SUBMITTED, a poll's → PROCESSING).
DROP TRIGGER ledger_entries_day ON ledger_entries;
--> statement-breakpoint
CREATE TRIGGER ledger_entries_day BEFORE INSERT ON ledger_entries
  FOR EACH ROW WHEN (NEW.day IS NULL) EXECUTE FUNCTION gateway_ledger_day(); -- [pgcpu] WHEN
--> statement-breakpoint
DROP TRIGGER jobs_queue_slot_freed ON jobs;
--> statement-breakpoint
CREATE TRIGGER jobs_queue_slot_freed AFTER UPDATE OF status ON jobs
  FOR EACH ROW WHEN (OLD.status::text IN ('RESERVED', 'SUBMIT_UNKNOWN', 'SUBMITTED', 'PROCESSING') -- [pgcpu] WHEN: the function's own first test
    AND NEW.status::text NOT IN ('RESERVED', 'SUBMIT_UNKNOWN', 'SUBMITTED', 'PROCESSING'))
  EXECUTE FUNCTION gateway_queue_slot_freed();

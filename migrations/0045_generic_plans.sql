-- [genericplans] The job path's functions and every trigger function run their statements with generic plans.
--
-- PL/pgSQL keeps each statement's plan for the session, but a statement with parameters (the function's variables)
-- is planned afresh while PostgreSQL's plan cache prefers custom plans: five custom plans first, then at every
-- execution whenever the generic plan looks dearer than their average. Counted by log_planner_stats on one session
-- replaying jobs (test/settle-followed.test.ts), the plannings of each job's three calls were 289, 123, 76, 60, 60
-- and 59 for a new connection's first six jobs, then 4 or 5 for every job (the three calls themselves, and with budgets
-- on the path the admission's look-up and lock of its HARD budgets by id = ANY(...), planned again each time); with the setting,
-- the first job's plannings (each statement once, generic) and then 3. The job path's three calls replayed on fresh
-- sessions of 300 jobs each (test/perf/job-functions-replay.sql without its VACUUM, both modes alternated ABBA three
-- times, load average 6 from other work), on-CPU per call: admission 1.46 -> 1.27 ms, forwarding's bookkeeping
-- 0.26 -> 0.21 ms, settlement 0.72 -> 0.72 ms (means of six runs each). On a database grown to 364,000 jobs and
-- 1.09 million ledger entries of the account, no call was slower with generic plans.
--
-- Every statement of these functions is an OLTP look-up or write by key, whose generic plan is the custom one without
-- the re-planning: their partial-index predicates are spelled as literals (migration 0036), not parameters. The setting
-- is the function's own (SET clause): statements run under it, triggers and functions they call included, and the
-- session's setting is restored when the function returns, so the gateway's reports keep custom plans. A function
-- redefined by CREATE OR REPLACE loses the clause unless it is given again: test/settle-followed.test.ts checks it.
ALTER FUNCTION gateway_admit(jsonb) SET plan_cache_mode = force_generic_plan;
--> statement-breakpoint
ALTER FUNCTION gateway_admit_batch(jsonb) SET plan_cache_mode = force_generic_plan;
--> statement-breakpoint
ALTER FUNCTION gateway_noted_admission(jsonb, jsonb) SET plan_cache_mode = force_generic_plan;
--> statement-breakpoint
ALTER FUNCTION gateway_noted_admissions(jsonb, jsonb) SET plan_cache_mode = force_generic_plan;
--> statement-breakpoint
ALTER FUNCTION gateway_mark_submitted(jsonb) SET plan_cache_mode = force_generic_plan;
--> statement-breakpoint
ALTER FUNCTION gateway_settle_followed(jsonb) SET plan_cache_mode = force_generic_plan;
--> statement-breakpoint
ALTER FUNCTION gateway_dispatch(jsonb) SET plan_cache_mode = force_generic_plan;
--> statement-breakpoint
ALTER FUNCTION gateway_money_event(text, text, uuid, jsonb) SET plan_cache_mode = force_generic_plan;
--> statement-breakpoint
-- The trigger functions, for the writes the gateway makes by plain statements (a settlement by settleJob, a queued
-- job's cancel or expiry, an adjustment): inside the functions above they run under the setting anyway.
ALTER FUNCTION gateway_notify_token_revoked() SET plan_cache_mode = force_generic_plan;
--> statement-breakpoint
ALTER FUNCTION gateway_live_job() SET plan_cache_mode = force_generic_plan;
--> statement-breakpoint
ALTER FUNCTION gateway_live_budget() SET plan_cache_mode = force_generic_plan;
--> statement-breakpoint
ALTER FUNCTION gateway_ledger_day() SET plan_cache_mode = force_generic_plan;
--> statement-breakpoint
ALTER FUNCTION gateway_ledger_rollups() SET plan_cache_mode = force_generic_plan;
--> statement-breakpoint
ALTER FUNCTION gateway_rollup_money_events() SET plan_cache_mode = force_generic_plan;
--> statement-breakpoint
ALTER FUNCTION gateway_daily_money_events() SET plan_cache_mode = force_generic_plan;
--> statement-breakpoint
ALTER FUNCTION gateway_budget_money_events() SET plan_cache_mode = force_generic_plan;
--> statement-breakpoint
ALTER FUNCTION gateway_queue_slot_freed() SET plan_cache_mode = force_generic_plan;
--> statement-breakpoint
ALTER FUNCTION gateway_group_money_events() SET plan_cache_mode = force_generic_plan;
--> statement-breakpoint
ALTER FUNCTION gateway_group_budget_money_events() SET plan_cache_mode = force_generic_plan;

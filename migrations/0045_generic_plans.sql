-- [genericplans] The job path's functions (not the queue's dispatch) and the gateway's trigger functions plan their
-- statements once per connection.
--
-- PL/pgSQL keeps each statement's plan for the session, but a statement with parameters (the function's variables) is
-- planned afresh while PostgreSQL's plan cache prefers custom plans: five custom plans first, then at every execution
-- whenever the generic plan looks dearer than their average. Counted by log_planner_stats on one session replaying jobs
-- (test/settle-followed.test.ts), the plannings of each job's three calls were 277-303, 113-123, 68-77, 58-67, 58-67
-- and 56-64 for a new connection's first six jobs, then 3 or 4 a job (in other runs 4 or 5: with budgets on the path,
-- the admission's look-up and lock of its HARD budgets by id = ANY(...) planned again each time); with the setting,
-- 219-221 for the first job (each statement once, generic), then 3. The pool closes a connection idle for 10 s, so a
-- gateway with bursty traffic opens new connections, and pays that warm-up, again and again. The job path's three calls
-- replayed on fresh sessions of 300 jobs each (test/perf/job-functions-replay.sql without its VACUUM, both modes
-- alternated ABBA three times, load average 6 from other work), on-CPU per call: admission 1.46 -> 1.27 ms,
-- forwarding's bookkeeping 0.26 -> 0.21 ms, settlement 0.72 -> 0.72 ms (means of six runs each). On a database grown to
-- 364,000 jobs and 1.09 million ledger entries of the account, no call was slower with generic plans.
--
-- The statements of these functions are look-ups and writes by key (their partial-index predicates are literals,
-- migration 0036), or small reads keyed by unit and period, for which the generic plan is the custom one without the
-- re-planning. The queue's dispatch (gateway_dispatch, gateway_queue_pick: CTEs, window functions, ranges over settled
-- jobs) is left to PostgreSQL's choice, where a skewed multi-account database could make a custom plan worth its
-- planning. The gain is small (within this machine's run-to-run noise); what it removes for sure is the re-planning
-- counted above. The setting is the function's own (SET clause): statements run under it, triggers and functions they
-- call included, and the session's setting is restored when the function returns, so the gateway's reports keep custom
-- plans. A function redefined by CREATE OR REPLACE loses the clause unless it is given again:
-- test/settle-followed.test.ts checks it.
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
ALTER FUNCTION gateway_money_event(text, text, uuid, jsonb) SET plan_cache_mode = force_generic_plan;
--> statement-breakpoint
-- The trigger functions of the job path's tables, for the writes the gateway makes by plain statements (a settlement by
-- settleJob, a queued job's cancel or expiry, an adjustment): inside the functions above they run under the setting
-- anyway. (The append-only guards of the ledger and the statements only raise, and plan nothing.)
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

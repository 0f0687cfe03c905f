-- Replays one job's three calls (gateway_admit, gateway_mark_submitted, gateway_settle_followed) N times in one
-- session, each call in its own transaction as the gateway makes them, from parameters captured by job-functions-profile.ts (CAPTURE=<file>, KEEP=1)
-- on the kept database: no other session, hence no lock waits; the figures are the functions' own work (their
-- triggers included). Besides the wall-clock figures (inflated by whatever else runs on the machine), the on-CPU time
-- of each call (the backend's /proc/self/schedstat, nanoseconds), which other work on the machine inflates much less.
-- The kernel updates that counter for a running task only at a scheduler tick or when the task leaves the CPU: each
-- reading is made right after a 1 ms sleep (pg_temp.replay_cpu_ns), or a call shorter than a tick reads as a fraction
-- of its CPU (without it, admissions of 1.4 ms read 0.25 ms). test/perf/job-calls-cpu.ts reads it from outside.
-- The database keeps the jobs (each run adds N settled jobs to the account). Usage:
--   PGOPTIONS="-c replay.n=300" psql -d <kept database> -v cap="$(cat <file>)" -f test/perf/job-functions-replay.sql
\set ON_ERROR_STOP on
VACUUM ANALYZE;
SELECT pg_stat_reset();
SET track_functions = 'pl';
CREATE TEMP TABLE replay_cap AS SELECT (:'cap')::jsonb AS c;
-- New ids as the gateway makes them (src/primitives/ids.ts): version 7, its first 48 bits the time in milliseconds.
CREATE FUNCTION pg_temp.replay_row_id() RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$;
-- The backend's CPU time so far, counted up to now: the sleep takes it off the CPU, which brings the counter up to date.
CREATE FUNCTION pg_temp.replay_cpu_ns() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM pg_sleep(0.001);
  RETURN split_part(pg_read_file('/proc/self/schedstat'), ' ', 1)::bigint;
END $$;
DO $$
DECLARE
  cap jsonb := (SELECT c FROM replay_cap);
  pa jsonb := (cap->>'gateway_admit')::jsonb;
  pm jsonb := (cap->>'gateway_mark_submitted')::jsonb;
  ps jsonb := (cap->>'gateway_settle_followed')::jsonb;
  n int := current_setting('replay.n')::int;
  jid uuid;
  item uuid;
  t0 timestamptz;
  t_admit interval := '0';
  t_mark interval := '0';
  t_settle interval := '0';
  r jsonb;
  c0 bigint;
  c_admit bigint := 0;
  c_mark bigint := 0;
  c_settle bigint := 0;
  c_empty bigint := 0;  -- what a reading itself costs (its sleep's way off the CPU): subtracted from each call's
BEGIN
  FOR i IN 1..50 LOOP
    c0 := pg_temp.replay_cpu_ns();
    c_empty := c_empty + pg_temp.replay_cpu_ns() - c0;
  END LOOP;
  c_empty := c_empty / 50;
  FOR i IN 1..n LOOP
    jid := pg_temp.replay_row_id();
    pa := jsonb_set(jsonb_set(pa, '{job,id}', to_jsonb(jid)), '{audit,entity_id}', to_jsonb(jid));
    c0 := pg_temp.replay_cpu_ns();
    t0 := clock_timestamp();
    r := gateway_admit(pa);
    t_admit := t_admit + (clock_timestamp() - t0);
    c_admit := c_admit + pg_temp.replay_cpu_ns() - c0;
    IF r->>'outcome' <> 'admitted' THEN RAISE EXCEPTION 'admit: %', r; END IF;
    COMMIT;
    pm := jsonb_set(jsonb_set(jsonb_set(jsonb_set(pm, '{job_id}', to_jsonb(jid)), '{items,0,job_id}', to_jsonb(jid)), '{items,0,upstream_id}', to_jsonb(md5(jid::text))), '{items,0,id}', to_jsonb(pg_temp.replay_row_id()));
    c0 := pg_temp.replay_cpu_ns();
    t0 := clock_timestamp();
    r := gateway_mark_submitted(pm);
    t_mark := t_mark + (clock_timestamp() - t0);
    c_mark := c_mark + pg_temp.replay_cpu_ns() - c0;
    IF r->>'outcome' <> 'submitted' THEN RAISE EXCEPTION 'mark: %', r; END IF;
    COMMIT;
    item := (r->'items'->0->>'id')::uuid;
    ps := jsonb_set(jsonb_set(ps, '{job_id}', to_jsonb(jid)), '{updates,0,id}', to_jsonb(item));
    c0 := pg_temp.replay_cpu_ns();
    t0 := clock_timestamp();
    r := gateway_settle_followed(ps);
    t_settle := t_settle + (clock_timestamp() - t0);
    c_settle := c_settle + pg_temp.replay_cpu_ns() - c0;
    IF r->>'outcome' <> 'settled' THEN RAISE EXCEPTION 'settle: %', r; END IF;
    COMMIT;
  END LOOP;
  RAISE NOTICE 'per call (ms): admit %  mark_submitted %  settle_followed %',
    round((extract(epoch FROM t_admit) * 1000 / n)::numeric, 3), round((extract(epoch FROM t_mark) * 1000 / n)::numeric, 3),
    round((extract(epoch FROM t_settle) * 1000 / n)::numeric, 3);
  RAISE NOTICE 'on-CPU per call (ms): admit %  mark_submitted %  settle_followed %',
    round((c_admit / n - c_empty) / 1e6, 3), round((c_mark / n - c_empty) / 1e6, 3), round((c_settle / n - c_empty) / 1e6, 3);
  RAISE NOTICE 'a reading''s own CPU, subtracted above (ms): %', round(c_empty / 1e6, 3);
END $$;
-- This session's function statistics, flushed when it ends, read from a new one.
\connect
SELECT pg_sleep(1.5);
SELECT funcname, calls, round(total_time::numeric, 1) AS total_ms, round(self_time::numeric, 1) AS self_ms,
       round((total_time / nullif(calls, 0))::numeric, 3) AS total_per_call, round((self_time / nullif(calls, 0))::numeric, 3) AS self_per_call
  FROM pg_stat_user_functions ORDER BY self_time DESC LIMIT 25;

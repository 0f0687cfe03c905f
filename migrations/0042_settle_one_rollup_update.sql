-- [settle1] Settlement updates each of the hold's usage_rollups rows once. gateway_settle_followed (latest body:
-- migration 0037) took the hold back from the path's rows (reserved) and then added the settled usage to them
-- (settled) in two statements: two row versions per unit, and between them the total dropped and rose again, so
-- those rows' money-event trigger (its WHEN: the total grew) judged every budget with thresholds on the path again
-- at every settlement. When the usage settles in the hold's own period (the usual case) or nothing is settled, one
-- UPDATE now does both: the total moves by actual − hold, so those budgets are judged only when the job cost more
-- than its hold, and the pool's trigger still sees the settled usage grow. Otherwise (the hold's period closed
-- meanwhile) the two statements stay as they were. (The ledger's own rollups, daily and per person or tag, still
-- move once for the RELEASE and once for the DEBIT.) Both ledger entries are now written before the usage_rollups
-- update, so the DEBIT's trigger locks the pool's row before those rows are locked, where settleJob locks them in the
-- other order; no deadlock follows, since every writer of ledger entries and rollups holds the account row's lock
-- (taken first, FOR NO KEY UPDATE) for its whole transaction. Lines changed from migration 0037 are marked [settle1].
CREATE OR REPLACE FUNCTION gateway_settle_followed(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  at timestamptz := (p->>'now')::timestamptz;
  j jobs;
  v_timezone text; -- [admitfn] all that is read of the account row (its lock is the point)
  n_items int;
  n_running int;
  n_processing int;
  n_completed int;
  actual bigint;
  secs numeric;
  new_status job_status;
  v_path uuid[];
  settled text;
  v_day date;
  moved int;
BEGIN
  SELECT * INTO j FROM jobs WHERE id = (p->>'job_id')::uuid FOR UPDATE;
  IF NOT FOUND OR j.status IN ('SUCCEEDED', 'FAILED', 'CANCELLED', 'REJECTED', 'EXPIRED') THEN
    RETURN jsonb_build_object('outcome', 'unchanged');
  END IF;

  -- Only items of this job still running move (a terminal item never changes again).
  UPDATE job_items i SET
      status = u->>'status',
      video_id = CASE WHEN u ? 'video_id' THEN u->>'video_id' ELSE i.video_id END,
      duration_seconds = CASE WHEN u ? 'duration_seconds' THEN (u->>'duration_seconds')::numeric ELSE i.duration_seconds END,
      cost_micro_cs = CASE WHEN u ? 'cost_micro_cs' THEN (u->>'cost_micro_cs')::bigint ELSE i.cost_micro_cs END,
      failure_message = CASE WHEN u ? 'failure_message' THEN u->>'failure_message' ELSE i.failure_message END
    FROM jsonb_array_elements(coalesce(p->'updates', '[]'::jsonb)) u
   WHERE i.id = (u->>'id')::uuid AND i.job_id = j.id AND i.status NOT IN ('completed', 'failed', 'not_found');

  SELECT count(*)::int,
         (count(*) FILTER (WHERE status NOT IN ('completed', 'failed', 'not_found')))::int,
         (count(*) FILTER (WHERE status = 'processing'))::int,
         (count(*) FILTER (WHERE status = 'completed'))::int,
         coalesce(sum(cost_micro_cs) FILTER (WHERE status = 'completed'), 0)::bigint,
         coalesce(sum(duration_seconds) FILTER (WHERE status = 'completed'), 0)
    INTO n_items, n_running, n_processing, n_completed, actual, secs
    FROM job_items WHERE job_id = j.id;

  IF n_items = 0 OR n_running > 0 THEN
    -- Still running upstream: PROCESSING once an item is, and the next read after the backoff of its attempts.
    UPDATE jobs SET
        status = CASE WHEN n_processing > 0 THEN coalesce((p->'processing'->>j.status::text)::job_status, j.status) ELSE j.status END,
        next_check_at = at + least((p->>'poll_max_ms')::double precision,
          (p->>'poll_min_ms')::double precision * 2 ^ least(greatest(j.check_attempts - 1, 0), 20)) * interval '1 millisecond',
        updated_at = at
      WHERE id = j.id;
    RETURN jsonb_build_object('outcome', 'following');
  END IF;

  new_status := (p->'completed'->>j.status::text)::job_status;
  IF n_completed < n_items OR j.callback IS NOT NULL OR actual > j.estimated_micro_cs OR new_status IS NULL THEN
    RETURN jsonb_build_object('outcome', 'terminal');
  END IF;
  SELECT x.timezone INTO v_timezone FROM accounts x WHERE x.id = j.account_id FOR NO KEY UPDATE;  -- [admitfn]
  IF v_timezone <> p->>'timezone' THEN RETURN jsonb_build_object('outcome', 'terminal'); END IF;  -- [admitfn]

  -- Usage belongs to the period of its settlement; should that period be closed, to the next open one.
  settled := p->>'period';
  IF actual > 0 THEN
    WHILE EXISTS (SELECT 1 FROM billing_statements WHERE account_id = j.account_id AND period = settled) LOOP  -- [admitfn] j.account_id
      settled := to_char(to_date(settled || '-01', 'YYYY-MM-DD') + interval '1 month', 'YYYY-MM');
    END LOOP;
  END IF;
  v_day := CASE WHEN settled = p->>'period' THEN (p->>'day')::date ELSE to_date(settled || '-01', 'YYYY-MM-DD') END;
  SELECT path INTO v_path FROM org_units WHERE id = j.project_id;

  IF j.reserved_micro_cs > 0 THEN
    -- Taken back from the day the hold sits on (jobs older than daily rollups: the first day of its period).
    INSERT INTO ledger_entries (job_id, entry_type, account_id, org_unit_id, period, day, amount_micro_cs)
      VALUES (j.id, 'RELEASE', j.account_id, j.project_id, j.hold_period,
              coalesce(j.hold_day, to_date(j.hold_period || '-01', 'YYYY-MM-DD')), j.reserved_micro_cs);
  END IF; -- [settle1]
  IF actual > 0 THEN -- [settle1]
    INSERT INTO ledger_entries (job_id, entry_type, account_id, org_unit_id, period, day, amount_micro_cs) -- [settle1]
      VALUES (j.id, 'DEBIT', j.account_id, j.project_id, settled, v_day, actual); -- [settle1]
  END IF; -- [settle1]
  IF j.reserved_micro_cs > 0 AND (actual = 0 OR j.hold_period = settled) THEN -- [settle1]
    -- The hold's rows, each updated once: its reservation taken back and the usage settled in the same period. -- [settle1]
    WITH m AS (
      UPDATE usage_rollups r SET reserved_micro_cs = r.reserved_micro_cs - j.reserved_micro_cs, -- [settle1]
             settled_micro_cs = r.settled_micro_cs + actual -- [settle1]
        FROM unnest(v_path) WITH ORDINALITY AS u(id, ord)
       WHERE r.org_unit_id = u.id AND r.account_id = j.account_id AND r.period = j.hold_period
      RETURNING 1)
    SELECT count(*)::int INTO moved FROM m;
    IF moved <> cardinality(v_path) THEN RAISE EXCEPTION 'RELEASE for %: rollup rows missing', j.id; END IF;
  ELSE -- [settle1]
    IF j.reserved_micro_cs > 0 THEN -- [settle1]
      WITH m AS ( -- [settle1]
        UPDATE usage_rollups r SET reserved_micro_cs = r.reserved_micro_cs - j.reserved_micro_cs -- [settle1]
          FROM unnest(v_path) WITH ORDINALITY AS u(id, ord) -- [settle1]
         WHERE r.org_unit_id = u.id AND r.account_id = j.account_id AND r.period = j.hold_period -- [settle1]
        RETURNING 1) -- [settle1]
      SELECT count(*)::int INTO moved FROM m; -- [settle1]
      IF moved <> cardinality(v_path) THEN RAISE EXCEPTION 'RELEASE for %: rollup rows missing', j.id; END IF; -- [settle1]
    END IF; -- [settle1]
    IF actual > 0 THEN -- [settle1]
      INSERT INTO usage_rollups (org_unit_id, account_id, period, reserved_micro_cs, settled_micro_cs) -- [settle1]
        SELECT u.id, j.account_id, settled, 0, actual FROM unnest(v_path) WITH ORDINALITY AS u(id, ord) ORDER BY u.ord -- [settle1]
        ON CONFLICT (org_unit_id, account_id, period) DO UPDATE SET -- [settle1]
          reserved_micro_cs = usage_rollups.reserved_micro_cs + excluded.reserved_micro_cs, -- [settle1]
          settled_micro_cs = usage_rollups.settled_micro_cs + excluded.settled_micro_cs; -- [settle1]
    END IF; -- [settle1]
  END IF;

  UPDATE jobs SET status = new_status, reserved_micro_cs = 0, actual_seconds = trim_scale(secs), actual_micro_cs = actual,
      overrun_micro_cs = 0, settled_period = CASE WHEN actual > 0 THEN settled END, settled_at = at, queued_at = NULL,
      failure_code = NULL, failure_message = NULL, next_check_at = NULL, updated_at = at
    WHERE id = j.id;
  -- The job's end as a money event, in the same transaction (docs/notifications.md).
  PERFORM gateway_money_event('job.finished', 'job.finished:' || j.id, j.project_id, jsonb_build_object(
    'jobId', j.id, 'projectId', j.project_id, 'accountId', j.account_id, 'kind', j.kind, 'status', new_status,
    'estimatedMicroCs', j.estimated_micro_cs::text, 'actualMicroCs', actual::text,
    'settledPeriod', CASE WHEN actual > 0 THEN settled END));
  RETURN jsonb_build_object('outcome', 'settled', 'status', new_status, 'actual_micro_cs', actual::text);
END $$;

-- Custom migration [admitfn]. The self time of the three server-side functions on every job's path, with the same
-- outcomes, errors, locks (and their order) and answers:
--   gateway_admit: the job and its audit event are inserted by static SQL (EXECUTE format(...) was parsed and planned
--     on every call; PL/pgSQL plans a static statement once per session): each row is the keys the gateway sent over
--     the columns' defaults, spelled in the function (test/job-path-static-sql.test.ts checks they are the table's);
--     the job comes back as its row, converted to the answer's JSON outside the INSERT, by gateway_json_row's own
--     expression written out (a statement PL/pgSQL plans once per session; the SQL function's body is parsed and
--     planned again in every transaction, at every place it is called); the path's budgets are
--     read once for the HARD ids and the first without overage (two reads before); the running statuses are read
--     from `p` once.
--   gateway_mark_submitted: the items are inserted by static SQL (same rule); the job and its items are converted
--     to JSON by gateway_json_row's expression written out, the job outside the UPDATE.
--   gateway_settle_followed: the account row is locked as before, but only its time zone is read into the function
--     (not the whole row, price book included).
-- Each is the WHOLE latest body (gateway_admit: 0036; gateway_mark_submitted: 0011; gateway_settle_followed: 0035),
-- every changed line marked `-- [admitfn]`. Measured with test/perf/job-functions-replay.sql and
-- test/perf/job-functions-profile.ts (docs/benchmark.md).
CREATE OR REPLACE FUNCTION gateway_admit(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  acc uuid := (p->>'account_id')::uuid;
  v_path uuid[] := ARRAY(SELECT jsonb_array_elements_text(p->'path')::uuid);
  v_period text := p->>'period';
  v_day date := (p->>'day')::date; -- [windows]
  requested bigint := (p->>'requested')::bigint;
  scope text := p->>'scope';
  idem text := p->>'idempotency_key';
  a accounts%ROWTYPE;
  t account_terms%ROWTYPE;
  has_terms boolean;
  j jobs%ROWTYPE;
  b budgets%ROWTYPE;
  no_overage_id uuid; -- [admitfn] the first budget without overage: its id and unit are all that is read of it
  no_overage_unit uuid; -- [admitfn]
  has_no_overage boolean := false;
  hard_ids uuid[];
  in_flight int;
  -- [windows] `monthly` and `reserved` are gone: the loop reads gateway_budget_usage.
  bw record; -- [windows]
  bu record; -- [windows]
  w_from text;
  w_to text;
  settled bigint;
  available bigint;
  best_available bigint;
  best budgets%ROWTYPE;
  best_limit bigint; -- [windows]
  v_granted bigint; -- [requests]
  best_from text;
  best_to text;
  has_best boolean := false;
  pool bigint;
  running text[] := ARRAY(SELECT jsonb_array_elements_text(p->'in_flight_statuses')); -- [admitfn] read once
  inserted jsonb;
  entry_id bigint;
  group_refusal jsonb; -- [tags]
  governed jsonb; -- [policies]
  queued boolean;  -- [queue]
  v_job jsonb := p->'job';  -- [queue]
  v_audit jsonb := p->'audit';  -- [queue]
  starts boolean;  -- [queuefair]
  waiting int := 0;  -- [queuefair]
BEGIN
  SELECT * INTO a FROM accounts WHERE id = acc FOR NO KEY UPDATE;
  IF NOT FOUND THEN RETURN jsonb_build_object('outcome', 'stale'); END IF;
  -- The estimate and the period were computed from what the gateway cached of the account.
  IF md5(a.price_book::text) <> p->>'price_book_md5' OR a.timezone <> p->>'timezone' THEN
    RETURN jsonb_build_object('outcome', 'stale');
  END IF;

  IF idem IS NOT NULL THEN
    SELECT * INTO j FROM jobs WHERE idempotency_scope = scope AND idempotency_key = idem;
    IF FOUND THEN
      IF j.request_hash <> p->>'request_hash' THEN RETURN jsonb_build_object('outcome', 'conflict', 'job_id', j.id); END IF;
      RETURN jsonb_build_object('outcome', 'replayed', 'job', gateway_json_row(to_jsonb(j)));
    END IF;
  END IF;

  governed := gateway_check_governance(p); -- [policies] unit policies and rate limits (locks the limits' rows)
  IF governed ? 'outcome' THEN RETURN governed; END IF; -- [policies]

  SELECT count(*)::int INTO in_flight FROM jobs
    WHERE account_id = acc AND status IN ('RESERVED', 'SUBMIT_UNKNOWN', 'SUBMITTED', 'PROCESSING')  -- [scan]
      AND status::text = ANY(running); -- [admitfn] the statuses read once
  -- [queuefair] The job starts now only if the dispatcher, given the free slots, would start it now were it queued
  -- (gateway_queue_starts: weights, minimums and maximums; it is the youngest of its project): a free slot that a
  -- waiting job is due to take is not taken by a newcomer, whether or not the newcomer may wait; one that no waiting
  -- job may take (their units at their maximum) is. Every change of the in-flight and queued sets holds this account
  -- row's lock (admission, dispatch, settlement), so the answer stands until the commit.
  IF in_flight >= a.concurrency_limit THEN  -- [queuefair]
    starts := false;  -- [queuefair]
  ELSIF NOT EXISTS (SELECT 1 FROM jobs x WHERE x.account_id = acc AND x.queued_at IS NOT NULL)  -- [queuefair]
        AND NOT EXISTS (SELECT 1 FROM concurrency_shares s WHERE s.account_id = acc AND s.org_unit_id = ANY(v_path) AND s.max_slots IS NOT NULL) THEN  -- [queuefair]
    starts := true;  -- [queuefair] nothing waits and no maximum applies: the common case, one index probe
  ELSE  -- [queuefair]
    starts := gateway_queue_starts(acc, (p->>'now')::timestamptz, running,  -- [queuefair] [admitfn] the statuses read once
      a.concurrency_limit - in_flight, (p->>'project_id')::uuid, (v_job->>'created_at')::timestamptz);  -- [queuefair]
  END IF;  -- [queuefair]
  -- [queuefair] A caller that may wait (`p.queue`) is queued, its hold taken below; one that may not wait is refused.
  queued := coalesce((p->>'queue')::boolean, false) AND NOT starts;  -- [queuefair]
  IF NOT starts AND NOT queued THEN  -- [queuefair]
    SELECT count(*)::int INTO waiting FROM jobs x WHERE x.account_id = acc AND x.queued_at IS NOT NULL;  -- [queuefair]
    RETURN jsonb_build_object('outcome', 'concurrency', 'limit', a.concurrency_limit, 'in_flight', in_flight, 'waiting', waiting);  -- [queuefair] + waiting
  END IF;

  -- Every budget on the path for this account, in id order: the first without overage names the pool's refusal.
  -- [admitfn] One read of the path's budgets for both (they were two).
  SELECT array_agg(x.id ORDER BY x.id) FILTER (WHERE x.enforcement = 'HARD'),  -- [admitfn]
         (array_agg(x.id ORDER BY x.id) FILTER (WHERE NOT x.allow_overage))[1],  -- [admitfn]
         (array_agg(x.org_unit_id ORDER BY x.id) FILTER (WHERE NOT x.allow_overage))[1]  -- [admitfn]
    INTO hard_ids, no_overage_id, no_overage_unit  -- [admitfn]
    FROM budgets x WHERE x.org_unit_id = ANY(v_path) AND (x.account_id IS NULL OR x.account_id = acc);
  has_no_overage := no_overage_id IS NOT NULL;  -- [admitfn]

  SELECT * INTO t FROM account_terms WHERE account_id = acc AND effective_from <= v_period ORDER BY effective_from DESC LIMIT 1;
  has_terms := FOUND;

  -- [windows] All-accounts budgets count each account's own window: the gateway must have sent every account.
  IF hard_ids IS NOT NULL AND EXISTS (SELECT 1 FROM budgets x WHERE x.id = ANY(hard_ids) AND x.account_id IS NULL)
     AND EXISTS (SELECT 1 FROM accounts x WHERE (p->'accounts'->x.id::text->>'timezone') IS DISTINCT FROM x.timezone) THEN
    RETURN jsonb_build_object('outcome', 'stale');
  END IF;

  -- HARD budgets locked in id order, and used as locked.
  FOR b IN SELECT * FROM budgets x WHERE x.id = ANY(coalesce(hard_ids, '{}')) ORDER BY x.id FOR UPDATE LOOP
    -- [windows] The window (this account's, for the refusal) and the usage in it, rollover included.
    SELECT * INTO bw FROM gateway_budget_bounds(b, v_period, v_day);
    w_from := bw.w_from;
    w_to := bw.w_to;
    SELECT * INTO bu FROM gateway_budget_usage(b, p->'accounts');
    -- [requests] The temporary raises in force at the job's creation instant (the gateway's clock) add to the limit.
    v_granted := gateway_budget_granted(b.id, (p->'job'->>'created_at')::timestamptz); -- [requests]
    available := b.limit_micro_cs + bu.carried + v_granted - bu.reserved - bu.settled; -- [requests] + v_granted
    -- [windows] A CUSTOM budget admits nothing outside its window.
    IF b.window::text = 'CUSTOM' AND NOT (v_day BETWEEN w_from::date AND w_to::date) THEN
      available := 0;
    END IF;
    IF requested > available THEN
      available := greatest(available, 0);
      IF NOT has_best OR available < best_available THEN
        has_best := true;
        best := b;
        best_limit := b.limit_micro_cs + bu.carried + v_granted; -- [windows] [requests] + v_granted
        best_available := available;
        best_from := w_from;
        best_to := w_to;
      END IF;
    END IF;
  END LOOP;
  IF has_best THEN
    RETURN jsonb_build_object('outcome', 'budget', 'budget', gateway_json_row(to_jsonb(best)),
      'limit', best_limit::text, -- [windows]
      'available', best_available::text, 'from', best_from, 'to', best_to,
      'account', gateway_json_row(to_jsonb(a) - 'api_key_ciphertext' - 'webhook_secret_ciphertext'),
      'terms', CASE WHEN has_terms THEN gateway_json_row(to_jsonb(t)) END,
      'unit', (SELECT jsonb_build_object('name', u.name, 'path', to_jsonb(u.path)) FROM org_units u WHERE u.id = best.org_unit_id));
  END IF;

  -- The account's own pool: a credit package is never overdrawn; a usage-based pool limits only under no-overage budgets.
  w_from := v_period;
  w_to := v_period;
  pool := NULL;
  IF a.billing_model = 'CREDIT_PACKAGE' THEN
    pool := CASE WHEN has_terms THEN coalesce(t.pool_micro_cs, 0) ELSE 0 END;
    IF has_terms AND t.term_start IS NOT NULL AND t.term_end IS NOT NULL THEN
      w_from := substr(t.term_start, 1, 7);
      w_to := substr(t.term_end, 1, 7);
    END IF;
    IF v_period < w_from OR v_period > w_to THEN
      RETURN jsonb_build_object('outcome', 'pool', 'budget_id', NULL, 'org_unit_id', v_path[1], 'limit', pool::text, 'available', '0',
        'account', gateway_json_row(to_jsonb(a) - 'api_key_ciphertext' - 'webhook_secret_ciphertext'),
        'terms', CASE WHEN has_terms THEN gateway_json_row(to_jsonb(t)) END,
        'unit', (SELECT jsonb_build_object('name', u.name, 'path', to_jsonb(u.path)) FROM org_units u WHERE u.id = v_path[1]));
    END IF;
  ELSIF has_no_overage THEN
    pool := CASE WHEN has_terms THEN coalesce(t.included_micro_cs, 0) ELSE 0 END;
  END IF;
  IF pool IS NOT NULL THEN
    -- Settled in the pool's periods, plus every open hold (one from last month settles into this one).
    SELECT coalesce(sum(r.settled_micro_cs) FILTER (WHERE r.period BETWEEN w_from AND w_to), 0) + coalesce(sum(r.reserved_micro_cs), 0)
      INTO settled FROM usage_rollups r WHERE r.org_unit_id = v_path[1] AND r.account_id = acc;
    available := pool - settled;
    IF requested > available THEN
      RETURN jsonb_build_object('outcome', 'pool',
        'budget_id', CASE WHEN has_no_overage THEN no_overage_id END,  -- [admitfn]
        'org_unit_id', CASE WHEN has_no_overage THEN no_overage_unit ELSE v_path[1] END,  -- [admitfn]
        'limit', pool::text, 'available', greatest(available, 0)::text,
        'account', gateway_json_row(to_jsonb(a) - 'api_key_ciphertext' - 'webhook_secret_ciphertext'),
        'terms', CASE WHEN has_terms THEN gateway_json_row(to_jsonb(t)) END,
        'unit', (SELECT jsonb_build_object('name', u.name, 'path', to_jsonb(u.path)) FROM org_units u
                 WHERE u.id = CASE WHEN has_no_overage THEN no_overage_unit ELSE v_path[1] END));  -- [admitfn]
    END IF;
  END IF;

  -- [tags] The organization's tag keys, and the budgets on a tag value or a person (gateway_check_group_budgets).
  group_refusal := gateway_check_group_budgets(p); -- [tags]
  IF group_refusal IS NOT NULL THEN RETURN group_refusal; END IF; -- [tags]

  IF queued THEN  -- [queue]
    -- [queue] Waiting: no forwarding lease and no attempt yet (the dispatcher claims it when a slot is its turn).
    v_job := v_job || jsonb_build_object('status', 'QUEUED', 'queued_at', v_job->'created_at', 'next_check_at', NULL, 'submit_attempts', 0);  -- [queue]
    v_audit := jsonb_set(v_audit, '{after,status}', '"QUEUED"');  -- [queue]
  END IF;  -- [queue]
  -- The job: its columns are the keys the gateway sent (a new column is one more key), defaults for the rest.
  -- [admitfn] Static SQL (planned once per session, not on every call as EXECUTE was): the columns' defaults are
  -- [admitfn] spelled here, under the keys sent (test/job-path-static-sql.test.ts checks they are the table's).
  INSERT INTO jobs SELECT r.* FROM jsonb_populate_record(NULL::jobs, jsonb_build_object(  -- [admitfn]
      'id', gen_random_uuid(), 'submit_attempts', 0, 'check_attempts', 0, 'created_at', now(), 'updated_at', now(), 'tags', '{}'::jsonb)  -- [admitfn]
      || v_job) r  -- [admitfn]
    ON CONFLICT (idempotency_scope, idempotency_key) DO NOTHING  -- [admitfn]
    RETURNING * INTO j;  -- [admitfn]
  IF NOT FOUND THEN  -- [admitfn]
    -- Two identical requests on different accounts' locks raced to the key; the other committed first: replay it.
    SELECT * INTO j FROM jobs WHERE idempotency_scope = scope AND idempotency_key = idem;
    IF j.request_hash <> p->>'request_hash' THEN RETURN jsonb_build_object('outcome', 'conflict', 'job_id', j.id); END IF;
    RETURN jsonb_build_object('outcome', 'replayed', 'job', gateway_json_row(to_jsonb(j)));
  END IF;
  -- [admitfn] gateway_json_row's expression, written out: a statement whose plan PL/pgSQL keeps for the session (the
  -- [admitfn] SQL function's body is parsed and planned again in every transaction that calls it).
  inserted := (SELECT coalesce(jsonb_object_agg(e.key, CASE WHEN jsonb_typeof(e.value) = 'number' THEN to_jsonb(e.value #>> '{}') ELSE e.value END), '{}'::jsonb) FROM jsonb_each(to_jsonb(j)) e);  -- [admitfn]
  PERFORM gateway_take_rates(p, governed->'scopes'); -- [policies] only an admitted job counts against a rate limit

  -- The hold: one ledger entry, and the rollups of every unit on the path, root first.
  INSERT INTO ledger_entries (job_id, entry_type, account_id, org_unit_id, period, amount_micro_cs)
    VALUES (j.id, 'HOLD',  -- [admitfn]
            acc, (p->>'project_id')::uuid, v_period, requested);
  INSERT INTO usage_rollups (org_unit_id, account_id, period, reserved_micro_cs, settled_micro_cs)
    SELECT u.id, acc, v_period, requested, 0 FROM unnest(v_path) WITH ORDINALITY AS u(id, ord) ORDER BY u.ord
    ON CONFLICT (org_unit_id, account_id, period) DO UPDATE SET
      reserved_micro_cs = usage_rollups.reserved_micro_cs + excluded.reserved_micro_cs,
      settled_micro_cs = usage_rollups.settled_micro_cs + excluded.settled_micro_cs;
  -- Last write of the admission: a refusal above leaves no audit event, an admission always has one.
  -- [admitfn] Static SQL, the keys sent over the columns' defaults (as the job's).
  INSERT INTO audit_events SELECT r.* FROM jsonb_populate_record(NULL::audit_events,  -- [admitfn]
    jsonb_build_object('id', nextval('audit_events_id_seq'), 'created_at', now()) || v_audit) r;  -- [admitfn]

  RETURN jsonb_build_object('outcome', 'admitted', 'job', inserted,
    'account', (SELECT coalesce(jsonb_object_agg(e.key, CASE WHEN jsonb_typeof(e.value) = 'number' THEN to_jsonb(e.value #>> '{}') ELSE e.value END), '{}'::jsonb) FROM jsonb_each(to_jsonb(a)) e));  -- [admitfn] gateway_json_row's expression, written out
END $$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION gateway_mark_submitted(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  j jobs%ROWTYPE;
  next_status text;
  at timestamptz := (p->>'now')::timestamptz;
  updated jsonb;
BEGIN
  SELECT * INTO j FROM jobs WHERE id = (p->>'job_id')::uuid FOR UPDATE;
  IF NOT FOUND THEN RETURN jsonb_build_object('outcome', 'not_awaiting', 'job', NULL); END IF;
  next_status := p->'next'->>(j.status::text);
  IF next_status IS NULL THEN RETURN jsonb_build_object('outcome', 'not_awaiting', 'job', gateway_json_row(to_jsonb(j))); END IF;
  IF jsonb_array_length(p->'items') > 0 THEN
    -- [admitfn] Static SQL (planned once per session, not on every call as EXECUTE was): each item's keys over the
    -- [admitfn] columns' defaults (test/job-path-static-sql.test.ts checks they are the table's), in the array's order.
    INSERT INTO job_items SELECT r.*  -- [admitfn]
      FROM jsonb_array_elements(p->'items') WITH ORDINALITY AS e(item, ord)  -- [admitfn]
      CROSS JOIN LATERAL jsonb_populate_record(NULL::job_items,  -- [admitfn]
        jsonb_build_object('id', gen_random_uuid(), 'status', 'pending', 'created_at', now()) || e.item) r  -- [admitfn]
      ORDER BY e.ord  -- [admitfn]
      ON CONFLICT DO NOTHING;  -- [admitfn]
  END IF;
  UPDATE jobs SET status = next_status::job_status, submitted_at = at, check_attempts = 0,
      next_check_at = at + CASE WHEN j.hinted_at IS NOT NULL THEN interval '0' ELSE ((p->>'poll_min_ms')::bigint * interval '1 millisecond') END,
      hinted_at = NULL, updated_at = at
    WHERE id = j.id
    RETURNING * INTO j;  -- [admitfn] converted below, outside the statement
  updated := (SELECT coalesce(jsonb_object_agg(e.key, CASE WHEN jsonb_typeof(e.value) = 'number' THEN to_jsonb(e.value #>> '{}') ELSE e.value END), '{}'::jsonb) FROM jsonb_each(to_jsonb(j)) e);  -- [admitfn] gateway_json_row's expression, written out (planned once per session)
  -- With the job's items (as its items are read: by creation), so that the answer needs no read-back.
  RETURN jsonb_build_object('outcome', 'submitted', 'job', updated,
    'items', (SELECT coalesce(jsonb_agg(  -- [admitfn] gateway_json_row's expression, written out
                (SELECT coalesce(jsonb_object_agg(e.key, CASE WHEN jsonb_typeof(e.value) = 'number' THEN to_jsonb(e.value #>> '{}') ELSE e.value END), '{}'::jsonb) FROM jsonb_each(to_jsonb(i)) e)  -- [admitfn]
                ORDER BY i.created_at), '[]'::jsonb) FROM job_items i WHERE i.job_id = j.id));  -- [admitfn]
END $$;
--> statement-breakpoint
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
    WITH m AS (
      UPDATE usage_rollups r SET reserved_micro_cs = r.reserved_micro_cs - j.reserved_micro_cs
        FROM unnest(v_path) WITH ORDINALITY AS u(id, ord)
       WHERE r.org_unit_id = u.id AND r.account_id = j.account_id AND r.period = j.hold_period
      RETURNING 1)
    SELECT count(*)::int INTO moved FROM m;
    IF moved <> cardinality(v_path) THEN RAISE EXCEPTION 'RELEASE for %: rollup rows missing', j.id; END IF;
  END IF;
  IF actual > 0 THEN
    INSERT INTO ledger_entries (job_id, entry_type, account_id, org_unit_id, period, day, amount_micro_cs)
      VALUES (j.id, 'DEBIT', j.account_id, j.project_id, settled, v_day, actual);
    INSERT INTO usage_rollups (org_unit_id, account_id, period, reserved_micro_cs, settled_micro_cs)
      SELECT u.id, j.account_id, settled, 0, actual FROM unnest(v_path) WITH ORDINALITY AS u(id, ord) ORDER BY u.ord
      ON CONFLICT (org_unit_id, account_id, period) DO UPDATE SET
        reserved_micro_cs = usage_rollups.reserved_micro_cs + excluded.reserved_micro_cs,
        settled_micro_cs = usage_rollups.settled_micro_cs + excluded.settled_micro_cs;
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

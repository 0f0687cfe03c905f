-- Custom migration [admit5]. Fewer statements on the admission's path, with the same outcomes, errors, locks (and
-- their order) and answers. Each statement a PL/pgSQL function runs is an executor start and end (with a sequential
-- scan: a size look-up of the table, a system call), and each PL/pgSQL function entered prepares its expressions again
-- in every transaction; an admission of a unit without policies, budgets or group budgets ran 60 statements through the
-- executor (its triggers and their WHEN look-ups included; 44 now) and entered 6 functions that could change nothing.
-- Skipped where they cannot change anything:
--   gateway_admit:
--   - gateway_check_governance and gateway_take_rates (3 functions, 8 statements) when no unit policy is on the path and the
--     calling token has no rate limit row (two look-ups in one statement instead): with neither, the governance
--     check reads nothing more, locks no row and answers no scope, and taking no scope writes nothing;
--   - gateway_check_group_budgets (4 statements) when the job has no tag and no group budget is on the path (one
--     look-up instead): with neither, it has no tag key to check and no budget to read or lock, and answers NULL;
--   - without a HARD budget on the path, the check of all-accounts HARD budgets and the HARD budgets' locking read
--     (both found nothing) are not run;
--   - the account's terms are read only where something reads them (a budget refusal's answer, a credit package's
--     pool, a pool under a no-overage budget);
--   - the HOLD is inserted on the job's hold day (`j.hold_day`), the value ledger_entries_day would have read back
--     from the job (its trigger, WHEN day IS NULL, still sets it when the job has none): one trigger call and one
--     read fewer;
--   - the admitted job's JSON is made in the answer's statement (it was a statement of its own).
--   gateway_mark_submitted: the job's JSON in the answer's statement, with its items' (it was a statement of its own).
--   gateway_noted_admission(s): gateway_note_refusal is called for a refusal only (its own first test, here).
-- Each is the WHOLE latest body (gateway_admit and gateway_mark_submitted: 0037; gateway_noted_admission(s): 0017),
-- with the SET clause of 0045 given again; every changed line marked `-- [admit5]`. Measured with
-- test/perf/job-calls-cpu.ts (docs/benchmark.md).

CREATE OR REPLACE FUNCTION gateway_admit(p jsonb) RETURNS jsonb LANGUAGE plpgsql
  SET plan_cache_mode = force_generic_plan AS $$  -- [admit5] the setting of migration 0045, given again
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

  -- [admit5] Unit policies and rate limits where there are any: with no policy on the path and no rate limit of the
  -- [admit5] calling token, gateway_check_governance reads nothing more, locks nothing and answers no scopes to take.
  IF EXISTS (SELECT 1 FROM unit_policies x WHERE x.org_unit_id = ANY(v_path))  -- [admit5]
     OR EXISTS (SELECT 1 FROM service_token_rate_limits k WHERE k.token_id = (p->>'token_id')::uuid) THEN  -- [admit5]
    governed := gateway_check_governance(p); -- [policies] unit policies and rate limits (locks the limits' rows)
    IF governed ? 'outcome' THEN RETURN governed; END IF; -- [policies]
  END IF;  -- [admit5] governed stays NULL: no scopes

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

  -- [admit5] The account's terms are read below, where an answer or the pool needs them.

  IF hard_ids IS NOT NULL THEN  -- [admit5] no HARD budget: nothing to check, read or lock (no statement run)
  -- [windows] All-accounts budgets count each account's own window: the gateway must have sent every account.
  IF EXISTS (SELECT 1 FROM budgets x WHERE x.id = ANY(hard_ids) AND x.account_id IS NULL)  -- [admit5] hard_ids tested above
     AND EXISTS (SELECT 1 FROM accounts x WHERE (p->'accounts'->x.id::text->>'timezone') IS DISTINCT FROM x.timezone) THEN
    RETURN jsonb_build_object('outcome', 'stale');
  END IF;

  -- HARD budgets locked in id order, and used as locked.
  FOR b IN SELECT * FROM budgets x WHERE x.id = ANY(hard_ids) ORDER BY x.id FOR UPDATE LOOP  -- [admit5] hard_ids tested above
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
  END IF;  -- [admit5] hard_ids IS NOT NULL
  -- [admit5] The terms (read above before): for a refusal's answer, a credit package's pool or a no-overage pool.
  IF has_best OR a.billing_model = 'CREDIT_PACKAGE' OR has_no_overage THEN  -- [admit5]
    SELECT * INTO t FROM account_terms WHERE account_id = acc AND effective_from <= v_period ORDER BY effective_from DESC LIMIT 1;
    has_terms := FOUND;
  ELSE  -- [admit5]
    has_terms := false;  -- [admit5] not read: nothing below reads them
  END IF;  -- [admit5]
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
  -- [admit5] Where there are any: with no tag on the job and no group budget on the path, gateway_check_group_budgets
  -- [admit5] has no key to check, nothing to read or lock, and answers NULL.
  IF coalesce(p->'job'->'tags', '{}'::jsonb) <> '{}'::jsonb  -- [admit5]
     OR EXISTS (SELECT 1 FROM group_budgets x WHERE x.org_unit_id = ANY(v_path)) THEN  -- [admit5]
    group_refusal := gateway_check_group_budgets(p); -- [tags]
    IF group_refusal IS NOT NULL THEN RETURN group_refusal; END IF; -- [tags]
  END IF;  -- [admit5]

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
  -- [admit5] The job's JSON is made in the answer's statement (below).
  IF governed IS NOT NULL THEN  -- [admit5] no governance read above: no scope to take
    PERFORM gateway_take_rates(p, governed->'scopes'); -- [policies] only an admitted job counts against a rate limit
  END IF;  -- [admit5]

  -- The hold: one ledger entry, and the rollups of every unit on the path, root first.
  -- [admit5] On the job's hold day, as ledger_entries_day would set it (it still does when the job has none).
  INSERT INTO ledger_entries (job_id, entry_type, account_id, org_unit_id, period, day, amount_micro_cs)  -- [admit5] + day
    VALUES (j.id, 'HOLD',  -- [admitfn]
            acc, (p->>'project_id')::uuid, v_period, j.hold_day, requested);  -- [admit5] + j.hold_day
  INSERT INTO usage_rollups (org_unit_id, account_id, period, reserved_micro_cs, settled_micro_cs)
    SELECT u.id, acc, v_period, requested, 0 FROM unnest(v_path) WITH ORDINALITY AS u(id, ord) ORDER BY u.ord
    ON CONFLICT (org_unit_id, account_id, period) DO UPDATE SET
      reserved_micro_cs = usage_rollups.reserved_micro_cs + excluded.reserved_micro_cs,
      settled_micro_cs = usage_rollups.settled_micro_cs + excluded.settled_micro_cs;
  -- Last write of the admission: a refusal above leaves no audit event, an admission always has one.
  -- [admitfn] Static SQL, the keys sent over the columns' defaults (as the job's).
  INSERT INTO audit_events SELECT r.* FROM jsonb_populate_record(NULL::audit_events,  -- [admitfn]
    jsonb_build_object('id', nextval('audit_events_id_seq'), 'created_at', now()) || v_audit) r;  -- [admitfn]

  -- [admitfn] gateway_json_row's expression, written out: a statement whose plan PL/pgSQL keeps for the session (the
  -- [admitfn] SQL function's body is parsed and planned again in every transaction that calls it).
  RETURN jsonb_build_object('outcome', 'admitted',
    'job', (SELECT coalesce(jsonb_object_agg(e.key, CASE WHEN jsonb_typeof(e.value) = 'number' THEN to_jsonb(e.value #>> '{}') ELSE e.value END), '{}'::jsonb) FROM jsonb_each(to_jsonb(j)) e),  -- [admit5] one statement with the account's
    'account', (SELECT coalesce(jsonb_object_agg(e.key, CASE WHEN jsonb_typeof(e.value) = 'number' THEN to_jsonb(e.value #>> '{}') ELSE e.value END), '{}'::jsonb) FROM jsonb_each(to_jsonb(a)) e));  -- [admitfn] gateway_json_row's expression, written out
END $$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION gateway_mark_submitted(p jsonb) RETURNS jsonb LANGUAGE plpgsql
  SET plan_cache_mode = force_generic_plan AS $$  -- [admit5] the setting of migration 0045, given again
DECLARE
  j jobs%ROWTYPE;
  next_status text;
  at timestamptz := (p->>'now')::timestamptz;
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
  -- With the job's items (as its items are read: by creation), so that the answer needs no read-back.
  -- [admit5] The job's JSON in the same statement as its items' (it was a statement of its own).
  RETURN jsonb_build_object('outcome', 'submitted',
    'job', (SELECT coalesce(jsonb_object_agg(e.key, CASE WHEN jsonb_typeof(e.value) = 'number' THEN to_jsonb(e.value #>> '{}') ELSE e.value END), '{}'::jsonb) FROM jsonb_each(to_jsonb(j)) e),  -- [admitfn] gateway_json_row's expression, written out (planned once per session)
    'items', (SELECT coalesce(jsonb_agg(  -- [admitfn] gateway_json_row's expression, written out
                (SELECT coalesce(jsonb_object_agg(e.key, CASE WHEN jsonb_typeof(e.value) = 'number' THEN to_jsonb(e.value #>> '{}') ELSE e.value END), '{}'::jsonb) FROM jsonb_each(to_jsonb(i)) e)  -- [admitfn]
                ORDER BY i.created_at), '[]'::jsonb) FROM job_items i WHERE i.job_id = j.id));  -- [admitfn]
END $$;
--> statement-breakpoint
-- The admission's answer, passed through after noting a refusal: `select gateway_noted_admission(q.p, gateway_admit(q.p))`.
CREATE OR REPLACE FUNCTION gateway_noted_admission(p jsonb, r jsonb) RETURNS jsonb LANGUAGE plpgsql
  SET plan_cache_mode = force_generic_plan AS $$  -- [admit5] the setting of migration 0045, given again
BEGIN
  -- [admit5] Only a refusal is noted (gateway_note_refusal's own first test, here: no call and no statement otherwise).
  IF r->>'outcome' IN ('budget', 'pool', 'group_budget') THEN  -- [admit5]
    PERFORM gateway_note_refusal(p, r);
  END IF;  -- [admit5]
  RETURN r;
END $$;
--> statement-breakpoint
-- The same for a batch: `select gateway_noted_admissions(q.ps, gateway_admit_batch(q.ps))`.
CREATE OR REPLACE FUNCTION gateway_noted_admissions(ps jsonb, rs jsonb) RETURNS jsonb LANGUAGE plpgsql
  SET plan_cache_mode = force_generic_plan AS $$  -- [admit5] the setting of migration 0045, given again
DECLARE
  i int;
BEGIN
  FOR i IN 0 .. jsonb_array_length(rs) - 1 LOOP
    IF rs->i->>'outcome' IN ('budget', 'pool', 'group_budget') THEN  -- [admit5] as gateway_noted_admission
      PERFORM gateway_note_refusal(ps->i, rs->i);
    END IF;  -- [admit5]
  END LOOP;
  RETURN rs;
END $$;

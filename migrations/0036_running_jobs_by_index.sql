-- Custom migration. Running jobs are counted through the partial index jobs_in_flight: admission, the queue's pick
-- and the dispatcher compared `status::text` with the statuses passed in (IN_FLIGHT_STATUSES), which no index can
-- serve (a partial index's predicate cannot be proved from a parameter, and the generic plans of PL/pgSQL do not
-- choose a status column of an index for one), so each of them scanned the whole jobs table under the account's lock,
-- growing with the account's history. Each now also states jobs_in_flight's own predicate, the literal list that
-- IN_FLIGHT_STATUSES spells (src/jobs/lifecycle.ts; test/running-jobs-index.test.ts checks both agree and that the
-- plans read the index), so the planner reads only the account's running jobs.
-- Each function is its latest body (migration 0034's, with every earlier branch's marked lines), the changed line
-- marked `-- [scan]`; nothing else changes. gateway_admit's latest body is now this one.

CREATE OR REPLACE FUNCTION gateway_queue_pick(acc uuid, at timestamptz, running_statuses text[], picked uuid[], v_project uuid, v_created timestamptz)
RETURNS uuid LANGUAGE plpgsql STABLE AS $$
DECLARE
  prefix uuid[] := '{}';
  d int;
  chosen uuid;
BEGIN
  -- Descend the org tree from the root. At each level the candidates are the child units with a job due to start
  -- (`next_check_at` is a requeued job's not-before time; `picked` jobs count as running, not as waiting; the
  -- newcomer `v_project`/`v_created`, when given, waits too), never one at its maximum (concurrency_shares). The one
  -- under its guaranteed minimum goes first; else the one with the fewest slot-seconds per unit of weight (weight 1
  -- without a row), the fewest running jobs per unit of weight on a tie, the longest waiting on a tie. Answers the
  -- project reached, or NULL when no waiting job may start.
  --
  -- Slot-seconds are counted over the window in which every candidate has been served: from the latest of their
  -- first starts in their current busy period (since they last had nothing running or waiting), at most the last
  -- hour. A unit idle before gets no credit for it, and a unit that arrives gets slots as soon as one frees. A slot is held from HeyGen taking the job
  -- (submitted_at; a job being forwarded, from now) to its end (settled_at); a running job is counted until its
  -- expected end, its unit's mean run time in the window (the candidates' mean, or 1 s, while it has none), so that
  -- slots given out at the same instant are shared by weight too, and a unit whose renders take twice as long gets
  -- half as many jobs started for the same slot-seconds.
  LOOP
    d := cardinality(prefix);
    WITH cand AS (
      SELECT q.path[d + 1] AS unit, min(q.created_at) AS oldest
        FROM (SELECT u.path, x.created_at FROM jobs x JOIN org_units u ON u.id = x.project_id
                WHERE x.account_id = acc AND x.queued_at IS NOT NULL AND (x.next_check_at IS NULL OR x.next_check_at <= at)
                  AND x.id <> ALL(picked)
              UNION ALL
              SELECT u.path, v_created FROM org_units u WHERE u.id = v_project) q
        WHERE q.path[1:d] = prefix
        GROUP BY 1
    ), held AS (
      -- The candidates' jobs that hold a slot, or held one in the last hour, with the slot's start and (known) end:
      -- the running ones, the picked ones, the finished ones (jobs_account_settled).
      SELECT u.path[d + 1] AS unit, x.created_at, x.running, x.slot_from, x.slot_to
        FROM (SELECT r.project_id, r.created_at, true AS running, least(coalesce(r.submitted_at, at), at) AS slot_from, NULL::timestamptz AS slot_to
                FROM jobs r WHERE r.account_id = acc AND r.status IN ('RESERVED', 'SUBMIT_UNKNOWN', 'SUBMITTED', 'PROCESSING') AND r.status::text = ANY(running_statuses)  -- [scan]
              UNION ALL
              SELECT k.project_id, k.created_at, true, at, NULL FROM jobs k WHERE k.id = ANY(picked)
              UNION ALL
              SELECT f.project_id, f.created_at, false, f.submitted_at, f.settled_at
                FROM jobs f WHERE f.account_id = acc AND f.settled_at > at - interval '1 hour' AND f.settled_at <= at AND f.submitted_at IS NOT NULL) x
        JOIN org_units u ON u.id = x.project_id
        WHERE u.path[1:d] = prefix AND u.path[d + 1] IN (SELECT c.unit FROM cand c)
    ), busy AS (
      -- Where each candidate's busy period began: the latest of its jobs (and its oldest waiting one) created after
      -- every job of the unit created before it had ended (gaps and islands over [created_at, settled_at]).
      SELECT i.unit, max(i.created_at) FILTER (WHERE i.island) AS busy_from
        FROM (SELECT sp.unit, sp.created_at,
                     sp.created_at > coalesce(max(sp.ends) OVER (PARTITION BY sp.unit ORDER BY sp.created_at ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), '-infinity') AS island
                FROM (SELECT h.unit, h.created_at, coalesce(h.slot_to, 'infinity') AS ends FROM held h
                      UNION ALL SELECT c.unit, c.oldest, 'infinity'::timestamptz FROM cand c) sp) i
        GROUP BY i.unit
    ), state AS (
      SELECT c.unit, c.oldest,
             count(h.unit) FILTER (WHERE h.running)::int AS n,
             min(h.slot_from) FILTER (WHERE h.created_at >= b.busy_from) AS served_from,
             avg(extract(epoch FROM h.slot_to - h.slot_from)) FILTER (WHERE NOT h.running) AS mean_run
        FROM cand c JOIN busy b ON b.unit = c.unit LEFT JOIN held h ON h.unit = c.unit
        GROUP BY c.unit, c.oldest
    ), win AS (
      SELECT greatest(coalesce(max(s.served_from), at), at - interval '1 hour') AS t0,
             coalesce((SELECT avg(extract(epoch FROM h.slot_to - h.slot_from)) FROM held h WHERE NOT h.running), 1) AS mean_run
        FROM state s
    ), served AS (
      -- A finished job's slot to its end, a running one's to its expected end (at least now), from t0.
      SELECT s.unit, coalesce(sum(greatest(0, extract(epoch FROM
               coalesce(h.slot_to, greatest(at, h.slot_from + make_interval(secs => coalesce(s.mean_run, w.mean_run)::float8)))
               - greatest(h.slot_from, w.t0)))), 0) AS slot_seconds
        FROM state s CROSS JOIN win w LEFT JOIN held h ON h.unit = s.unit
        GROUP BY s.unit
    )
    SELECT s.unit INTO chosen
      FROM state s JOIN served v ON v.unit = s.unit
      LEFT JOIN concurrency_shares cs ON cs.account_id = acc AND cs.org_unit_id = s.unit
      WHERE cs.max_slots IS NULL OR s.n < cs.max_slots
      ORDER BY (s.n < coalesce(cs.min_slots, 0)) DESC, v.slot_seconds / coalesce(cs.weight, 1), s.n::numeric / coalesce(cs.weight, 1), s.oldest, s.unit
      LIMIT 1;
    IF chosen IS NULL THEN RETURN NULL; END IF;
    IF (SELECT u.kind = 'PROJECT' FROM org_units u WHERE u.id = chosen) THEN RETURN chosen; END IF;
    prefix := prefix || chosen;
  END LOOP;
END $$;
--> statement-breakpoint
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
  no_overage budgets%ROWTYPE;
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
  cols text;
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
      AND status::text IN (SELECT jsonb_array_elements_text(p->'in_flight_statuses'));
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
    starts := gateway_queue_starts(acc, (p->>'now')::timestamptz, ARRAY(SELECT jsonb_array_elements_text(p->'in_flight_statuses')),  -- [queuefair]
      a.concurrency_limit - in_flight, (p->>'project_id')::uuid, (v_job->>'created_at')::timestamptz);  -- [queuefair]
  END IF;  -- [queuefair]
  -- [queuefair] A caller that may wait (`p.queue`) is queued, its hold taken below; one that may not wait is refused.
  queued := coalesce((p->>'queue')::boolean, false) AND NOT starts;  -- [queuefair]
  IF NOT starts AND NOT queued THEN  -- [queuefair]
    SELECT count(*)::int INTO waiting FROM jobs x WHERE x.account_id = acc AND x.queued_at IS NOT NULL;  -- [queuefair]
    RETURN jsonb_build_object('outcome', 'concurrency', 'limit', a.concurrency_limit, 'in_flight', in_flight, 'waiting', waiting);  -- [queuefair] + waiting
  END IF;

  -- Every budget on the path for this account, in id order: the first without overage names the pool's refusal.
  SELECT array_agg(x.id ORDER BY x.id) FILTER (WHERE x.enforcement = 'HARD') INTO hard_ids
    FROM budgets x WHERE x.org_unit_id = ANY(v_path) AND (x.account_id IS NULL OR x.account_id = acc);
  SELECT * INTO no_overage FROM budgets x
    WHERE x.org_unit_id = ANY(v_path) AND (x.account_id IS NULL OR x.account_id = acc) AND NOT x.allow_overage
    ORDER BY x.id LIMIT 1;
  has_no_overage := FOUND;

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
        'budget_id', CASE WHEN has_no_overage THEN no_overage.id END,
        'org_unit_id', CASE WHEN has_no_overage THEN no_overage.org_unit_id ELSE v_path[1] END,
        'limit', pool::text, 'available', greatest(available, 0)::text,
        'account', gateway_json_row(to_jsonb(a) - 'api_key_ciphertext' - 'webhook_secret_ciphertext'),
        'terms', CASE WHEN has_terms THEN gateway_json_row(to_jsonb(t)) END,
        'unit', (SELECT jsonb_build_object('name', u.name, 'path', to_jsonb(u.path)) FROM org_units u
                 WHERE u.id = CASE WHEN has_no_overage THEN no_overage.org_unit_id ELSE v_path[1] END));
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
  SELECT string_agg(quote_ident(k), ', ') INTO cols FROM jsonb_object_keys(v_job) k;  -- [queue] v_job
  EXECUTE format('INSERT INTO jobs (%s) SELECT %s FROM jsonb_populate_record(NULL::jobs, $1) ON CONFLICT (idempotency_scope, idempotency_key) DO NOTHING RETURNING gateway_json_row(to_jsonb(jobs.*))', cols, cols)
    USING v_job INTO inserted;  -- [queue] v_job
  IF inserted IS NULL THEN
    -- Two identical requests on different accounts' locks raced to the key; the other committed first: replay it.
    SELECT * INTO j FROM jobs WHERE idempotency_scope = scope AND idempotency_key = idem;
    IF j.request_hash <> p->>'request_hash' THEN RETURN jsonb_build_object('outcome', 'conflict', 'job_id', j.id); END IF;
    RETURN jsonb_build_object('outcome', 'replayed', 'job', gateway_json_row(to_jsonb(j)));
  END IF;
  PERFORM gateway_take_rates(p, governed->'scopes'); -- [policies] only an admitted job counts against a rate limit

  -- The hold: one ledger entry, and the rollups of every unit on the path, root first.
  INSERT INTO ledger_entries (job_id, entry_type, account_id, org_unit_id, period, amount_micro_cs)
    VALUES ((inserted->>'id')::uuid, 'HOLD', acc, (p->>'project_id')::uuid, v_period, requested);
  INSERT INTO usage_rollups (org_unit_id, account_id, period, reserved_micro_cs, settled_micro_cs)
    SELECT u.id, acc, v_period, requested, 0 FROM unnest(v_path) WITH ORDINALITY AS u(id, ord) ORDER BY u.ord
    ON CONFLICT (org_unit_id, account_id, period) DO UPDATE SET
      reserved_micro_cs = usage_rollups.reserved_micro_cs + excluded.reserved_micro_cs,
      settled_micro_cs = usage_rollups.settled_micro_cs + excluded.settled_micro_cs;
  -- Last write of the admission: a refusal above leaves no audit event, an admission always has one.
  SELECT string_agg(quote_ident(k), ', ') INTO cols FROM jsonb_object_keys(v_audit) k;  -- [queue] v_audit
  EXECUTE format('INSERT INTO audit_events (%s) SELECT %s FROM jsonb_populate_record(NULL::audit_events, $1)', cols, cols) USING v_audit;  -- [queue] v_audit

  RETURN jsonb_build_object('outcome', 'admitted', 'job', inserted,
    'account', gateway_json_row(to_jsonb(a)));
END $$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION gateway_dispatch(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  acc uuid := (p->>'account_id')::uuid;
  at timestamptz := (p->>'now')::timestamptz;
  running_statuses text[] := ARRAY(SELECT jsonb_array_elements_text(p->'in_flight_statuses'));
  a accounts%ROWTYPE;
  in_flight int;
  chosen uuid;
  j jobs%ROWTYPE;
  updated jsonb;
BEGIN
  SELECT * INTO a FROM accounts WHERE id = acc FOR NO KEY UPDATE;
  IF NOT FOUND THEN RETURN jsonb_build_object('outcome', 'none'); END IF;
  SELECT count(*)::int INTO in_flight FROM jobs WHERE account_id = acc AND status IN ('RESERVED', 'SUBMIT_UNKNOWN', 'SUBMITTED', 'PROCESSING') AND status::text = ANY(running_statuses);  -- [scan]
  IF in_flight >= a.concurrency_limit THEN RETURN jsonb_build_object('outcome', 'full'); END IF;
  chosen := gateway_queue_pick(acc, at, running_statuses, '{}', NULL, NULL);  -- [queuefair]
  IF chosen IS NULL THEN RETURN jsonb_build_object('outcome', 'none'); END IF;
  SELECT * INTO j FROM jobs x
    WHERE x.account_id = acc AND x.project_id = chosen AND x.queued_at IS NOT NULL AND (x.next_check_at IS NULL OR x.next_check_at <= at)
    ORDER BY x.created_at, x.id LIMIT 1 FOR UPDATE SKIP LOCKED;
  IF NOT FOUND THEN RETURN jsonb_build_object('outcome', 'none'); END IF;
  UPDATE jobs SET status = (p->>'status')::job_status, queued_at = NULL, submit_attempts = submit_attempts + 1,
      next_check_at = (p->>'lease_until')::timestamptz, hold_expires_at = greatest(hold_expires_at, (p->>'hold_expires_at')::timestamptz),
      updated_at = at
    WHERE id = j.id
    RETURNING gateway_json_row(to_jsonb(jobs.*)) INTO updated;
  RETURN jsonb_build_object('outcome', 'dispatched', 'job', updated, 'account', gateway_json_row(to_jsonb(a)));
END $$;

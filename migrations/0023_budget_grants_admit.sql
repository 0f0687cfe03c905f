-- Custom migration (branch requests). Temporary budget raises (budget_grants): an approved request with an `until`
-- adds its amount to the budget's limit while `until` has not passed, and then simply stops counting, so no job has
-- to lower the limit again. The limit in force is limit + carried (a MONTHLY budget's rollover, computed from the
-- standing limit only: a grant never rolls over) + the grants in force. The admission adds the grants in force at
-- the job's creation instant (the gateway's clock, as every other instant of the admission) to each HARD budget's
-- limit; the reads (src/budgets/budgets.ts, budgetsWithUsage) call the same function.
CREATE OR REPLACE FUNCTION gateway_budget_granted(p_budget uuid, p_at timestamptz) RETURNS bigint LANGUAGE sql STABLE AS $$
  SELECT coalesce(sum(g.amount_micro_cs), 0)::bigint FROM budget_grants g WHERE g.budget_id = p_budget AND g.until > p_at
$$;
--> statement-breakpoint
-- gateway_admit: the latest body (the budget windows' migration, with its [policies] and [windows] lines), with the
-- grants in force added to each HARD budget's effective limit, in the check and in the refusal's limit (and so in
-- its budget.refused money event); lines marked [requests].
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
  governed jsonb; -- [policies]
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
    WHERE account_id = acc AND status::text IN (SELECT jsonb_array_elements_text(p->'in_flight_statuses'));
  IF in_flight >= a.concurrency_limit THEN
    RETURN jsonb_build_object('outcome', 'concurrency', 'limit', a.concurrency_limit, 'in_flight', in_flight);
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

  -- The job: its columns are the keys the gateway sent (a new column is one more key), defaults for the rest.
  SELECT string_agg(quote_ident(k), ', ') INTO cols FROM jsonb_object_keys(p->'job') k;
  EXECUTE format('INSERT INTO jobs (%s) SELECT %s FROM jsonb_populate_record(NULL::jobs, $1) ON CONFLICT (idempotency_scope, idempotency_key) DO NOTHING RETURNING gateway_json_row(to_jsonb(jobs.*))', cols, cols)
    USING p->'job' INTO inserted;
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
  SELECT string_agg(quote_ident(k), ', ') INTO cols FROM jsonb_object_keys(p->'audit') k;
  EXECUTE format('INSERT INTO audit_events (%s) SELECT %s FROM jsonb_populate_record(NULL::audit_events, $1)', cols, cols) USING p->'audit';

  RETURN jsonb_build_object('outcome', 'admitted', 'job', inserted,
    'account', gateway_json_row(to_jsonb(a)));
END $$;
--> statement-breakpoint
-- gateway_budget_alerts: the budget windows' body, with the grants in force added to the limit the thresholds are
-- measured against (one line marked [requests]). An approval re-judges the budget's latest window (its update names
-- limit_micro_cs, so budgets_money_events runs): a raise resolves the thresholds it lifts usage back under.
CREATE OR REPLACE FUNCTION gateway_budget_alerts(b budgets, cur jsonb, w_from text, w_to text, may_resolve boolean) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  bu record;
  used bigint;
  lim bigint;
  th int;
  gen int;
  data jsonb;
BEGIN
  SELECT * INTO bu FROM gateway_budget_usage(b, cur);
  used := bu.reserved + bu.settled;
  -- [requests] With the temporary raises in force at the transaction's start: a trigger knows no gateway instant.
  lim := b.limit_micro_cs + bu.carried + gateway_budget_granted(b.id, now()); -- [requests]
  FOR th IN SELECT DISTINCT x FROM unnest(b.alert_thresholds) AS x ORDER BY x LOOP
    gen := NULL;
    data := jsonb_build_object('budgetId', b.id, 'orgUnitId', b.org_unit_id, 'accountId', b.account_id, 'window', b.window,
      'enforcement', b.enforcement, 'threshold', th, 'usedMicroCs', used::text, 'limitMicroCs', lim::text,
      'windowFrom', w_from, 'windowTo', w_to);
    IF used > 0 AND used::numeric * 100 >= th::numeric * lim THEN
      INSERT INTO budget_alert_states (budget_id, window_from, window_to, threshold, crossed, generation, changed_at)
        VALUES (b.id, w_from, w_to, th, true, 1, now())
        ON CONFLICT (budget_id, window_from, window_to, threshold) DO UPDATE
          SET crossed = true, generation = budget_alert_states.generation + 1, changed_at = now()
          WHERE NOT budget_alert_states.crossed
        RETURNING generation INTO gen;
      IF gen IS NOT NULL THEN
        PERFORM gateway_money_event('budget.threshold_crossed',
          format('budget.threshold_crossed:%s:%s:%s:%s:%s', b.id, w_from, w_to, th, gen), b.org_unit_id, data);
      END IF;
    ELSIF may_resolve THEN
      UPDATE budget_alert_states SET crossed = false, changed_at = now()
        WHERE budget_id = b.id AND window_from = w_from AND window_to = w_to AND threshold = th AND crossed
        RETURNING generation INTO gen;
      IF gen IS NOT NULL THEN
        PERFORM gateway_money_event('budget.threshold_resolved',
          format('budget.threshold_resolved:%s:%s:%s:%s:%s', b.id, w_from, w_to, th, gen), b.org_unit_id, data);
      END IF;
    END IF;
  END LOOP;
END $$;

-- Custom migration. The fair job queue in front of an account's concurrency limit (src/jobs/queue.ts,
-- docs/governance.md "Concurrency queue"): the admission queues a job that may wait instead of refusing it, the
-- dispatcher claims the next queued job by weighted fair share over the org tree, and a freed slot is announced.
--
-- gateway_admit: the latest body (the tags' migration, with its [policies], [windows], [requests] and [tags] lines);
-- every line the queue changed is marked `-- [queue]`. A queued job passed the policies and took its rate counts
-- here, at its admission (gateway_check_governance, gateway_take_rates): gateway_dispatch counts nothing again.
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
  -- [queue] A caller that may wait (`p.queue`) is queued, its hold taken below, when the account is full or when jobs
  -- already wait (a new one does not take a slot ahead of them: src/jobs/queue.ts gives slots out by fair share);
  -- one that may not wait is refused as before.
  queued := coalesce((p->>'queue')::boolean, false) AND (in_flight >= a.concurrency_limit  -- [queue]
    OR EXISTS (SELECT 1 FROM jobs x WHERE x.account_id = acc AND x.queued_at IS NOT NULL));  -- [queue]
  IF in_flight >= a.concurrency_limit AND NOT queued THEN  -- [queue]
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
-- The next queued job of one account, by weighted fair share, claimed for forwarding in one call (any process, no
-- leader): lock the account (as admission does, so the in-flight count is exact), stop if it is full; then descend
-- the org tree from the root: at each level, among the child units with a job due to start (`next_check_at` is a
-- requeued job's not-before time), the one under its guaranteed minimum first, else the fewest running jobs per unit
-- of weight (concurrency_shares; weight 1 without a row), never one at its maximum, the longest waiting on a tie;
-- within the project reached, the oldest job (FIFO), FOR UPDATE SKIP LOCKED (a job being cancelled or expired is
-- passed over). The job leaves the queue as `p.status` (from the gateway's lifecycle) with its first attempt
-- counted and a forwarding lease, exactly as an admission that forwards at once leaves it: a process that dies
-- while forwarding is recovered by the worker when the lease lapses. Its hold is kept until at least
-- `p.hold_expires_at` (the wait does not eat the forwarding's hold time).
-- Answers {outcome: 'dispatched', job, account} (the account row with its key, for forwarding), 'full' or 'none'.
CREATE OR REPLACE FUNCTION gateway_dispatch(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  acc uuid := (p->>'account_id')::uuid;
  at timestamptz := (p->>'now')::timestamptz;
  running_statuses text[] := ARRAY(SELECT jsonb_array_elements_text(p->'in_flight_statuses'));
  a accounts%ROWTYPE;
  in_flight int;
  prefix uuid[] := '{}';
  chosen uuid;
  j jobs%ROWTYPE;
  updated jsonb;
BEGIN
  SELECT * INTO a FROM accounts WHERE id = acc FOR NO KEY UPDATE;
  IF NOT FOUND THEN RETURN jsonb_build_object('outcome', 'none'); END IF;
  SELECT count(*)::int INTO in_flight FROM jobs WHERE account_id = acc AND status::text = ANY(running_statuses);
  IF in_flight >= a.concurrency_limit THEN RETURN jsonb_build_object('outcome', 'full'); END IF;
  LOOP
    SELECT w.unit INTO chosen
      FROM (SELECT u.path[cardinality(prefix) + 1] AS unit, min(x.created_at) AS oldest
              FROM jobs x JOIN org_units u ON u.id = x.project_id
              WHERE x.account_id = acc AND x.queued_at IS NOT NULL AND (x.next_check_at IS NULL OR x.next_check_at <= at)
                AND u.path[1:cardinality(prefix)] = prefix
              GROUP BY 1) w
      CROSS JOIN LATERAL (SELECT count(*)::int AS n FROM jobs r JOIN org_units ru ON ru.id = r.project_id
              WHERE r.account_id = acc AND r.status::text = ANY(running_statuses) AND ru.path[cardinality(prefix) + 1] = w.unit) run
      LEFT JOIN concurrency_shares s ON s.account_id = acc AND s.org_unit_id = w.unit
      WHERE s.max_slots IS NULL OR run.n < s.max_slots
      ORDER BY (run.n < coalesce(s.min_slots, 0)) DESC, run.n::numeric / coalesce(s.weight, 1), w.oldest
      LIMIT 1;
    IF chosen IS NULL THEN RETURN jsonb_build_object('outcome', 'none'); END IF;
    EXIT WHEN (SELECT u.kind = 'PROJECT' FROM org_units u WHERE u.id = chosen);
    prefix := prefix || chosen;
  END LOOP;
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
--> statement-breakpoint
-- A job that leaves the running states frees a slot: announced (at commit) to every process's dispatcher, but only
-- while jobs of its account wait.
CREATE OR REPLACE FUNCTION gateway_queue_slot_freed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status::text IN ('RESERVED', 'SUBMIT_UNKNOWN', 'SUBMITTED', 'PROCESSING')
     AND NEW.status::text NOT IN ('RESERVED', 'SUBMIT_UNKNOWN', 'SUBMITTED', 'PROCESSING')
     AND EXISTS (SELECT 1 FROM jobs q WHERE q.account_id = NEW.account_id AND q.queued_at IS NOT NULL) THEN
    PERFORM pg_notify('gateway_queue', NEW.account_id::text);
  END IF;
  RETURN NEW;
END $$;
--> statement-breakpoint
CREATE TRIGGER jobs_queue_slot_freed AFTER UPDATE OF status ON jobs
  FOR EACH ROW EXECUTE FUNCTION gateway_queue_slot_freed();

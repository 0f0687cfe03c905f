-- Custom migration. Service-token revocation is announced to every gateway process (LISTEN/NOTIFY): each keeps
-- validated tokens in memory and drops one when its notice arrives (delivered at commit).
CREATE OR REPLACE FUNCTION gateway_notify_token_revoked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL THEN
    PERFORM pg_notify('gateway_service_token_revoked', NEW.id::text);
  END IF;
  RETURN NEW;
END $$;
--> statement-breakpoint
CREATE TRIGGER service_tokens_notify_revoked AFTER UPDATE OF revoked_at ON service_tokens
  FOR EACH ROW EXECUTE FUNCTION gateway_notify_token_revoked();
--> statement-breakpoint
-- A row as jsonb with every top-level number as its exact decimal text (bigint micro-credit-seconds would lose
-- precision as a JSON number); the gateway maps it back through the table's column definitions.
CREATE OR REPLACE FUNCTION gateway_json_row(r jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT coalesce(jsonb_object_agg(key, CASE WHEN jsonb_typeof(value) = 'number' THEN to_jsonb(value #>> '{}') ELSE value END), '{}'::jsonb)
  FROM jsonb_each(r)
$$;
--> statement-breakpoint
-- The whole admission of one job in one call (src/jobs/admission.ts builds `p` and reads the answer): lock the
-- account, replay an idempotency key, the concurrency count, every HARD budget on the path (locked in id order)
-- over its window, the account pool, then the job, its HOLD (ledger entry and rollups, root first) and the audit
-- event. Periods come from the gateway (its time-zone rules), checked against the accounts' time zones here.
-- Answers one jsonb object whose `outcome` is admitted | replayed | conflict | concurrency | budget | pool | stale.
CREATE OR REPLACE FUNCTION gateway_admit(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  acc uuid := (p->>'account_id')::uuid;
  v_path uuid[] := ARRAY(SELECT jsonb_array_elements_text(p->'path')::uuid);
  v_period text := p->>'period';
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
  monthly boolean;
  w_from text;
  w_to text;
  reserved bigint;
  settled bigint;
  available bigint;
  best_available bigint;
  best budgets%ROWTYPE;
  best_from text;
  best_to text;
  has_best boolean := false;
  pool bigint;
  cols text;
  inserted jsonb;
  entry_id bigint;
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

  -- All-accounts monthly budgets add up each account's own current month: the gateway must have sent them all.
  IF hard_ids IS NOT NULL AND EXISTS (SELECT 1 FROM budgets x WHERE x.id = ANY(hard_ids) AND x.account_id IS NULL AND x.window = 'MONTHLY')
     AND EXISTS (SELECT 1 FROM accounts x WHERE (p->'accounts'->x.id::text->>'timezone') IS DISTINCT FROM x.timezone) THEN
    RETURN jsonb_build_object('outcome', 'stale');
  END IF;

  -- HARD budgets locked in id order, and used as locked.
  FOR b IN SELECT * FROM budgets x WHERE x.id = ANY(coalesce(hard_ids, '{}')) ORDER BY x.id FOR UPDATE LOOP
    monthly := b.window = 'MONTHLY';
    IF b.window = 'CONTRACT_TERM' AND b.account_id IS NOT NULL AND has_terms AND t.term_start IS NOT NULL AND t.term_end IS NOT NULL THEN
      w_from := substr(t.term_start, 1, 7);
      w_to := substr(t.term_end, 1, 7);
    ELSIF monthly THEN
      w_from := NULL;
      w_to := NULL;
    ELSE
      w_from := '0000-01';
      w_to := '9999-12';
    END IF;
    SELECT coalesce(sum(r.reserved_micro_cs), 0),
           coalesce(sum(r.settled_micro_cs) FILTER (WHERE
             (monthly AND r.period = CASE WHEN r.account_id = acc THEN v_period ELSE p->'accounts'->r.account_id::text->>'period' END)
             OR (NOT monthly AND r.period BETWEEN w_from AND w_to)), 0)
      INTO reserved, settled
      FROM usage_rollups r
      WHERE r.org_unit_id = b.org_unit_id AND (b.account_id IS NULL OR r.account_id = b.account_id);
    available := b.limit_micro_cs - reserved - settled;
    IF requested > available THEN
      available := greatest(available, 0);
      IF NOT has_best OR available < best_available THEN
        has_best := true;
        best := b;
        best_available := available;
        best_from := w_from;
        best_to := w_to;
      END IF;
    END IF;
  END LOOP;
  IF has_best THEN
    RETURN jsonb_build_object('outcome', 'budget', 'budget', gateway_json_row(to_jsonb(best)),
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
-- Forwarding's own bookkeeping once HeyGen accepted a job, in one call (src/jobs/follow.ts): lock the job; if its
-- status may take the acceptance (`p.next`: status → next status, from the gateway's lifecycle), record the upstream
-- items and the new status, due for its first status read at once when a webhook already named it.
-- Answers {outcome: 'submitted', job, items} or {outcome: 'not_awaiting', job} (the job as it is; null if it is gone).
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
  INSERT INTO job_items (job_id, upstream_id, kind, video_id, language)
    SELECT j.id, i.upstream_id, i.kind, i.video_id, i.language
    FROM jsonb_to_recordset(p->'items') AS i(upstream_id text, kind text, video_id text, language text)
    ON CONFLICT DO NOTHING;
  UPDATE jobs SET status = next_status::job_status, submitted_at = at, check_attempts = 0,
      next_check_at = at + CASE WHEN j.hinted_at IS NOT NULL THEN interval '0' ELSE ((p->>'poll_min_ms')::bigint * interval '1 millisecond') END,
      hinted_at = NULL, updated_at = at
    WHERE id = j.id
    RETURNING gateway_json_row(to_jsonb(jobs.*)) INTO updated;
  -- With the job's items (as its items are read: by creation), so that the answer needs no read-back.
  RETURN jsonb_build_object('outcome', 'submitted', 'job', updated,
    'items', (SELECT coalesce(jsonb_agg(gateway_json_row(to_jsonb(i)) ORDER BY i.created_at), '[]'::jsonb) FROM job_items i WHERE i.job_id = j.id));
END $$;
--> statement-breakpoint
-- Group commit: admissions of one account that arrived while another of its admissions was in flight, admitted in
-- one transaction, in arrival order, each exactly as gateway_admit would alone (each sees the ones before it). One
-- that fails (an error, not a refusal) is rolled back alone and answered {outcome: 'error'}: the gateway retries
-- it on its own.
CREATE OR REPLACE FUNCTION gateway_admit_batch(ps jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  p jsonb;
  answers jsonb := '[]'::jsonb;
  answer jsonb;
BEGIN
  FOR p IN SELECT e.value FROM jsonb_array_elements(ps) WITH ORDINALITY AS e(value, ord) ORDER BY e.ord LOOP
    BEGIN
      answer := gateway_admit(p);
    EXCEPTION WHEN OTHERS THEN
      answer := jsonb_build_object('outcome', 'error', 'sqlstate', SQLSTATE);
    END;
    answers := answers || jsonb_build_array(answer);
  END LOOP;
  RETURN answers;
END $$;

-- Custom migration [policies]: unit policies and rate limits, checked in the admission transaction
-- (docs/governance.md). gateway_admit calls gateway_check_governance(p) after the account lock and the idempotency
-- replay, before the concurrency count and the budgets, and gateway_take_rates(p, scopes) once the job is inserted:
-- a refusal (of any kind) writes nothing, and only admitted jobs count against a rate limit.
-- What the checks need comes in `p` from src/jobs/admission.ts: p.path, p.requested (the hold), p.now (the gateway's
-- clock), p.token_id (the calling service token, or null) and p.policy {kind, products, resolution, length_micro,
-- languages}.

-- The first rule, from the root down, that the job breaks; NULL when it breaks none. Rules are read without locks:
-- a policy applies to the admissions that start after it committed.
CREATE OR REPLACE FUNCTION gateway_check_policies(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_path uuid[] := ARRAY(SELECT jsonb_array_elements_text(p->'path')::uuid);
  q jsonb := p->'policy';
  r unit_policies%ROWTYPE;
  bad text;
  rule text;
  lim jsonb;
  actual jsonb;
  resolutions text[] := ARRAY['720p', '1080p', '4k'];
BEGIN
  FOR r IN SELECT x.* FROM unit_policies x JOIN unnest(v_path) WITH ORDINALITY AS u(id, ord) ON u.id = x.org_unit_id ORDER BY u.ord LOOP
    rule := NULL;
    IF r.allowed_kinds IS NOT NULL AND NOT (q->>'kind') = ANY(r.allowed_kinds::text[]) THEN
      rule := 'ALLOWED_KINDS'; lim := to_jsonb(r.allowed_kinds); actual := q->'kind';
    END IF;
    IF rule IS NULL AND r.allowed_products IS NOT NULL THEN
      SELECT x INTO bad FROM jsonb_array_elements_text(q->'products') x WHERE NOT x = ANY(r.allowed_products) LIMIT 1;
      IF FOUND THEN rule := 'ALLOWED_PRODUCTS'; lim := to_jsonb(r.allowed_products); actual := to_jsonb(bad); END IF;
    END IF;
    IF rule IS NULL AND r.max_resolution IS NOT NULL AND q->>'resolution' IS NOT NULL
       AND array_position(resolutions, q->>'resolution') > array_position(resolutions, r.max_resolution) THEN
      rule := 'MAX_RESOLUTION'; lim := to_jsonb(r.max_resolution); actual := q->'resolution';
    END IF;
    IF rule IS NULL AND r.max_length_seconds IS NOT NULL AND (q->>'length_micro')::bigint > r.max_length_seconds::bigint * 1000000 THEN
      rule := 'MAX_LENGTH_SECONDS'; lim := to_jsonb((r.max_length_seconds::bigint * 1000000)::text); actual := q->'length_micro';
    END IF;
    IF rule IS NULL AND r.max_cost_micro_cs IS NOT NULL AND (p->>'requested')::bigint > r.max_cost_micro_cs THEN
      rule := 'MAX_COST_CREDIT_SECONDS'; lim := to_jsonb(r.max_cost_micro_cs::text); actual := p->'requested';
    END IF;
    IF rule IS NULL AND r.allowed_languages IS NOT NULL THEN
      SELECT x INTO bad FROM jsonb_array_elements_text(q->'languages') x
        WHERE NOT lower(x) = ANY(ARRAY(SELECT lower(y) FROM unnest(r.allowed_languages) y)) LIMIT 1;
      IF FOUND THEN rule := 'ALLOWED_LANGUAGES'; lim := to_jsonb(r.allowed_languages); actual := to_jsonb(bad); END IF;
    END IF;
    IF rule IS NOT NULL THEN
      RETURN jsonb_build_object('outcome', 'policy', 'rule', rule, 'org_unit_id', r.org_unit_id, 'token_id', NULL, 'limit', lim, 'actual', actual,
        'unit', (SELECT jsonb_build_object('name', u.name, 'path', to_jsonb(u.path)) FROM org_units u WHERE u.id = r.org_unit_id));
    END IF;
  END LOOP;
  RETURN NULL;
END $$;
--> statement-breakpoint
-- The start of the bucket `at` falls in.
CREATE OR REPLACE FUNCTION gateway_rate_bucket(at timestamptz, seconds int) RETURNS timestamptz LANGUAGE sql IMMUTABLE AS $$
  SELECT to_timestamp(floor(extract(epoch FROM at) / seconds) * seconds)
$$;
--> statement-breakpoint
-- Policies, then rate limits. Locks the row of every limit that binds the job (the unit_policies rows on the path
-- that carry a rate limit, in id order, then the token's row: one order for every admission, after the account
-- row and before the budgets), and counts each limit's sliding window: 60 buckets of 1 s for jobs per minute,
-- 60 buckets of 60 s for credit-seconds per hour (bucket_start > the current bucket − the window). Answers a refusal
-- (`policy`, `rate_limited`; a token's limit names the token and its project) or {scopes: [...]}, what
-- gateway_take_rates adds once the job is admitted.
CREATE OR REPLACE FUNCTION gateway_check_governance(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_path uuid[] := ARRAY(SELECT jsonb_array_elements_text(p->'path')::uuid);
  v_now timestamptz := (p->>'now')::timestamptz;
  requested bigint := (p->>'requested')::bigint;
  v_token uuid := (p->>'token_id')::uuid;
  refusal jsonb;
  limits jsonb := '[]'::jsonb;
  scopes jsonb := '[]'::jsonb;
  u unit_policies%ROWTYPE;
  k service_token_rate_limits%ROWTYPE;
  s jsonb;
  bucket timestamptz;
  used bigint;
  need bigint;
  freed timestamptz;
BEGIN
  refusal := gateway_check_policies(p);
  IF refusal IS NOT NULL THEN RETURN refusal; END IF;

  FOR u IN SELECT * FROM unit_policies x WHERE x.org_unit_id = ANY(v_path) AND (x.jobs_per_minute IS NOT NULL OR x.credit_micro_cs_per_hour IS NOT NULL)
      ORDER BY x.org_unit_id FOR UPDATE LOOP
    IF u.jobs_per_minute IS NOT NULL THEN
      limits := limits || jsonb_build_object('ord', array_position(v_path, u.org_unit_id), 'scope', 'unit:' || u.org_unit_id || '/jobs', 'who', 'UNIT',
        'org_unit_id', u.org_unit_id, 'rule', 'JOBS_PER_MINUTE', 'limit', u.jobs_per_minute, 'bucket', 1);
    END IF;
    IF u.credit_micro_cs_per_hour IS NOT NULL THEN
      limits := limits || jsonb_build_object('ord', array_position(v_path, u.org_unit_id), 'scope', 'unit:' || u.org_unit_id || '/cs', 'who', 'UNIT',
        'org_unit_id', u.org_unit_id, 'rule', 'CREDIT_SECONDS_PER_HOUR', 'limit', u.credit_micro_cs_per_hour, 'bucket', 60);
    END IF;
  END LOOP;
  IF v_token IS NOT NULL THEN
    SELECT * INTO k FROM service_token_rate_limits WHERE token_id = v_token FOR UPDATE;
    IF FOUND AND k.jobs_per_minute IS NOT NULL THEN
      limits := limits || jsonb_build_object('ord', 1000000, 'scope', 'token:' || v_token || '/jobs', 'who', 'TOKEN', 'org_unit_id', p->'project_id',
        'rule', 'JOBS_PER_MINUTE', 'limit', k.jobs_per_minute, 'bucket', 1);
    END IF;
    IF FOUND AND k.credit_micro_cs_per_hour IS NOT NULL THEN
      limits := limits || jsonb_build_object('ord', 1000000, 'scope', 'token:' || v_token || '/cs', 'who', 'TOKEN', 'org_unit_id', p->'project_id',
        'rule', 'CREDIT_SECONDS_PER_HOUR', 'limit', k.credit_micro_cs_per_hour, 'bucket', 60);
    END IF;
  END IF;

  -- Checked root first (the token last), so that a refusal names the highest unit that binds.
  FOR s IN SELECT e FROM jsonb_array_elements(limits) e ORDER BY (e->>'ord')::int, e->>'scope' LOOP
    need := CASE WHEN s->>'rule' = 'JOBS_PER_MINUTE' THEN 1 ELSE requested END;
    IF need > (s->>'limit')::bigint THEN
      -- No window will ever hold this job: a rule, not a wait.
      RETURN jsonb_build_object('outcome', 'policy', 'rule', 'CREDIT_SECONDS_PER_HOUR', 'org_unit_id', s->'org_unit_id',
        'token_id', CASE WHEN s->>'who' = 'TOKEN' THEN v_token END, 'limit', to_jsonb(s->>'limit'), 'actual', to_jsonb(need::text),
        'unit', (SELECT jsonb_build_object('name', x.name, 'path', to_jsonb(x.path)) FROM org_units x WHERE x.id = (s->>'org_unit_id')::uuid));
    END IF;
    bucket := gateway_rate_bucket(v_now, (s->>'bucket')::int);
    SELECT coalesce(sum(b.amount), 0) INTO used FROM rate_buckets b
      WHERE b.scope = s->>'scope' AND b.bucket_start > bucket - (s->>'bucket')::int * interval '60 seconds';
    IF used + need > (s->>'limit')::bigint THEN
      -- The oldest bucket whose leaving the window makes room: its start + the window is the earliest admission.
      SELECT x.bucket_start INTO freed FROM (
          SELECT b.bucket_start, sum(b.amount) OVER (ORDER BY b.bucket_start) AS run FROM rate_buckets b
          WHERE b.scope = s->>'scope' AND b.bucket_start > bucket - (s->>'bucket')::int * interval '60 seconds') x
        WHERE used - x.run + need <= (s->>'limit')::bigint ORDER BY x.bucket_start LIMIT 1;
      RETURN jsonb_build_object('outcome', 'rate_limited', 'who', s->'who', 'rule', s->'rule', 'org_unit_id', s->'org_unit_id',
        'token_id', CASE WHEN s->>'who' = 'TOKEN' THEN v_token END, 'limit', s->>'limit', 'used', used::text,
        'retry_after_seconds', greatest(1, ceil(extract(epoch FROM freed + (s->>'bucket')::int * interval '60 seconds' - v_now)))::int,
        'unit', (SELECT jsonb_build_object('name', x.name, 'path', to_jsonb(x.path)) FROM org_units x WHERE x.id = (s->>'org_unit_id')::uuid));
    END IF;
    scopes := scopes || jsonb_build_object('scope', s->'scope', 'bucket', s->'bucket', 'amount', need::text);
  END LOOP;
  RETURN jsonb_build_object('scopes', scopes);
END $$;
--> statement-breakpoint
-- An admitted job counts in every window gateway_check_governance checked (whose rows it still holds locked);
-- buckets that have left a window are deleted on the way.
CREATE OR REPLACE FUNCTION gateway_take_rates(p jsonb, scopes jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  s jsonb;
  bucket timestamptz;
BEGIN
  FOR s IN SELECT e FROM jsonb_array_elements(coalesce(scopes, '[]'::jsonb)) e LOOP
    bucket := gateway_rate_bucket((p->>'now')::timestamptz, (s->>'bucket')::int);
    DELETE FROM rate_buckets WHERE scope = s->>'scope' AND bucket_start <= bucket - (s->>'bucket')::int * interval '60 seconds';
    INSERT INTO rate_buckets (scope, bucket_start, amount) VALUES (s->>'scope', bucket, (s->>'amount')::bigint)
      ON CONFLICT (scope, bucket_start) DO UPDATE SET amount = rate_buckets.amount + excluded.amount;
  END LOOP;
END $$;
--> statement-breakpoint
-- The whole admission of one job in one call (src/jobs/admission.ts builds `p` and reads the answer): lock the
-- account, replay an idempotency key, the concurrency count, every HARD budget on the path (locked in id order)
-- over its window, the account pool, then the job, its HOLD (ledger entry and rollups, root first) and the audit
-- event. Periods come from the gateway (its time-zone rules), checked against the accounts' time zones here.
-- Answers one jsonb object whose `outcome` is admitted | replayed | conflict | concurrency | budget | pool | stale
-- | policy | rate_limited. [policies]
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

-- Custom migration [tags]. Tags and people: usage per tag set and per person, moved in the same transaction as the
-- ledger by a trigger on ledger_entries (whichever path writes the entry: gateway_admit's HOLD, settlement's RELEASE
-- and DEBIT), and the HARD budgets on a tag value or a person (group_budgets), checked by gateway_admit through
-- gateway_check_group_budgets, over the same windows as unit budgets (gateway_budget_bounds) restricted to those
-- counted in periods. A job's person is its end user (`user:<end_user>`, named by an app) or the subject
-- that submitted it (jobs.created_by). Entries without a job (adjustments) belong to no tag set and no person: reports
-- show them in the explicit "untagged" / "no person" line (the unit's usage minus the groups).
CREATE OR REPLACE FUNCTION gateway_ledger_groups() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_path uuid[];
  v_unit uuid;
  v_tags jsonb;
  v_person text;
  d_reserved bigint := CASE NEW.entry_type WHEN 'HOLD' THEN NEW.amount_micro_cs WHEN 'RELEASE' THEN -NEW.amount_micro_cs ELSE 0 END;
  d_settled bigint := CASE WHEN NEW.entry_type IN ('DEBIT', 'ADJUSTMENT') THEN NEW.amount_micro_cs ELSE 0 END;
BEGIN
  IF NEW.job_id IS NULL THEN RETURN NULL; END IF;
  SELECT j.tags, coalesce('user:' || j.end_user, j.created_by) INTO v_tags, v_person FROM jobs j WHERE j.id = NEW.job_id;
  SELECT path INTO v_path FROM org_units WHERE id = NEW.org_unit_id;
  -- Root first, as every writer of rollups. A RELEASE updates the rows its HOLD created: an insert of its negative
  -- amount would fail the rows' non-negative check before ON CONFLICT could turn it into an update.
  IF d_reserved < 0 THEN
    FOREACH v_unit IN ARRAY v_path LOOP
      IF v_tags <> '{}'::jsonb THEN
        UPDATE usage_tag_rollups SET reserved_micro_cs = reserved_micro_cs + d_reserved
          WHERE org_unit_id = v_unit AND account_id = NEW.account_id AND period = NEW.period AND tags = v_tags;
      END IF;
      UPDATE usage_person_rollups SET reserved_micro_cs = reserved_micro_cs + d_reserved
        WHERE org_unit_id = v_unit AND account_id = NEW.account_id AND period = NEW.period AND person = v_person;
    END LOOP;
    RETURN NULL;
  END IF;
  IF v_tags <> '{}'::jsonb THEN
    INSERT INTO usage_tag_rollups (org_unit_id, account_id, period, tags, reserved_micro_cs, settled_micro_cs)
      SELECT u.id, NEW.account_id, NEW.period, v_tags, d_reserved, d_settled
      FROM unnest(v_path) WITH ORDINALITY AS u(id, ord) ORDER BY u.ord
      ON CONFLICT (org_unit_id, account_id, period, tags) DO UPDATE SET
        reserved_micro_cs = usage_tag_rollups.reserved_micro_cs + excluded.reserved_micro_cs,
        settled_micro_cs = usage_tag_rollups.settled_micro_cs + excluded.settled_micro_cs;
  END IF;
  INSERT INTO usage_person_rollups (org_unit_id, account_id, period, person, reserved_micro_cs, settled_micro_cs)
    SELECT u.id, NEW.account_id, NEW.period, v_person, d_reserved, d_settled
    FROM unnest(v_path) WITH ORDINALITY AS u(id, ord) ORDER BY u.ord
    ON CONFLICT (org_unit_id, account_id, period, person) DO UPDATE SET
      reserved_micro_cs = usage_person_rollups.reserved_micro_cs + excluded.reserved_micro_cs,
      settled_micro_cs = usage_person_rollups.settled_micro_cs + excluded.settled_micro_cs;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER ledger_entries_groups AFTER INSERT ON ledger_entries
  FOR EACH ROW EXECUTE FUNCTION gateway_ledger_groups();
--> statement-breakpoint
-- Backfill: the person usage of the existing ledger (no job had tags before this migration).
INSERT INTO usage_person_rollups (org_unit_id, account_id, period, person, reserved_micro_cs, settled_micro_cs)
SELECT u.id, e.account_id, e.period, coalesce('user:' || j.end_user, j.created_by),
       sum(CASE e.entry_type WHEN 'HOLD' THEN e.amount_micro_cs WHEN 'RELEASE' THEN -e.amount_micro_cs ELSE 0 END),
       sum(CASE WHEN e.entry_type IN ('DEBIT', 'ADJUSTMENT') THEN e.amount_micro_cs ELSE 0 END)
FROM ledger_entries e
JOIN jobs j ON j.id = e.job_id
JOIN org_units o ON o.id = e.org_unit_id
CROSS JOIN LATERAL unnest(o.path) AS u(id)
GROUP BY u.id, e.account_id, e.period, coalesce('user:' || j.end_user, j.created_by)
ON CONFLICT (org_unit_id, account_id, period, person) DO UPDATE SET
  reserved_micro_cs = usage_person_rollups.reserved_micro_cs + excluded.reserved_micro_cs,
  settled_micro_cs = usage_person_rollups.settled_micro_cs + excluded.settled_micro_cs;
--> statement-breakpoint
-- [tags] A group budget as a budgets row (id, unit, account, window, limit): its window is computed by
-- gateway_budget_bounds, like every budget's. Its windows are those counted in periods (group_budgets_period_window):
-- the tag and person rollups have no days.
CREATE OR REPLACE FUNCTION gateway_group_budget_as_budget(g group_budgets) RETURNS budgets LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  b budgets%ROWTYPE;
BEGIN
  b.id := g.id;
  b.org_unit_id := g.org_unit_id;
  b.account_id := g.account_id;
  b.window := g.window;
  b.limit_micro_cs := g.limit_micro_cs;
  RETURN b;
END $$;
--> statement-breakpoint
-- [tags] A group budget's usage, as gateway_budget_usage counts a unit budget's (no rollover): `reserved` every open
-- hold of the group within the unit (whatever its period), `settled` what the group settled in each account's window
-- (`cur`: every account's {period, day}, as p.accounts), from the tag rollups (the sets that carry the tag value) or
-- the person rollups.
CREATE OR REPLACE FUNCTION gateway_group_budget_usage(g group_budgets, cur jsonb, OUT reserved bigint, OUT settled bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  b budgets%ROWTYPE := gateway_group_budget_as_budget(g);
BEGIN
  IF g.tag_key IS NOT NULL THEN
    SELECT coalesce(sum(r.reserved_micro_cs), 0) INTO reserved FROM usage_tag_rollups r
      WHERE r.org_unit_id = g.org_unit_id AND (g.account_id IS NULL OR r.account_id = g.account_id)
        AND r.tags @> jsonb_build_object(g.tag_key, g.tag_value);
    SELECT coalesce(sum(r.settled_micro_cs), 0) INTO settled
      FROM jsonb_each(cur) c
      CROSS JOIN LATERAL gateway_budget_bounds(b, c.value->>'period', NULL) w
      JOIN usage_tag_rollups r ON r.org_unit_id = g.org_unit_id AND r.account_id = c.key::uuid
        AND r.period BETWEEN w.w_from AND w.w_to AND r.tags @> jsonb_build_object(g.tag_key, g.tag_value)
      WHERE g.account_id IS NULL OR c.key::uuid = g.account_id;
  ELSE
    SELECT coalesce(sum(r.reserved_micro_cs), 0) INTO reserved FROM usage_person_rollups r
      WHERE r.org_unit_id = g.org_unit_id AND (g.account_id IS NULL OR r.account_id = g.account_id) AND r.person = g.person;
    SELECT coalesce(sum(r.settled_micro_cs), 0) INTO settled
      FROM jsonb_each(cur) c
      CROSS JOIN LATERAL gateway_budget_bounds(b, c.value->>'period', NULL) w
      JOIN usage_person_rollups r ON r.org_unit_id = g.org_unit_id AND r.account_id = c.key::uuid
        AND r.period BETWEEN w.w_from AND w.w_to AND r.person = g.person
      WHERE g.account_id IS NULL OR c.key::uuid = g.account_id;
  END IF;
END $$;
--> statement-breakpoint
-- Called by gateway_admit (p: its argument) after the unit budgets and the pool, before anything is written:
-- answers NULL (go on) or a refusal. (1) Every tag key of the job must be in its organization's allowlist
-- ({outcome: 'tag_key', key}). (2) Every group budget on the project's path (its unit or above) for this account (or
-- all accounts) that covers the job (one of its tag values, or its person) is locked in id order, after the unit
-- budgets (lock order: account → rate limits → budgets → group budgets → rollups), and checked as unit budgets are:
-- settled in the window + every open hold + this hold ≤ limit (gateway_group_budget_usage over p.accounts). The
-- tightest refuses ({outcome: 'group_budget'}, with this account's window).
CREATE OR REPLACE FUNCTION gateway_check_group_budgets(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  acc uuid := (p->>'account_id')::uuid;
  v_path uuid[] := ARRAY(SELECT jsonb_array_elements_text(p->'path')::uuid);
  v_period text := p->>'period';
  requested bigint := (p->>'requested')::bigint;
  v_tags jsonb := coalesce(p->'job'->'tags', '{}'::jsonb);
  v_person text := coalesce('user:' || (p->'job'->>'end_user'), p->'job'->>'created_by');
  unknown_key text;
  b group_budgets%ROWTYPE;
  w record;
  gu record;
  available bigint;
  best group_budgets%ROWTYPE;
  best_available bigint;
  best_from text;
  best_to text;
  has_best boolean := false;
  a accounts%ROWTYPE;
  terms account_terms%ROWTYPE;
  has_terms boolean;
BEGIN
  SELECT k INTO unknown_key FROM jsonb_object_keys(v_tags) AS k
    WHERE NOT EXISTS (SELECT 1 FROM tag_keys x WHERE x.organization_id = v_path[1] AND x.key = k) ORDER BY k LIMIT 1;
  IF unknown_key IS NOT NULL THEN RETURN jsonb_build_object('outcome', 'tag_key', 'key', unknown_key); END IF;

  -- Budgets over all accounts count each account's own window: the gateway must have sent every account.
  IF EXISTS (SELECT 1 FROM group_budgets x
      WHERE x.org_unit_id = ANY(v_path) AND x.account_id IS NULL
        AND ((x.tag_key IS NOT NULL AND v_tags->>x.tag_key = x.tag_value) OR x.person = v_person))
     AND EXISTS (SELECT 1 FROM accounts x WHERE (p->'accounts'->x.id::text->>'timezone') IS DISTINCT FROM x.timezone) THEN
    RETURN jsonb_build_object('outcome', 'stale');
  END IF;

  FOR b IN SELECT * FROM group_budgets x
      WHERE x.org_unit_id = ANY(v_path) AND (x.account_id IS NULL OR x.account_id = acc)
        AND ((x.tag_key IS NOT NULL AND v_tags->>x.tag_key = x.tag_value) OR x.person = v_person)
      ORDER BY x.id FOR UPDATE LOOP
    SELECT * INTO w FROM gateway_budget_bounds(gateway_group_budget_as_budget(b), v_period, NULL);
    SELECT * INTO gu FROM gateway_group_budget_usage(b, p->'accounts');
    available := b.limit_micro_cs - gu.reserved - gu.settled;
    IF requested > available THEN
      available := greatest(available, 0);
      IF NOT has_best OR available < best_available THEN
        has_best := true;
        best := b;
        best_available := available;
        best_from := w.w_from;
        best_to := w.w_to;
      END IF;
    END IF;
  END LOOP;
  IF has_best THEN
    SELECT * INTO a FROM accounts WHERE id = acc;
    SELECT * INTO terms FROM account_terms WHERE account_id = acc AND effective_from <= v_period ORDER BY effective_from DESC LIMIT 1;
    has_terms := FOUND;
    RETURN jsonb_build_object('outcome', 'group_budget', 'budget', gateway_json_row(to_jsonb(best)),
      'available', best_available::text, 'from', best_from, 'to', best_to,
      'account', gateway_json_row(to_jsonb(a) - 'api_key_ciphertext' - 'webhook_secret_ciphertext'),
      'terms', CASE WHEN has_terms THEN gateway_json_row(to_jsonb(terms)) END,
      'unit', (SELECT jsonb_build_object('name', u.name, 'path', to_jsonb(u.path)) FROM org_units u WHERE u.id = best.org_unit_id));
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
-- [tags] gateway_admit as in migration 0023 (with its [policies], [windows] and [requests] lines), with the group budgets checked
-- last before the job is written (lines marked [tags]).
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

  -- [tags] The organization's tag keys, and the budgets on a tag value or a person (gateway_check_group_budgets).
  group_refusal := gateway_check_group_budgets(p); -- [tags]
  IF group_refusal IS NOT NULL THEN RETURN group_refusal; END IF; -- [tags]

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
-- [tags] gateway_note_refusal as in migration 0021, noting a group budget's refusal too (reason TAG or PERSON, with
-- the tag value or the person; budgetId the group budget's), once per budget and hour like a unit budget's.
CREATE OR REPLACE FUNCTION gateway_note_refusal(p jsonb, r jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  v_hour text;
  v_budget uuid;
  v_unit uuid;
  v_limit text;
  v_reason text; -- [tags]
  v_group jsonb := '{}'::jsonb; -- [tags]
BEGIN
  IF r->>'outcome' NOT IN ('budget', 'pool', 'group_budget') THEN RETURN; END IF; -- [tags]
  v_hour := to_char((p->'job'->>'created_at')::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24');
  IF r->>'outcome' IN ('budget', 'group_budget') THEN -- [tags]
    v_budget := (r->'budget'->>'id')::uuid;
    v_unit := (r->'budget'->>'org_unit_id')::uuid;
    v_limit := coalesce(r->>'limit', r->'budget'->>'limit_micro_cs'); -- [windows] the effective limit (rollover)
    v_reason := 'BUDGET'; -- [tags]
    IF r->>'outcome' = 'group_budget' THEN -- [tags] a tag value's or a person's budget: named in the event
      v_reason := CASE WHEN r->'budget'->>'person' IS NOT NULL THEN 'PERSON' ELSE 'TAG' END; -- [tags]
      v_group := jsonb_strip_nulls(jsonb_build_object('tagKey', r->'budget'->>'tag_key', 'tagValue', r->'budget'->>'tag_value', 'person', r->'budget'->>'person')); -- [tags]
    END IF; -- [tags]
  ELSE
    v_reason := 'POOL'; -- [tags]
    v_budget := (r->>'budget_id')::uuid;
    v_unit := (r->>'org_unit_id')::uuid;
    v_limit := r->>'limit';
  END IF;
  PERFORM gateway_money_event('budget.refused',
    format('budget.refused:%s:%s', coalesce(v_budget::text, 'pool:' || (p->>'account_id')), v_hour), v_unit,
    jsonb_build_object('budgetId', v_budget, 'orgUnitId', v_unit, 'accountId', p->>'account_id',
      'reason', v_reason, 'hour', v_hour || ':00:00Z', -- [tags]
      'firstRequestedMicroCs', p->>'requested', 'availableMicroCs', r->>'available', 'limitMicroCs', v_limit) || v_group); -- [tags]
END $$;

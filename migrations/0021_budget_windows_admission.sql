-- Custom migration. Budget windows DAILY, WEEKLY, QUARTERLY and CUSTOM, and the rollover of MONTHLY budgets
-- (docs/budgets.md, Windows). A window is computed in exactly one place, gateway_budget_bounds, from an account's
-- current period and day as the gateway computes them (its time-zone rules, Node's tz data: PostgreSQL's may
-- disagree near some boundaries); everything after that is calendar arithmetic on dates, which has no time zone.
-- The usage of a budget over its window is computed in one place too, gateway_budget_usage, used by the admission
-- and by the threshold events (the gateway's reads run the same function).
--
-- The previous period of a period (YYYY-MM).
CREATE OR REPLACE FUNCTION gateway_prev_period(p text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT to_char((p || '-01')::date - 1, 'YYYY-MM')
$$;
--> statement-breakpoint
-- The window of budget `b` for an account whose current period is `period` and current day `today` (both in the
-- account's time zone, from the gateway), inclusive at both ends: days (YYYY-MM-DD, counted over usage_daily) for
-- DAILY (today), WEEKLY (the ISO week, Monday to Sunday) and CUSTOM (window_from to the day before window_to);
-- periods (YYYY-MM, counted over usage_rollups) for MONTHLY (the period), QUARTERLY (the calendar quarter),
-- CONTRACT_TERM (the budget's account's term in force, else the lifetime) and LIFETIME.
-- The window is compared as text: a new enum value may not be used as a constant in the transaction that adds it.
CREATE OR REPLACE FUNCTION gateway_budget_bounds(b budgets, period text, today date, OUT w_from text, OUT w_to text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  t account_terms%ROWTYPE;
  q int;
BEGIN
  w_from := '0000-01';
  w_to := '9999-12';
  CASE b.window::text
    WHEN 'DAILY' THEN
      w_from := to_char(today, 'YYYY-MM-DD');
      w_to := w_from;
    WHEN 'WEEKLY' THEN
      w_from := to_char(today - (extract(isodow FROM today)::int - 1), 'YYYY-MM-DD');
      w_to := to_char(today - (extract(isodow FROM today)::int - 1) + 6, 'YYYY-MM-DD');
    WHEN 'CUSTOM' THEN
      w_from := to_char(b.window_from, 'YYYY-MM-DD');
      w_to := to_char(b.window_to - 1, 'YYYY-MM-DD');
    WHEN 'MONTHLY' THEN
      w_from := period;
      w_to := period;
    WHEN 'QUARTERLY' THEN
      q := (substr(period, 6, 2)::int - 1) / 3 * 3 + 1;
      w_from := substr(period, 1, 5) || lpad(q::text, 2, '0');
      w_to := substr(period, 1, 5) || lpad((q + 2)::text, 2, '0');
    WHEN 'CONTRACT_TERM' THEN
      IF b.account_id IS NOT NULL THEN
        SELECT * INTO t FROM account_terms WHERE account_id = b.account_id AND effective_from <= period ORDER BY effective_from DESC LIMIT 1;
        IF FOUND AND t.term_start IS NOT NULL AND t.term_end IS NOT NULL THEN
          w_from := substr(t.term_start, 1, 7);
          w_to := substr(t.term_end, 1, 7);
        END IF;
      END IF;
    ELSE
      NULL;
  END CASE;
END $$;
--> statement-breakpoint
-- Whether a budget's window is counted in days (usage_daily) rather than periods (usage_rollups).
CREATE OR REPLACE FUNCTION gateway_budget_by_day(b budgets) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
  SELECT b.window::text IN ('DAILY', 'WEEKLY', 'CUSTOM')
$$;
--> statement-breakpoint
-- A budget's usage: `reserved` every open hold (whatever its day or period: a hold from an earlier window settles
-- into the current one), `settled` what settled in each account's window, and `carried` the rollover a MONTHLY
-- budget adds to its limit. `cur` maps every account to its current {period, day} (the gateway's); an account
-- missing from it counts no settled usage, so callers pass every account (the admission checks it has them all).
-- Day windows read usage_daily by its key (unit, account, day): O(days × products) per account.
-- Rollover: limit + min(cap, unused), unused = limit − what settled in the account's previous period (each
-- account's own for a budget over all accounts), from the month after the cap was set (rollover_from) on; the
-- limit is today's limit, never last month's effective one, so a carry never compounds.
CREATE OR REPLACE FUNCTION gateway_budget_usage(b budgets, cur jsonb, OUT reserved bigint, OUT settled bigint, OUT carried bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  last_settled bigint;
  may_carry boolean;
BEGIN
  carried := 0;
  SELECT coalesce(sum(r.reserved_micro_cs), 0) INTO reserved FROM usage_rollups r
    WHERE r.org_unit_id = b.org_unit_id AND (b.account_id IS NULL OR r.account_id = b.account_id);
  IF gateway_budget_by_day(b) THEN
    SELECT coalesce(sum(d.settled_micro_cs), 0) INTO settled
      FROM jsonb_each(cur) c
      CROSS JOIN LATERAL gateway_budget_bounds(b, c.value->>'period', (c.value->>'day')::date) w
      JOIN usage_daily d ON d.org_unit_id = b.org_unit_id AND d.account_id = c.key::uuid
        AND d.day BETWEEN w.w_from::date AND w.w_to::date
      WHERE b.account_id IS NULL OR c.key::uuid = b.account_id;
  ELSE
    SELECT coalesce(sum(r.settled_micro_cs), 0) INTO settled
      FROM jsonb_each(cur) c
      CROSS JOIN LATERAL gateway_budget_bounds(b, c.value->>'period', NULL) w
      JOIN usage_rollups r ON r.org_unit_id = b.org_unit_id AND r.account_id = c.key::uuid
        AND r.period BETWEEN w.w_from AND w.w_to
      WHERE b.account_id IS NULL OR c.key::uuid = b.account_id;
  END IF;
  IF b.window::text = 'MONTHLY' AND b.rollover_cap_micro_cs IS NOT NULL THEN
    SELECT coalesce(sum(r.settled_micro_cs), 0), bool_or(gateway_prev_period(c.value->>'period') >= b.rollover_from)
      INTO last_settled, may_carry
      FROM jsonb_each(cur) c
      LEFT JOIN usage_rollups r ON r.org_unit_id = b.org_unit_id AND r.account_id = c.key::uuid
        AND r.period = gateway_prev_period(c.value->>'period') AND r.period >= b.rollover_from
      WHERE b.account_id IS NULL OR c.key::uuid = b.account_id;
    IF may_carry THEN
      carried := least(b.rollover_cap_micro_cs, greatest(b.limit_micro_cs - last_settled, 0));
    END IF;
  END IF;
END $$;
--> statement-breakpoint
-- [windows] The body of migration 0019 (with its [policies] lines) with the HARD-budget loop on gateway_budget_bounds/gateway_budget_usage:
-- `p.day` is the admitting account's current day and `p.accounts` every account's {timezone, period, day}.
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
    available := b.limit_micro_cs + bu.carried - bu.reserved - bu.settled;
    -- [windows] A CUSTOM budget admits nothing outside its window.
    IF b.window::text = 'CUSTOM' AND NOT (v_day BETWEEN w_from::date AND w_to::date) THEN
      available := 0;
    END IF;
    IF requested > available THEN
      available := greatest(available, 0);
      IF NOT has_best OR available < best_available THEN
        has_best := true;
        best := b;
        best_limit := b.limit_micro_cs + bu.carried; -- [windows]
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
-- Threshold events over the new windows (0017's functions, on gateway_budget_bounds/gateway_budget_usage): the
-- window's state rows are keyed by its bounds, so each new window (day, week, quarter) is armed afresh.
DROP TRIGGER usage_rollups_money_events ON usage_rollups;
--> statement-breakpoint
DROP TRIGGER budgets_money_events ON budgets;
--> statement-breakpoint
DROP FUNCTION gateway_rollup_money_events();
--> statement-breakpoint
DROP FUNCTION gateway_budget_money_events();
--> statement-breakpoint
DROP FUNCTION gateway_budget_alerts(budgets, text, text, boolean);
--> statement-breakpoint
DROP FUNCTION gateway_budget_window(budgets, uuid, text);
--> statement-breakpoint
-- Every account (or the budget's own) at one period and day: what a trigger knows of "now" is the row it saw.
CREATE OR REPLACE FUNCTION gateway_budget_now(b budgets, period text, today date) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT coalesce(jsonb_object_agg(a.id, jsonb_build_object('period', period, 'day', to_char(today, 'YYYY-MM-DD'))), '{}'::jsonb)
  FROM accounts a WHERE b.account_id IS NULL OR a.id = b.account_id
$$;
--> statement-breakpoint
-- One budget's thresholds over one window (its bounds w_from..w_to, from gateway_budget_bounds at `cur`): usage and
-- the limit (rollover included) as the admission counts them. A threshold flips to crossed once (its state row
-- arbitrates between concurrent transactions: the second waits for the first and then finds it crossed);
-- `may_resolve` (a budget change) flips crossed thresholds that usage is now under back, with a `resolved` event.
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
  lim := b.limit_micro_cs + bu.carried;
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
--> statement-breakpoint
-- After a rollup grew (a hold, or a settlement above its hold): the budgets of the unit counted in periods (those
-- counted in days are judged by usage_daily's trigger below), and at the root the account's included pool
-- (`pool.crossed` once per account and period, when settled usage passes it).
CREATE OR REPLACE FUNCTION gateway_rollup_money_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  b budgets%ROWTYPE;
  w record;
  t account_terms%ROWTYPE;
  is_root boolean;
  billing text;
BEGIN
  IF TG_OP = 'INSERT' OR NEW.reserved_micro_cs + NEW.settled_micro_cs > OLD.reserved_micro_cs + OLD.settled_micro_cs THEN
    FOR b IN SELECT * FROM budgets x WHERE x.org_unit_id = NEW.org_unit_id AND (x.account_id IS NULL OR x.account_id = NEW.account_id)
               AND NOT gateway_budget_by_day(x) ORDER BY x.id LOOP
      SELECT * INTO w FROM gateway_budget_bounds(b, NEW.period, NULL);
      PERFORM gateway_budget_alerts(b, gateway_budget_now(b, NEW.period, NULL), w.w_from, w.w_to, false);
    END LOOP;
  END IF;
  IF TG_OP = 'INSERT' OR NEW.settled_micro_cs > OLD.settled_micro_cs THEN
    SELECT u.parent_id IS NULL INTO is_root FROM org_units u WHERE u.id = NEW.org_unit_id;
    IF is_root THEN
      SELECT a.billing_model::text INTO billing FROM accounts a WHERE a.id = NEW.account_id;
      SELECT * INTO t FROM account_terms WHERE account_id = NEW.account_id AND effective_from <= NEW.period ORDER BY effective_from DESC LIMIT 1;
      IF billing = 'USAGE_BASED' AND FOUND AND t.included_micro_cs IS NOT NULL AND NEW.settled_micro_cs > t.included_micro_cs
         AND (TG_OP = 'INSERT' OR OLD.settled_micro_cs <= t.included_micro_cs) THEN
        PERFORM gateway_money_event('pool.crossed', format('pool.crossed:%s:%s', NEW.account_id, NEW.period), NEW.org_unit_id,
          jsonb_build_object('accountId', NEW.account_id, 'period', NEW.period, 'includedMicroCs', t.included_micro_cs::text,
            'settledMicroCs', NEW.settled_micro_cs::text));
      END IF;
    END IF;
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER usage_rollups_money_events AFTER INSERT OR UPDATE ON usage_rollups
  FOR EACH ROW EXECUTE FUNCTION gateway_rollup_money_events();
--> statement-breakpoint
-- After a day's usage grew (a hold on its day, a settlement on its own): the unit's budgets counted in days, over
-- the window of that day (a CUSTOM budget only when the day is in its window). Judged at commit (a deferred
-- trigger): the ledger's trigger moves usage_daily before the writer moves usage_rollups, where the open holds
-- are counted, so only then do both agree.
CREATE OR REPLACE FUNCTION gateway_daily_money_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  b budgets%ROWTYPE;
  w record;
  v_period text := to_char(NEW.day, 'YYYY-MM');
BEGIN
  IF TG_OP = 'INSERT' OR NEW.reserved_micro_cs + NEW.settled_micro_cs > OLD.reserved_micro_cs + OLD.settled_micro_cs THEN
    FOR b IN SELECT * FROM budgets x WHERE x.org_unit_id = NEW.org_unit_id AND (x.account_id IS NULL OR x.account_id = NEW.account_id)
               AND gateway_budget_by_day(x) ORDER BY x.id LOOP
      SELECT * INTO w FROM gateway_budget_bounds(b, v_period, NEW.day);
      IF NEW.day BETWEEN w.w_from::date AND w.w_to::date THEN
        PERFORM gateway_budget_alerts(b, gateway_budget_now(b, v_period, NEW.day), w.w_from, w.w_to, false);
      END IF;
    END LOOP;
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE CONSTRAINT TRIGGER usage_daily_money_events AFTER INSERT OR UPDATE ON usage_daily
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION gateway_daily_money_events();
--> statement-breakpoint
-- A budget's limit, thresholds, dates or rollover changed: its latest window is judged again (a cut may cross, a
-- raise resolves); a CUSTOM budget's window is the one of its (new) dates.
CREATE OR REPLACE FUNCTION gateway_budget_money_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  s record;
  v_day date;
  v_period text;
BEGIN
  SELECT window_from, window_to INTO s FROM budget_alert_states WHERE budget_id = NEW.id ORDER BY window_to DESC, window_from DESC LIMIT 1;
  IF FOUND THEN
    IF NEW.window::text = 'CUSTOM' THEN
      SELECT * INTO s FROM gateway_budget_bounds(NEW, NULL, NULL) AS x(window_from, window_to);
    END IF;
    -- The window's first day or period stands for "now" in it (for LIFETIME, the period 0000-01 has no day).
    IF length(s.window_from) = 10 THEN
      v_day := s.window_from::date;
      v_period := to_char(v_day, 'YYYY-MM');
    ELSE
      v_period := s.window_from;
    END IF;
    PERFORM gateway_budget_alerts(NEW, gateway_budget_now(NEW, v_period, v_day), s.window_from, s.window_to, true);
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER budgets_money_events AFTER UPDATE OF limit_micro_cs, alert_thresholds, enforcement, window_from, window_to, rollover_cap_micro_cs ON budgets
  FOR EACH ROW EXECUTE FUNCTION gateway_budget_money_events();
--> statement-breakpoint
-- `budget.refused` names the limit the refusal was measured against (with rollover, more than the standing limit).
CREATE OR REPLACE FUNCTION gateway_note_refusal(p jsonb, r jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  v_hour text;
  v_budget uuid;
  v_unit uuid;
  v_limit text;
BEGIN
  IF r->>'outcome' NOT IN ('budget', 'pool') THEN RETURN; END IF;
  v_hour := to_char((p->'job'->>'created_at')::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24');
  IF r->>'outcome' = 'budget' THEN
    v_budget := (r->'budget'->>'id')::uuid;
    v_unit := (r->'budget'->>'org_unit_id')::uuid;
    v_limit := coalesce(r->>'limit', r->'budget'->>'limit_micro_cs'); -- [windows] the effective limit (rollover)
  ELSE
    v_budget := (r->>'budget_id')::uuid;
    v_unit := (r->>'org_unit_id')::uuid;
    v_limit := r->>'limit';
  END IF;
  PERFORM gateway_money_event('budget.refused',
    format('budget.refused:%s:%s', coalesce(v_budget::text, 'pool:' || (p->>'account_id')), v_hour), v_unit,
    jsonb_build_object('budgetId', v_budget, 'orgUnitId', v_unit, 'accountId', p->>'account_id',
      'reason', CASE WHEN r->>'outcome' = 'budget' THEN 'BUDGET' ELSE 'POOL' END, 'hour', v_hour || ':00:00Z',
      'firstRequestedMicroCs', p->>'requested', 'availableMicroCs', r->>'available', 'limitMicroCs', v_limit));
END $$;

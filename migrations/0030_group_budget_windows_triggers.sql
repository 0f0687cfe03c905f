-- Custom migration [groupwin]. Budgets on a tag value or a person over every window of a unit budget (DAILY, WEEKLY,
-- QUARTERLY, CUSTOM, MONTHLY, CONTRACT_TERM, LIFETIME; docs/governance.md), and their threshold events.
-- - Daily group rollups (usage_tag_daily, usage_person_daily) beside the period ones, moved by the same ledger trigger
--   (gateway_ledger_groups) in the same transaction, keyed by the ledger entry's day (the account-local day the gateway
--   recorded: a hold's day, which its release takes back from; a settlement's own day), as usage_daily is for units.
-- - A group budget's window is the unit budgets' (gateway_budget_bounds through gateway_group_budget_as_budget, with
--   the CUSTOM dates); its usage sums the daily group rollups for the day windows (gateway_budget_by_day) and the period
--   ones for the others (gateway_group_budget_usage); a CUSTOM group budget admits nothing outside its window.
-- - Threshold events: one function flips the state rows and writes the events for unit and group budgets alike
--   (gateway_threshold_alerts, over budget_alert_states, whose budget_id may now be a group budget's), called by
--   gateway_budget_alerts (unit budgets, as before) and gateway_group_budget_alerts; triggers on the four group rollups
--   judge the group budgets of the row's unit and group, and one on group_budgets re-judges a changed budget.
-- gateway_admit is unchanged: it calls gateway_check_group_budgets, replaced here.
--
-- Writers of the ledger wait for this migration (and it for them), so that the backfill below counts every entry
-- exactly once: each is either in the backfill or moved by the new trigger.
LOCK TABLE ledger_entries IN SHARE MODE;
--> statement-breakpoint
-- [groupwin] gateway_ledger_groups as in migration 0025, with the daily rollups moved too (lines marked [groupwin]). Every
-- path writes in one order: tag periods, person periods, tag days, person days, each root first.
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
    IF v_tags <> '{}'::jsonb THEN -- [groupwin] one table after the other, in the insert path's order
      FOREACH v_unit IN ARRAY v_path LOOP
        UPDATE usage_tag_rollups SET reserved_micro_cs = reserved_micro_cs + d_reserved
          WHERE org_unit_id = v_unit AND account_id = NEW.account_id AND period = NEW.period AND tags = v_tags;
      END LOOP; -- [groupwin]
    END IF;
    FOREACH v_unit IN ARRAY v_path LOOP -- [groupwin]
      UPDATE usage_person_rollups SET reserved_micro_cs = reserved_micro_cs + d_reserved
        WHERE org_unit_id = v_unit AND account_id = NEW.account_id AND period = NEW.period AND person = v_person;
    END LOOP;
    IF v_tags <> '{}'::jsonb THEN -- [groupwin]
      FOREACH v_unit IN ARRAY v_path LOOP -- [groupwin]
        UPDATE usage_tag_daily SET reserved_micro_cs = reserved_micro_cs + d_reserved -- [groupwin]
          WHERE org_unit_id = v_unit AND account_id = NEW.account_id AND day = NEW.day AND tags = v_tags; -- [groupwin]
      END LOOP; -- [groupwin]
    END IF; -- [groupwin]
    FOREACH v_unit IN ARRAY v_path LOOP -- [groupwin]
      UPDATE usage_person_daily SET reserved_micro_cs = reserved_micro_cs + d_reserved -- [groupwin]
        WHERE org_unit_id = v_unit AND account_id = NEW.account_id AND day = NEW.day AND person = v_person; -- [groupwin]
    END LOOP; -- [groupwin]
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
  -- [groupwin] The same amounts on the entry's day (after the period rows, where the open holds are counted: the
  -- threshold trigger of a day row then sees both agree).
  IF v_tags <> '{}'::jsonb THEN -- [groupwin]
    INSERT INTO usage_tag_daily (org_unit_id, account_id, day, tags, reserved_micro_cs, settled_micro_cs) -- [groupwin]
      SELECT u.id, NEW.account_id, NEW.day, v_tags, d_reserved, d_settled -- [groupwin]
      FROM unnest(v_path) WITH ORDINALITY AS u(id, ord) ORDER BY u.ord -- [groupwin]
      ON CONFLICT (org_unit_id, account_id, day, tags) DO UPDATE SET -- [groupwin]
        reserved_micro_cs = usage_tag_daily.reserved_micro_cs + excluded.reserved_micro_cs, -- [groupwin]
        settled_micro_cs = usage_tag_daily.settled_micro_cs + excluded.settled_micro_cs; -- [groupwin]
  END IF; -- [groupwin]
  INSERT INTO usage_person_daily (org_unit_id, account_id, day, person, reserved_micro_cs, settled_micro_cs) -- [groupwin]
    SELECT u.id, NEW.account_id, NEW.day, v_person, d_reserved, d_settled -- [groupwin]
    FROM unnest(v_path) WITH ORDINALITY AS u(id, ord) ORDER BY u.ord -- [groupwin]
    ON CONFLICT (org_unit_id, account_id, day, person) DO UPDATE SET -- [groupwin]
      reserved_micro_cs = usage_person_daily.reserved_micro_cs + excluded.reserved_micro_cs, -- [groupwin]
      settled_micro_cs = usage_person_daily.settled_micro_cs + excluded.settled_micro_cs; -- [groupwin]
  RETURN NULL;
END $$;
--> statement-breakpoint
-- Backfill: the daily group usage of the existing ledger, on each entry's day (entries from before the daily rollups
-- have none: their day as migration 0014 derived it for usage_daily).
INSERT INTO usage_tag_daily (org_unit_id, account_id, day, tags, reserved_micro_cs, settled_micro_cs)
SELECT u.id, e.account_id, d.day, j.tags,
       sum(CASE e.entry_type WHEN 'HOLD' THEN e.amount_micro_cs WHEN 'RELEASE' THEN -e.amount_micro_cs ELSE 0 END),
       sum(CASE WHEN e.entry_type IN ('DEBIT', 'ADJUSTMENT') THEN e.amount_micro_cs ELSE 0 END)
FROM ledger_entries e
JOIN jobs j ON j.id = e.job_id
JOIN accounts a ON a.id = e.account_id
JOIN org_units o ON o.id = e.org_unit_id
CROSS JOIN LATERAL (
  SELECT coalesce(e.day, CASE
    WHEN e.entry_type IN ('HOLD', 'RELEASE') AND j.hold_day IS NOT NULL THEN j.hold_day
    WHEN to_char((e.created_at AT TIME ZONE a.timezone)::date, 'YYYY-MM') = e.period THEN (e.created_at AT TIME ZONE a.timezone)::date
    ELSE (e.period || '-01')::date
  END) AS day) d
CROSS JOIN LATERAL unnest(o.path) AS u(id)
WHERE j.tags <> '{}'::jsonb
GROUP BY u.id, e.account_id, d.day, j.tags;
--> statement-breakpoint
INSERT INTO usage_person_daily (org_unit_id, account_id, day, person, reserved_micro_cs, settled_micro_cs)
SELECT u.id, e.account_id, d.day, coalesce('user:' || j.end_user, j.created_by),
       sum(CASE e.entry_type WHEN 'HOLD' THEN e.amount_micro_cs WHEN 'RELEASE' THEN -e.amount_micro_cs ELSE 0 END),
       sum(CASE WHEN e.entry_type IN ('DEBIT', 'ADJUSTMENT') THEN e.amount_micro_cs ELSE 0 END)
FROM ledger_entries e
JOIN jobs j ON j.id = e.job_id
JOIN accounts a ON a.id = e.account_id
JOIN org_units o ON o.id = e.org_unit_id
CROSS JOIN LATERAL (
  SELECT coalesce(e.day, CASE
    WHEN e.entry_type IN ('HOLD', 'RELEASE') AND j.hold_day IS NOT NULL THEN j.hold_day
    WHEN to_char((e.created_at AT TIME ZONE a.timezone)::date, 'YYYY-MM') = e.period THEN (e.created_at AT TIME ZONE a.timezone)::date
    ELSE (e.period || '-01')::date
  END) AS day) d
CROSS JOIN LATERAL unnest(o.path) AS u(id)
GROUP BY u.id, e.account_id, d.day, coalesce('user:' || j.end_user, j.created_by);
--> statement-breakpoint
-- [groupwin] A group budget as a budgets row, as in migration 0025, with its CUSTOM dates and thresholds (a group
-- budget is HARD): gateway_budget_bounds, gateway_budget_by_day and gateway_budget_now take it like any budget.
CREATE OR REPLACE FUNCTION gateway_group_budget_as_budget(g group_budgets) RETURNS budgets LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  b budgets%ROWTYPE;
BEGIN
  b.id := g.id;
  b.org_unit_id := g.org_unit_id;
  b.account_id := g.account_id;
  b.window := g.window;
  b.limit_micro_cs := g.limit_micro_cs;
  b.window_from := g.window_from; -- [groupwin]
  b.window_to := g.window_to; -- [groupwin]
  b.alert_thresholds := g.alert_thresholds; -- [groupwin]
  b.enforcement := 'HARD'; -- [groupwin]
  RETURN b;
END $$;
--> statement-breakpoint
-- [groupwin] A group budget's usage, as gateway_budget_usage counts a unit budget's (no rollover): `reserved` every
-- open hold of the group within the unit (whatever its period), `settled` what the group settled in each account's
-- window (`cur`: every account's {period, day}, as p.accounts): over the daily group rollups for a window counted in
-- days (gateway_budget_by_day: DAILY, WEEKLY, CUSTOM), the period ones for the others; from the tag rollups (the sets
-- that carry the tag value) or the person rollups. O(days × sets) per account for a day window, never a ledger scan.
CREATE OR REPLACE FUNCTION gateway_group_budget_usage(g group_budgets, cur jsonb, OUT reserved bigint, OUT settled bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  b budgets%ROWTYPE := gateway_group_budget_as_budget(g);
BEGIN
  IF g.tag_key IS NOT NULL THEN
    SELECT coalesce(sum(r.reserved_micro_cs), 0) INTO reserved FROM usage_tag_rollups r
      WHERE r.org_unit_id = g.org_unit_id AND (g.account_id IS NULL OR r.account_id = g.account_id)
        AND r.tags @> jsonb_build_object(g.tag_key, g.tag_value);
    IF gateway_budget_by_day(b) THEN -- [groupwin]
      SELECT coalesce(sum(r.settled_micro_cs), 0) INTO settled -- [groupwin]
        FROM jsonb_each(cur) c -- [groupwin]
        CROSS JOIN LATERAL gateway_budget_bounds(b, c.value->>'period', (c.value->>'day')::date) w -- [groupwin]
        JOIN usage_tag_daily r ON r.org_unit_id = g.org_unit_id AND r.account_id = c.key::uuid -- [groupwin]
          AND r.day BETWEEN w.w_from::date AND w.w_to::date AND r.tags @> jsonb_build_object(g.tag_key, g.tag_value) -- [groupwin]
        WHERE g.account_id IS NULL OR c.key::uuid = g.account_id; -- [groupwin]
    ELSE -- [groupwin]
      SELECT coalesce(sum(r.settled_micro_cs), 0) INTO settled
        FROM jsonb_each(cur) c
        CROSS JOIN LATERAL gateway_budget_bounds(b, c.value->>'period', NULL) w
        JOIN usage_tag_rollups r ON r.org_unit_id = g.org_unit_id AND r.account_id = c.key::uuid
          AND r.period BETWEEN w.w_from AND w.w_to AND r.tags @> jsonb_build_object(g.tag_key, g.tag_value)
        WHERE g.account_id IS NULL OR c.key::uuid = g.account_id;
    END IF; -- [groupwin]
  ELSE
    SELECT coalesce(sum(r.reserved_micro_cs), 0) INTO reserved FROM usage_person_rollups r
      WHERE r.org_unit_id = g.org_unit_id AND (g.account_id IS NULL OR r.account_id = g.account_id) AND r.person = g.person;
    IF gateway_budget_by_day(b) THEN -- [groupwin]
      SELECT coalesce(sum(r.settled_micro_cs), 0) INTO settled -- [groupwin]
        FROM jsonb_each(cur) c -- [groupwin]
        CROSS JOIN LATERAL gateway_budget_bounds(b, c.value->>'period', (c.value->>'day')::date) w -- [groupwin]
        JOIN usage_person_daily r ON r.org_unit_id = g.org_unit_id AND r.account_id = c.key::uuid -- [groupwin]
          AND r.day BETWEEN w.w_from::date AND w.w_to::date AND r.person = g.person -- [groupwin]
        WHERE g.account_id IS NULL OR c.key::uuid = g.account_id; -- [groupwin]
    ELSE -- [groupwin]
      SELECT coalesce(sum(r.settled_micro_cs), 0) INTO settled
        FROM jsonb_each(cur) c
        CROSS JOIN LATERAL gateway_budget_bounds(b, c.value->>'period', NULL) w
        JOIN usage_person_rollups r ON r.org_unit_id = g.org_unit_id AND r.account_id = c.key::uuid
          AND r.period BETWEEN w.w_from AND w.w_to AND r.person = g.person
        WHERE g.account_id IS NULL OR c.key::uuid = g.account_id;
    END IF; -- [groupwin]
  END IF;
END $$;
--> statement-breakpoint
-- [groupwin] gateway_check_group_budgets as in migration 0025, over the day windows too: the bounds of the admitting
-- account's day (p.day), and a CUSTOM budget admits nothing outside its window, as a unit budget (lines marked [groupwin]).
CREATE OR REPLACE FUNCTION gateway_check_group_budgets(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  acc uuid := (p->>'account_id')::uuid;
  v_path uuid[] := ARRAY(SELECT jsonb_array_elements_text(p->'path')::uuid);
  v_period text := p->>'period';
  v_day date := (p->>'day')::date; -- [groupwin]
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
    SELECT * INTO w FROM gateway_budget_bounds(gateway_group_budget_as_budget(b), v_period, v_day); -- [groupwin] v_day
    SELECT * INTO gu FROM gateway_group_budget_usage(b, p->'accounts');
    available := b.limit_micro_cs - gu.reserved - gu.settled;
    -- [groupwin] A CUSTOM budget admits nothing outside its window.
    IF b.window::text = 'CUSTOM' AND NOT (v_day BETWEEN w.w_from::date AND w.w_to::date) THEN -- [groupwin]
      available := 0; -- [groupwin]
    END IF; -- [groupwin]
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
-- One budget's thresholds over one window (w_from..w_to), for unit and group budgets alike: `used` and `lim` as the
-- admission counts them, `p_data` the budget's facts for the event. A threshold flips to crossed once (its state row
-- in budget_alert_states arbitrates between concurrent transactions: the second waits for the first and then finds it
-- crossed); `may_resolve` (a budget change) flips crossed thresholds that usage is now under back, with a `resolved`
-- event. (The loop of gateway_budget_alerts as in migration 0023, taken out of it.)
CREATE OR REPLACE FUNCTION gateway_threshold_alerts(p_budget uuid, p_unit uuid, p_thresholds int[], used bigint, lim bigint,
  w_from text, w_to text, may_resolve boolean, p_data jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  th int;
  gen int;
  data jsonb;
BEGIN
  FOR th IN SELECT DISTINCT x FROM unnest(p_thresholds) AS x ORDER BY x LOOP
    gen := NULL;
    data := p_data || jsonb_build_object('threshold', th, 'usedMicroCs', used::text, 'limitMicroCs', lim::text,
      'windowFrom', w_from, 'windowTo', w_to);
    IF used > 0 AND used::numeric * 100 >= th::numeric * lim THEN
      INSERT INTO budget_alert_states (budget_id, window_from, window_to, threshold, crossed, generation, changed_at)
        VALUES (p_budget, w_from, w_to, th, true, 1, now())
        ON CONFLICT (budget_id, window_from, window_to, threshold) DO UPDATE
          SET crossed = true, generation = budget_alert_states.generation + 1, changed_at = now()
          WHERE NOT budget_alert_states.crossed
        RETURNING generation INTO gen;
      IF gen IS NOT NULL THEN
        PERFORM gateway_money_event('budget.threshold_crossed',
          format('budget.threshold_crossed:%s:%s:%s:%s:%s', p_budget, w_from, w_to, th, gen), p_unit, data);
      END IF;
    ELSIF may_resolve THEN
      UPDATE budget_alert_states SET crossed = false, changed_at = now()
        WHERE budget_id = p_budget AND window_from = w_from AND window_to = w_to AND threshold = th AND crossed
        RETURNING generation INTO gen;
      IF gen IS NOT NULL THEN
        PERFORM gateway_money_event('budget.threshold_resolved',
          format('budget.threshold_resolved:%s:%s:%s:%s:%s', p_budget, w_from, w_to, th, gen), p_unit, data);
      END IF;
    END IF;
  END LOOP;
END $$;
--> statement-breakpoint
-- A unit budget's thresholds, as in migration 0023 (usage and the effective limit with rollover and the grants in force
-- at the transaction's start: a trigger knows no gateway instant), the events written by gateway_threshold_alerts.
CREATE OR REPLACE FUNCTION gateway_budget_alerts(b budgets, cur jsonb, w_from text, w_to text, may_resolve boolean) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  bu record;
BEGIN
  SELECT * INTO bu FROM gateway_budget_usage(b, cur);
  PERFORM gateway_threshold_alerts(b.id, b.org_unit_id, b.alert_thresholds, bu.reserved + bu.settled,
    b.limit_micro_cs + bu.carried + gateway_budget_granted(b.id, now()), w_from, w_to, may_resolve,
    jsonb_build_object('budgetId', b.id, 'orgUnitId', b.org_unit_id, 'accountId', b.account_id, 'window', b.window,
      'enforcement', b.enforcement));
END $$;
--> statement-breakpoint
-- A group budget's thresholds: its usage (gateway_group_budget_usage) against its limit; the event names the group
-- (`reason` TAG with tagKey and tagValue, or PERSON with person), as its `budget.refused` does.
CREATE OR REPLACE FUNCTION gateway_group_budget_alerts(g group_budgets, cur jsonb, w_from text, w_to text, may_resolve boolean) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  gu record;
BEGIN
  SELECT * INTO gu FROM gateway_group_budget_usage(g, cur);
  PERFORM gateway_threshold_alerts(g.id, g.org_unit_id, g.alert_thresholds, gu.reserved + gu.settled, g.limit_micro_cs,
    w_from, w_to, may_resolve,
    jsonb_build_object('budgetId', g.id, 'orgUnitId', g.org_unit_id, 'accountId', g.account_id, 'window', g.window,
      'enforcement', 'HARD', 'reason', CASE WHEN g.person IS NOT NULL THEN 'PERSON' ELSE 'TAG' END)
    || jsonb_strip_nulls(jsonb_build_object('tagKey', g.tag_key, 'tagValue', g.tag_value, 'person', g.person)));
END $$;
--> statement-breakpoint
-- After a group rollup grew (a hold, or a settlement above its hold): the group budgets of the row's unit and account
-- that cover the row's group (a tag value its set carries, or its person), over the window of the row's period (period
-- rows: the budgets counted in periods) or day (day rows: those counted in days, a CUSTOM one only when the day is in
-- its window), as the unit budgets' triggers on usage_rollups and usage_daily. One function for the four tables. Not
-- deferred: gateway_ledger_groups writes the period rows (where open holds are counted) before the day rows.
CREATE OR REPLACE FUNCTION gateway_group_money_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  r jsonb := to_jsonb(NEW);
  v_day date := (r->>'day')::date;
  v_period text := coalesce(r->>'period', to_char((r->>'day')::date, 'YYYY-MM'));
  g group_budgets%ROWTYPE;
  w record;
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.reserved_micro_cs + NEW.settled_micro_cs <= OLD.reserved_micro_cs + OLD.settled_micro_cs THEN
    RETURN NULL;
  END IF;
  FOR g IN SELECT * FROM group_budgets x
      WHERE x.org_unit_id = NEW.org_unit_id AND (x.account_id IS NULL OR x.account_id = NEW.account_id)
        AND CASE WHEN r ? 'tags' THEN x.tag_key IS NOT NULL AND r->'tags'->>x.tag_key = x.tag_value ELSE x.person = r->>'person' END
        AND gateway_budget_by_day(gateway_group_budget_as_budget(x)) = (v_day IS NOT NULL)
      ORDER BY x.id LOOP
    SELECT * INTO w FROM gateway_budget_bounds(gateway_group_budget_as_budget(g), v_period, v_day);
    IF v_day IS NULL OR v_day BETWEEN w.w_from::date AND w.w_to::date THEN
      PERFORM gateway_group_budget_alerts(g, gateway_budget_now(gateway_group_budget_as_budget(g), v_period, v_day), w.w_from, w.w_to, false);
    END IF;
  END LOOP;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER usage_tag_rollups_money_events AFTER INSERT OR UPDATE ON usage_tag_rollups
  FOR EACH ROW EXECUTE FUNCTION gateway_group_money_events();
--> statement-breakpoint
CREATE TRIGGER usage_person_rollups_money_events AFTER INSERT OR UPDATE ON usage_person_rollups
  FOR EACH ROW EXECUTE FUNCTION gateway_group_money_events();
--> statement-breakpoint
CREATE TRIGGER usage_tag_daily_money_events AFTER INSERT OR UPDATE ON usage_tag_daily
  FOR EACH ROW EXECUTE FUNCTION gateway_group_money_events();
--> statement-breakpoint
CREATE TRIGGER usage_person_daily_money_events AFTER INSERT OR UPDATE ON usage_person_daily
  FOR EACH ROW EXECUTE FUNCTION gateway_group_money_events();
--> statement-breakpoint
-- A group budget's limit, thresholds or dates changed: its latest window is judged again (a cut may cross, a raise
-- resolves), as gateway_budget_money_events does for a unit budget; a CUSTOM budget's window is the one of its dates.
CREATE OR REPLACE FUNCTION gateway_group_budget_money_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  s record;
  v_day date;
  v_period text;
BEGIN
  SELECT window_from, window_to INTO s FROM budget_alert_states WHERE budget_id = NEW.id ORDER BY window_to DESC, window_from DESC LIMIT 1;
  IF FOUND THEN
    IF NEW.window::text = 'CUSTOM' THEN
      SELECT * INTO s FROM gateway_budget_bounds(gateway_group_budget_as_budget(NEW), NULL, NULL) AS x(window_from, window_to);
    END IF;
    -- The window's first day or period stands for "now" in it (for LIFETIME, the period 0000-01 has no day).
    IF length(s.window_from) = 10 THEN
      v_day := s.window_from::date;
      v_period := to_char(v_day, 'YYYY-MM');
    ELSE
      v_period := s.window_from;
    END IF;
    PERFORM gateway_group_budget_alerts(NEW, gateway_budget_now(gateway_group_budget_as_budget(NEW), v_period, v_day), s.window_from, s.window_to, true);
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER group_budgets_money_events AFTER UPDATE OF limit_micro_cs, alert_thresholds, window_from, window_to ON group_budgets
  FOR EACH ROW EXECUTE FUNCTION gateway_group_budget_money_events();

-- Custom migration [trig]. The money-event triggers on the rollups run only when they may have something to do: each
-- is split into an AFTER INSERT trigger and an AFTER UPDATE one whose WHEN clause holds the function's own early exit
-- (usage did not grow: a RELEASE) and a cheap indexed look-up of what the function would judge (the row's unit has a
-- budget with thresholds for the row's account and kind of window; for the root's rollups, the included pool of the
-- period may be crossed by this row). The functions themselves are unchanged: a WHEN clause only skips calls that
-- would have returned without writing anything, so every rollup, threshold event and money event is as before.
-- A budget (or group budget) whose thresholds are empty judges nothing (gateway_threshold_alerts loops over them),
-- so it is not counted. The condition is evaluated when the row changes (for usage_daily's deferred trigger: not at
-- commit): a budget committed by another transaction in between is judged at the next growth of usage, as one
-- committed just after the trigger ran always was.
--
-- The three AFTER INSERT triggers on ledger_entries (ledger_entries_daily, _groups, _pool) become one,
-- ledger_entries_rollups (gateway_ledger_rollups: their bodies in their firing order, the entry's path and job read
-- once); their functions are dropped.
--
-- Measured with test/perf/trigger-profile.ts (docs/benchmark.md): per job, calls of gateway_rollup_money_events 12 → 2,
-- gateway_group_money_events 24 → 0 (no group budget), gateway_daily_money_events 12 → 0 (no day-window budget),
-- ledger trigger functions 7 → 3.

-- Whether a unit has a budget with thresholds for an account, counted in days (p_by_day) or not: what
-- gateway_rollup_money_events (false) and gateway_daily_money_events (true) would loop over.
CREATE OR REPLACE FUNCTION gateway_budgets_to_judge(p_unit uuid, p_account uuid, p_by_day boolean) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN EXISTS (SELECT 1 FROM budgets x
    WHERE x.org_unit_id = p_unit AND (x.account_id IS NULL OR x.account_id = p_account)
      AND gateway_budget_by_day(x) = p_by_day AND cardinality(x.alert_thresholds) > 0);
END $$;
--> statement-breakpoint
-- Whether a unit has a group budget with thresholds for an account (any group, any window: a superset of what
-- gateway_group_money_events would loop over).
CREATE OR REPLACE FUNCTION gateway_group_budgets_to_judge(p_unit uuid, p_account uuid) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN EXISTS (SELECT 1 FROM group_budgets x
    WHERE x.org_unit_id = p_unit AND (x.account_id IS NULL OR x.account_id = p_account) AND cardinality(x.alert_thresholds) > 0);
END $$;
--> statement-breakpoint
-- Whether a root's settled usage moving from p_old (NULL: a new row) to p_new may cross the included pool of the
-- period: the condition of gateway_rollup_money_events' `pool.crossed` but the billing model (checked there).
CREATE OR REPLACE FUNCTION gateway_pool_may_cross(p_unit uuid, p_account uuid, p_period text, p_old bigint, p_new bigint) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_included bigint;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM org_units u WHERE u.id = p_unit AND u.parent_id IS NULL) THEN RETURN false; END IF;
  SELECT t.included_micro_cs INTO v_included FROM account_terms t
    WHERE t.account_id = p_account AND t.effective_from <= p_period ORDER BY t.effective_from DESC LIMIT 1;
  RETURN v_included IS NOT NULL AND p_new > v_included AND (p_old IS NULL OR p_old <= v_included);
END $$;
--> statement-breakpoint
DROP TRIGGER usage_rollups_money_events ON usage_rollups;
--> statement-breakpoint
CREATE TRIGGER usage_rollups_money_events AFTER INSERT ON usage_rollups
  FOR EACH ROW WHEN (gateway_budgets_to_judge(NEW.org_unit_id, NEW.account_id, false)
    OR gateway_pool_may_cross(NEW.org_unit_id, NEW.account_id, NEW.period, NULL, NEW.settled_micro_cs))
  EXECUTE FUNCTION gateway_rollup_money_events();
--> statement-breakpoint
CREATE TRIGGER usage_rollups_money_events_grew AFTER UPDATE ON usage_rollups
  FOR EACH ROW WHEN ((NEW.reserved_micro_cs + NEW.settled_micro_cs > OLD.reserved_micro_cs + OLD.settled_micro_cs
      AND gateway_budgets_to_judge(NEW.org_unit_id, NEW.account_id, false))
    OR (NEW.settled_micro_cs > OLD.settled_micro_cs
      AND gateway_pool_may_cross(NEW.org_unit_id, NEW.account_id, NEW.period, OLD.settled_micro_cs, NEW.settled_micro_cs)))
  EXECUTE FUNCTION gateway_rollup_money_events();
--> statement-breakpoint
DROP TRIGGER usage_daily_money_events ON usage_daily;
--> statement-breakpoint
CREATE CONSTRAINT TRIGGER usage_daily_money_events AFTER INSERT ON usage_daily DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW WHEN (gateway_budgets_to_judge(NEW.org_unit_id, NEW.account_id, true))
  EXECUTE FUNCTION gateway_daily_money_events();
--> statement-breakpoint
CREATE CONSTRAINT TRIGGER usage_daily_money_events_grew AFTER UPDATE ON usage_daily DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW WHEN (NEW.reserved_micro_cs + NEW.settled_micro_cs > OLD.reserved_micro_cs + OLD.settled_micro_cs
    AND gateway_budgets_to_judge(NEW.org_unit_id, NEW.account_id, true))
  EXECUTE FUNCTION gateway_daily_money_events();
--> statement-breakpoint
DROP TRIGGER usage_tag_rollups_money_events ON usage_tag_rollups;
--> statement-breakpoint
CREATE TRIGGER usage_tag_rollups_money_events AFTER INSERT ON usage_tag_rollups
  FOR EACH ROW WHEN (gateway_group_budgets_to_judge(NEW.org_unit_id, NEW.account_id))
  EXECUTE FUNCTION gateway_group_money_events();
--> statement-breakpoint
CREATE TRIGGER usage_tag_rollups_money_events_grew AFTER UPDATE ON usage_tag_rollups
  FOR EACH ROW WHEN (NEW.reserved_micro_cs + NEW.settled_micro_cs > OLD.reserved_micro_cs + OLD.settled_micro_cs
    AND gateway_group_budgets_to_judge(NEW.org_unit_id, NEW.account_id))
  EXECUTE FUNCTION gateway_group_money_events();
--> statement-breakpoint
DROP TRIGGER usage_person_rollups_money_events ON usage_person_rollups;
--> statement-breakpoint
CREATE TRIGGER usage_person_rollups_money_events AFTER INSERT ON usage_person_rollups
  FOR EACH ROW WHEN (gateway_group_budgets_to_judge(NEW.org_unit_id, NEW.account_id))
  EXECUTE FUNCTION gateway_group_money_events();
--> statement-breakpoint
CREATE TRIGGER usage_person_rollups_money_events_grew AFTER UPDATE ON usage_person_rollups
  FOR EACH ROW WHEN (NEW.reserved_micro_cs + NEW.settled_micro_cs > OLD.reserved_micro_cs + OLD.settled_micro_cs
    AND gateway_group_budgets_to_judge(NEW.org_unit_id, NEW.account_id))
  EXECUTE FUNCTION gateway_group_money_events();
--> statement-breakpoint
DROP TRIGGER usage_tag_daily_money_events ON usage_tag_daily;
--> statement-breakpoint
CREATE TRIGGER usage_tag_daily_money_events AFTER INSERT ON usage_tag_daily
  FOR EACH ROW WHEN (gateway_group_budgets_to_judge(NEW.org_unit_id, NEW.account_id))
  EXECUTE FUNCTION gateway_group_money_events();
--> statement-breakpoint
CREATE TRIGGER usage_tag_daily_money_events_grew AFTER UPDATE ON usage_tag_daily
  FOR EACH ROW WHEN (NEW.reserved_micro_cs + NEW.settled_micro_cs > OLD.reserved_micro_cs + OLD.settled_micro_cs
    AND gateway_group_budgets_to_judge(NEW.org_unit_id, NEW.account_id))
  EXECUTE FUNCTION gateway_group_money_events();
--> statement-breakpoint
DROP TRIGGER usage_person_daily_money_events ON usage_person_daily;
--> statement-breakpoint
CREATE TRIGGER usage_person_daily_money_events AFTER INSERT ON usage_person_daily
  FOR EACH ROW WHEN (gateway_group_budgets_to_judge(NEW.org_unit_id, NEW.account_id))
  EXECUTE FUNCTION gateway_group_money_events();
--> statement-breakpoint
CREATE TRIGGER usage_person_daily_money_events_grew AFTER UPDATE ON usage_person_daily
  FOR EACH ROW WHEN (NEW.reserved_micro_cs + NEW.settled_micro_cs > OLD.reserved_micro_cs + OLD.settled_micro_cs
    AND gateway_group_budgets_to_judge(NEW.org_unit_id, NEW.account_id))
  EXECUTE FUNCTION gateway_group_money_events();
--> statement-breakpoint
-- [trig] The three AFTER INSERT triggers on ledger_entries folded into one function, run by one trigger: the bodies of
-- gateway_ledger_daily (migration 0015), gateway_ledger_groups (migration 0030) and gateway_ledger_pool (migration
-- 0032) in the order their triggers fired (by name: daily, groups, pool), reading the entry's path and its job once.
-- Lines changed from those bodies are marked [trig].
CREATE OR REPLACE FUNCTION gateway_ledger_rollups() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_path uuid[];
  v_product text := 'ADJUSTMENT';
  v_unit uuid; -- [trig] from gateway_ledger_groups
  v_tags jsonb; -- [trig] from gateway_ledger_groups
  v_person text; -- [trig] from gateway_ledger_groups
  d_reserved bigint := CASE NEW.entry_type WHEN 'HOLD' THEN NEW.amount_micro_cs WHEN 'RELEASE' THEN -NEW.amount_micro_cs ELSE 0 END;
  d_settled bigint := CASE WHEN NEW.entry_type IN ('DEBIT', 'ADJUSTMENT') THEN NEW.amount_micro_cs ELSE 0 END;
  v_included bigint; -- [trig] from gateway_ledger_pool, set below for a DEBIT or an ADJUSTMENT only
  v_at timestamptz := date_trunc('milliseconds', NEW.created_at); -- [trig] from gateway_ledger_pool
  p usage_pool_periods%ROWTYPE; -- [trig] from gateway_ledger_pool
  v_before numeric; -- [trig] from gateway_ledger_pool
  v_in_pool bigint; -- [trig] from gateway_ledger_pool
BEGIN
  -- [trig] gateway_ledger_daily: the entry's effect on usage_daily, every unit of its path, root first.
  SELECT path INTO v_path FROM org_units WHERE id = NEW.org_unit_id;
  IF NEW.job_id IS NOT NULL THEN -- [trig] the job's product, tags and person in one read (a missing job: all NULL, as before)
    SELECT j.product, j.tags, coalesce('user:' || j.end_user, j.created_by) INTO v_product, v_tags, v_person FROM jobs j WHERE j.id = NEW.job_id; -- [trig]
  END IF; -- [trig]
  INSERT INTO usage_daily (org_unit_id, account_id, product, day, reserved_micro_cs, settled_micro_cs)
    SELECT u.id, NEW.account_id, v_product, NEW.day, d_reserved, d_settled
    FROM unnest(v_path) WITH ORDINALITY AS u(id, ord) ORDER BY u.ord
    ON CONFLICT (org_unit_id, account_id, day, product) DO UPDATE SET
      reserved_micro_cs = usage_daily.reserved_micro_cs + excluded.reserved_micro_cs,
      settled_micro_cs = usage_daily.settled_micro_cs + excluded.settled_micro_cs;

  -- [trig] gateway_ledger_groups: the group rollups (an entry without a job has none).
  IF NEW.job_id IS NOT NULL THEN -- [trig] was: IF NEW.job_id IS NULL THEN RETURN NULL; END IF;
  -- Root first, as every writer of rollups. A RELEASE updates the rows its HOLD created: an insert of its negative
  -- amount would fail the rows' non-negative check before ON CONFLICT could turn it into an update.
  IF d_reserved < 0 THEN
    IF v_tags <> '{}'::jsonb THEN
      FOREACH v_unit IN ARRAY v_path LOOP
        UPDATE usage_tag_rollups SET reserved_micro_cs = reserved_micro_cs + d_reserved
          WHERE org_unit_id = v_unit AND account_id = NEW.account_id AND period = NEW.period AND tags = v_tags;
      END LOOP;
    END IF;
    FOREACH v_unit IN ARRAY v_path LOOP
      UPDATE usage_person_rollups SET reserved_micro_cs = reserved_micro_cs + d_reserved
        WHERE org_unit_id = v_unit AND account_id = NEW.account_id AND period = NEW.period AND person = v_person;
    END LOOP;
    IF v_tags <> '{}'::jsonb THEN
      FOREACH v_unit IN ARRAY v_path LOOP
        UPDATE usage_tag_daily SET reserved_micro_cs = reserved_micro_cs + d_reserved
          WHERE org_unit_id = v_unit AND account_id = NEW.account_id AND day = NEW.day AND tags = v_tags;
      END LOOP;
    END IF;
    FOREACH v_unit IN ARRAY v_path LOOP
      UPDATE usage_person_daily SET reserved_micro_cs = reserved_micro_cs + d_reserved
        WHERE org_unit_id = v_unit AND account_id = NEW.account_id AND day = NEW.day AND person = v_person;
    END LOOP;
  ELSE -- [trig] was: RETURN NULL; END IF;
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
  -- The same amounts on the entry's day (after the period rows, where the open holds are counted: the
  -- threshold trigger of a day row then sees both agree).
  IF v_tags <> '{}'::jsonb THEN
    INSERT INTO usage_tag_daily (org_unit_id, account_id, day, tags, reserved_micro_cs, settled_micro_cs)
      SELECT u.id, NEW.account_id, NEW.day, v_tags, d_reserved, d_settled
      FROM unnest(v_path) WITH ORDINALITY AS u(id, ord) ORDER BY u.ord
      ON CONFLICT (org_unit_id, account_id, day, tags) DO UPDATE SET
        reserved_micro_cs = usage_tag_daily.reserved_micro_cs + excluded.reserved_micro_cs,
        settled_micro_cs = usage_tag_daily.settled_micro_cs + excluded.settled_micro_cs;
  END IF;
  INSERT INTO usage_person_daily (org_unit_id, account_id, day, person, reserved_micro_cs, settled_micro_cs)
    SELECT u.id, NEW.account_id, NEW.day, v_person, d_reserved, d_settled
    FROM unnest(v_path) WITH ORDINALITY AS u(id, ord) ORDER BY u.ord
    ON CONFLICT (org_unit_id, account_id, day, person) DO UPDATE SET
      reserved_micro_cs = usage_person_daily.reserved_micro_cs + excluded.reserved_micro_cs,
      settled_micro_cs = usage_person_daily.settled_micro_cs + excluded.settled_micro_cs;
  END IF; -- [trig] end of the RELEASE / other entries branches
  END IF; -- [trig] end of the entry with a job

  -- [trig] gateway_ledger_pool: a DEBIT or an ADJUSTMENT (its trigger's WHEN) in the MARGINAL pool rollups.
  IF NEW.entry_type NOT IN ('DEBIT', 'ADJUSTMENT') THEN RETURN NULL; END IF; -- [trig]
  v_included := gateway_pool_included(NEW.account_id, NEW.period); -- [trig] was its DECLARE's initial value
  SELECT * INTO p FROM usage_pool_periods WHERE account_id = NEW.account_id AND period = NEW.period FOR UPDATE;
  IF NOT FOUND THEN
    INSERT INTO usage_pool_periods (account_id, period, included_micro_cs) VALUES (NEW.account_id, NEW.period, v_included)
      ON CONFLICT (account_id, period) DO NOTHING;
    SELECT * INTO p FROM usage_pool_periods WHERE account_id = NEW.account_id AND period = NEW.period FOR UPDATE;
  END IF;
  IF p.included_micro_cs <> v_included THEN
    -- The terms in force for the period changed since it was split: split it again, this entry included.
    PERFORM gateway_pool_split(NEW.account_id, NEW.period, v_included, NEW.id);
    RETURN NULL;
  END IF;
  IF p.corrected OR NEW.amount_micro_cs < 0 THEN
    UPDATE usage_pool_periods SET settled_micro_cs = settled_micro_cs + NEW.amount_micro_cs, corrected = true,
           last_at = CASE WHEN p.last_id IS NULL OR (v_at, NEW.id) > (p.last_at, p.last_id) THEN v_at ELSE last_at END,
           last_id = CASE WHEN p.last_id IS NULL OR (v_at, NEW.id) > (p.last_at, p.last_id) THEN NEW.id ELSE last_id END
     WHERE account_id = NEW.account_id AND period = NEW.period;
    INSERT INTO usage_pool_rollups (account_id, period, org_unit_id, settled_micro_cs) VALUES (NEW.account_id, NEW.period, NEW.org_unit_id, NEW.amount_micro_cs)
      ON CONFLICT (account_id, period, org_unit_id) DO UPDATE SET settled_micro_cs = usage_pool_rollups.settled_micro_cs + excluded.settled_micro_cs;
    RETURN NULL;
  END IF;
  IF p.last_id IS NULL OR (v_at, NEW.id) > (p.last_at, p.last_id) THEN
    -- Settles last (the usual case): it takes what is left of the pool.
    v_in_pool := least(NEW.amount_micro_cs, greatest(0, p.included_micro_cs - p.settled_micro_cs));
    UPDATE usage_pool_periods SET settled_micro_cs = settled_micro_cs + NEW.amount_micro_cs, last_at = v_at, last_id = NEW.id
     WHERE account_id = NEW.account_id AND period = NEW.period;
  ELSE
    -- Settles before entries already counted (its transaction began before theirs): those move by its amount.
    v_before := p.settled_micro_cs - (
      SELECT coalesce(sum(l.amount_micro_cs), 0) FROM ledger_entries l
       WHERE l.account_id = NEW.account_id AND l.period = NEW.period AND l.entry_type IN ('DEBIT', 'ADJUSTMENT')
         AND l.created_at >= v_at AND (date_trunc('milliseconds', l.created_at), l.id) > (v_at, NEW.id) AND l.id < NEW.id);
    v_in_pool := least(NEW.amount_micro_cs, greatest(0, p.included_micro_cs - v_before));
    INSERT INTO usage_pool_rollups (account_id, period, org_unit_id, in_pool_micro_cs)
    SELECT NEW.account_id, NEW.period, t.unit,
           sum(least(t.a, greatest(0, p.included_micro_cs - (v_before + NEW.amount_micro_cs + t.cum - t.a)))
             - least(t.a, greatest(0, p.included_micro_cs - (v_before + t.cum - t.a))))
      FROM (SELECT l.org_unit_id AS unit, l.amount_micro_cs AS a,
                   sum(l.amount_micro_cs) OVER (ORDER BY date_trunc('milliseconds', l.created_at), l.id ROWS UNBOUNDED PRECEDING) AS cum
              FROM ledger_entries l
             WHERE l.account_id = NEW.account_id AND l.period = NEW.period AND l.entry_type IN ('DEBIT', 'ADJUSTMENT')
               AND l.created_at >= v_at AND (date_trunc('milliseconds', l.created_at), l.id) > (v_at, NEW.id) AND l.id < NEW.id) t
     GROUP BY t.unit ORDER BY t.unit
      ON CONFLICT (account_id, period, org_unit_id) DO UPDATE SET in_pool_micro_cs = usage_pool_rollups.in_pool_micro_cs + excluded.in_pool_micro_cs;
    UPDATE usage_pool_periods SET settled_micro_cs = settled_micro_cs + NEW.amount_micro_cs
     WHERE account_id = NEW.account_id AND period = NEW.period;
  END IF;
  INSERT INTO usage_pool_rollups (account_id, period, org_unit_id, settled_micro_cs, in_pool_micro_cs)
    VALUES (NEW.account_id, NEW.period, NEW.org_unit_id, NEW.amount_micro_cs, v_in_pool)
    ON CONFLICT (account_id, period, org_unit_id) DO UPDATE SET
      settled_micro_cs = usage_pool_rollups.settled_micro_cs + excluded.settled_micro_cs,
      in_pool_micro_cs = usage_pool_rollups.in_pool_micro_cs + excluded.in_pool_micro_cs;
  RETURN NULL;
END $$;
--> statement-breakpoint
DROP TRIGGER ledger_entries_daily ON ledger_entries;
--> statement-breakpoint
DROP TRIGGER ledger_entries_groups ON ledger_entries;
--> statement-breakpoint
DROP TRIGGER ledger_entries_pool ON ledger_entries;
--> statement-breakpoint
CREATE TRIGGER ledger_entries_rollups AFTER INSERT ON ledger_entries
  FOR EACH ROW EXECUTE FUNCTION gateway_ledger_rollups();
--> statement-breakpoint
DROP FUNCTION gateway_ledger_daily();
--> statement-breakpoint
DROP FUNCTION gateway_ledger_groups();
--> statement-breakpoint
DROP FUNCTION gateway_ledger_pool();

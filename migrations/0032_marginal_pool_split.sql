-- Custom migration [margin]. MARGINAL from rollups (docs/billing.md): the included pool is filled in settlement order
-- (settled at, to the millisecond, then ledger id); each DEBIT or ADJUSTMENT's in-pool part is
-- min(amount, max(0, included − what was settled before it)). A trigger on ledger_entries keeps, per (account, period),
-- the pool it was split with, the settled total and the last entry in settlement order (usage_pool_periods), and per
-- unit its own settled usage and in-pool part (usage_pool_rollups), in the writer's transaction. Every writer of these
-- entries (settlement, adjustments) holds the account row lock, so the entries of an account are counted one at a time.
--
-- An entry normally settles last. One whose transaction began before entries already counted (created_at is the
-- transaction's start) sorts before them: the entries after it in settlement order (those settled while it was in
-- flight: few) move by its amount, and their in-pool parts are computed again. A negative adjustment (whose netting
-- cancels its unit's earlier usage, moving every later entry) marks the period `corrected`: only `settled` is kept
-- and its statement is computed from the ledger. When the included pool in force for the period changes (new terms),
-- the next entry splits the period again from its ledger; until then the statement is computed from the ledger.

-- The split of one period from its ledger, counting the entries with id <= p_upto.
CREATE OR REPLACE FUNCTION gateway_pool_split(p_account uuid, p_period text, p_included bigint, p_upto bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM usage_pool_rollups WHERE account_id = p_account AND period = p_period;
  INSERT INTO usage_pool_rollups (account_id, period, org_unit_id, settled_micro_cs, in_pool_micro_cs)
  SELECT p_account, p_period, e.unit, sum(e.a), sum(least(e.a, greatest(0, p_included - (e.cum - e.a))))
    FROM (SELECT l.org_unit_id AS unit, l.amount_micro_cs AS a,
                 sum(l.amount_micro_cs) OVER (ORDER BY date_trunc('milliseconds', l.created_at), l.id ROWS UNBOUNDED PRECEDING) AS cum
            FROM ledger_entries l
           WHERE l.account_id = p_account AND l.period = p_period AND l.entry_type IN ('DEBIT', 'ADJUSTMENT') AND l.id <= p_upto) e
   GROUP BY e.unit ORDER BY e.unit;
  INSERT INTO usage_pool_periods (account_id, period, included_micro_cs, settled_micro_cs, last_at, last_id, corrected)
  SELECT p_account, p_period, p_included,
         (SELECT coalesce(sum(settled_micro_cs), 0) FROM usage_pool_rollups WHERE account_id = p_account AND period = p_period),
         last.at, last.id,
         EXISTS (SELECT 1 FROM ledger_entries l
                  WHERE l.account_id = p_account AND l.period = p_period AND l.entry_type = 'ADJUSTMENT' AND l.amount_micro_cs < 0 AND l.id <= p_upto)
    FROM (SELECT NULL) one
    LEFT JOIN LATERAL (
      SELECT date_trunc('milliseconds', l.created_at) AS at, l.id FROM ledger_entries l
       WHERE l.account_id = p_account AND l.period = p_period AND l.entry_type IN ('DEBIT', 'ADJUSTMENT') AND l.id <= p_upto
       ORDER BY 1 DESC, 2 DESC LIMIT 1) last ON true
  ON CONFLICT (account_id, period) DO UPDATE SET
    included_micro_cs = excluded.included_micro_cs, settled_micro_cs = excluded.settled_micro_cs,
    last_at = excluded.last_at, last_id = excluded.last_id, corrected = excluded.corrected;
END $$;
--> statement-breakpoint
-- The included pool in force for a period (as termsFor: the latest terms effective at or before it; none: 0).
CREATE OR REPLACE FUNCTION gateway_pool_included(p_account uuid, p_period text) RETURNS bigint LANGUAGE sql STABLE AS $$
  SELECT coalesce((SELECT t.included_micro_cs FROM account_terms t
                    WHERE t.account_id = p_account AND t.effective_from <= p_period
                    ORDER BY t.effective_from DESC LIMIT 1), 0)
$$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION gateway_ledger_pool() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_included bigint := gateway_pool_included(NEW.account_id, NEW.period);
  v_at timestamptz := date_trunc('milliseconds', NEW.created_at);
  p usage_pool_periods%ROWTYPE;
  v_before numeric;
  v_in_pool bigint;
BEGIN
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
CREATE TRIGGER ledger_entries_pool AFTER INSERT ON ledger_entries
  FOR EACH ROW WHEN (NEW.entry_type IN ('DEBIT', 'ADJUSTMENT')) EXECUTE FUNCTION gateway_ledger_pool();
--> statement-breakpoint
-- Backfill: every period of the existing ledger, split with the pool in force for it.
SELECT gateway_pool_split(s.account_id, s.period, gateway_pool_included(s.account_id, s.period), 9223372036854775807)
  FROM (SELECT DISTINCT account_id, period FROM ledger_entries WHERE entry_type IN ('DEBIT', 'ADJUSTMENT')) s;

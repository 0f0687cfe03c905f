-- Custom migration. Daily rollups (usage_daily): per unit on the path, account, product and day, moved in the same
-- transaction as the ledger by triggers on ledger_entries, whichever path writes the entry (gateway_admit's HOLD,
-- settlement's RELEASE and DEBIT, adjustments). The day is the gateway's (its time-zone rules, Node's tz data):
-- ledger_entries.day as recorded by recordMovement; a HOLD from gateway_admit takes its job's hold_day (set by the
-- gateway in the job row it passes). Only the backfill below derives days in SQL, for rows written before.
--
-- Backfill 1: the hold day of existing jobs (their creation, in the account's time zone).
UPDATE jobs j SET hold_day = (j.created_at AT TIME ZONE a.timezone)::date
  FROM accounts a WHERE a.id = j.account_id AND j.hold_day IS NULL;
--> statement-breakpoint
-- A new entry without a day: a HOLD (its job's hold day), else the first day of its period (never guessed in SQL).
CREATE OR REPLACE FUNCTION gateway_ledger_day() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.day IS NULL AND NEW.job_id IS NOT NULL THEN
    SELECT hold_day INTO NEW.day FROM jobs WHERE id = NEW.job_id;
  END IF;
  IF NEW.day IS NULL THEN NEW.day := (NEW.period || '-01')::date; END IF;
  RETURN NEW;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER ledger_entries_day BEFORE INSERT ON ledger_entries
  FOR EACH ROW EXECUTE FUNCTION gateway_ledger_day();
--> statement-breakpoint
-- The entry's effect on every unit of its path, root first (the order every writer of rollups keeps): a HOLD
-- reserves on its day, a RELEASE takes it back from the same day (the hold's), a DEBIT or an ADJUSTMENT settles.
CREATE OR REPLACE FUNCTION gateway_ledger_daily() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_path uuid[];
  v_product text := 'ADJUSTMENT';
  d_reserved bigint := CASE NEW.entry_type WHEN 'HOLD' THEN NEW.amount_micro_cs WHEN 'RELEASE' THEN -NEW.amount_micro_cs ELSE 0 END;
  d_settled bigint := CASE WHEN NEW.entry_type IN ('DEBIT', 'ADJUSTMENT') THEN NEW.amount_micro_cs ELSE 0 END;
BEGIN
  SELECT path INTO v_path FROM org_units WHERE id = NEW.org_unit_id;
  IF NEW.job_id IS NOT NULL THEN SELECT product INTO v_product FROM jobs WHERE id = NEW.job_id; END IF;
  INSERT INTO usage_daily (org_unit_id, account_id, product, day, reserved_micro_cs, settled_micro_cs)
    SELECT u.id, NEW.account_id, v_product, NEW.day, d_reserved, d_settled
    FROM unnest(v_path) WITH ORDINALITY AS u(id, ord) ORDER BY u.ord
    ON CONFLICT (org_unit_id, account_id, day, product) DO UPDATE SET
      reserved_micro_cs = usage_daily.reserved_micro_cs + excluded.reserved_micro_cs,
      settled_micro_cs = usage_daily.settled_micro_cs + excluded.settled_micro_cs;
  RETURN NULL;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER ledger_entries_daily AFTER INSERT ON ledger_entries
  FOR EACH ROW EXECUTE FUNCTION gateway_ledger_daily();
--> statement-breakpoint
-- Backfill 2: the existing ledger (append-only: its rows keep day NULL and are read here as the triggers would have
-- counted them): a hold and its release on the job's hold day, a settlement or an adjustment on its creation day in
-- the account's time zone (the first day of its period when that day falls outside it).
INSERT INTO usage_daily (org_unit_id, account_id, product, day, reserved_micro_cs, settled_micro_cs)
SELECT u.id, e.account_id, coalesce(j.product, 'ADJUSTMENT'), d.day,
       sum(CASE e.entry_type WHEN 'HOLD' THEN e.amount_micro_cs WHEN 'RELEASE' THEN -e.amount_micro_cs ELSE 0 END),
       sum(CASE WHEN e.entry_type IN ('DEBIT', 'ADJUSTMENT') THEN e.amount_micro_cs ELSE 0 END)
FROM ledger_entries e
JOIN accounts a ON a.id = e.account_id
JOIN org_units o ON o.id = e.org_unit_id
LEFT JOIN jobs j ON j.id = e.job_id
CROSS JOIN LATERAL (
  SELECT CASE
    WHEN e.entry_type IN ('HOLD', 'RELEASE') AND j.hold_day IS NOT NULL THEN j.hold_day
    WHEN to_char((e.created_at AT TIME ZONE a.timezone)::date, 'YYYY-MM') = e.period THEN (e.created_at AT TIME ZONE a.timezone)::date
    ELSE (e.period || '-01')::date
  END AS day) d
CROSS JOIN LATERAL unnest(o.path) AS u(id)
WHERE e.day IS NULL
GROUP BY u.id, e.account_id, coalesce(j.product, 'ADJUSTMENT'), d.day
ON CONFLICT (org_unit_id, account_id, day, product) DO UPDATE SET
  reserved_micro_cs = usage_daily.reserved_micro_cs + excluded.reserved_micro_cs,
  settled_micro_cs = usage_daily.settled_micro_cs + excluded.settled_micro_cs;

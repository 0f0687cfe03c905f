-- [unitsfixed] Units never change once created: no mutation renames, moves or deletes one, and each gateway process
-- keeps the units it has read (src/graphql/context.ts: the unit a scope check or a page needs costs no SQL twice),
-- checking a caller's access by a unit's cached path. A unit changed by hand in the database would be served stale by
-- every process until it restarts, and a unit moved to take a team's access away would not take it away. The
-- database now refuses what the gateway never does, as it does for the ledger (migration 0001).
CREATE OR REPLACE FUNCTION org_units_fixed() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'org_units rows never change once created (% refused): gateway processes keep them', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
--> statement-breakpoint
CREATE TRIGGER org_units_no_update_delete
  BEFORE UPDATE OR DELETE ON org_units
  FOR EACH ROW EXECUTE FUNCTION org_units_fixed();
--> statement-breakpoint
CREATE TRIGGER org_units_no_truncate
  BEFORE TRUNCATE ON org_units
  FOR EACH STATEMENT EXECUTE FUNCTION org_units_fixed();

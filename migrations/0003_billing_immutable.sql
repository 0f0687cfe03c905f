-- A closed period is a frozen statement: refuse any change to it, in the database itself.
CREATE OR REPLACE FUNCTION billing_statements_immutable() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'billing_statements are immutable once a period is closed (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
--> statement-breakpoint
CREATE TRIGGER billing_statements_no_update_delete
  BEFORE UPDATE OR DELETE ON billing_statements
  FOR EACH ROW EXECUTE FUNCTION billing_statements_immutable();
--> statement-breakpoint
CREATE TRIGGER billing_statements_no_truncate
  BEFORE TRUNCATE ON billing_statements
  FOR EACH STATEMENT EXECUTE FUNCTION billing_statements_immutable();
--> statement-breakpoint
-- Adjustment records and the audit trail are append-only, like the ledger they describe.
CREATE OR REPLACE FUNCTION billing_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
--> statement-breakpoint
CREATE TRIGGER usage_adjustments_no_update_delete
  BEFORE UPDATE OR DELETE ON usage_adjustments
  FOR EACH ROW EXECUTE FUNCTION billing_append_only();
--> statement-breakpoint
CREATE TRIGGER usage_adjustments_no_truncate
  BEFORE TRUNCATE ON usage_adjustments
  FOR EACH STATEMENT EXECUTE FUNCTION billing_append_only();
--> statement-breakpoint
CREATE TRIGGER audit_events_no_update_delete
  BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION billing_append_only();
--> statement-breakpoint
CREATE TRIGGER audit_events_no_truncate
  BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION billing_append_only();

-- Custom migration. Live updates (GraphQL subscriptions): every change a subscriber may want is announced on the
-- channel `gateway_live` in the transaction that makes it, whichever path makes it (gateway_admit, settlement in
-- TypeScript, the worker, a budget mutation). The payload names ids only (never an amount, a request or a secret):
-- {"k": kind, "id": the entity, "u": units whose subscribers care}. Each gateway process's listener fans it out
-- to its own subscribers, which re-read the entity through the normal visibility rules before sending anything.
CREATE OR REPLACE FUNCTION gateway_live_publish(p_kind text, p_id text, p_units uuid[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('gateway_live', json_build_object('k', p_kind, 'id', p_id, 'u', coalesce(p_units, '{}'::uuid[]))::text);
END;
$$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION gateway_live_job() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status THEN
    PERFORM gateway_live_publish('job', NEW.id::text, ARRAY[NEW.project_id]);
  END IF;
  RETURN NULL;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER jobs_live AFTER INSERT OR UPDATE OF status ON jobs
  FOR EACH ROW EXECUTE FUNCTION gateway_live_job();
--> statement-breakpoint
CREATE OR REPLACE FUNCTION gateway_live_budget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- A unit's usage counters (every unit on a movement's path) or one of its budgets changed.
  PERFORM gateway_live_publish('budget', NEW.org_unit_id::text, ARRAY[NEW.org_unit_id]);
  RETURN NULL;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER usage_rollups_live AFTER INSERT OR UPDATE ON usage_rollups
  FOR EACH ROW EXECUTE FUNCTION gateway_live_budget();
--> statement-breakpoint
CREATE TRIGGER budgets_live AFTER INSERT OR UPDATE ON budgets
  FOR EACH ROW EXECUTE FUNCTION gateway_live_budget();

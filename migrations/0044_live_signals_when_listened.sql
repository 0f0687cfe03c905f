-- [livewhen] Live signals are sent only while some gateway process has an open subscription (a row in force in
-- live_listeners, migration live_listeners; src/live/presence.ts). A NOTIFY makes its transaction's commit take
-- PostgreSQL's single lock on the notification queue (async.c, PreCommit_Notify) and hold it until the commit is
-- flushed: every notifying commit of the cluster waits for the one before it, WAL flush included. The job path's
-- transactions (admission, forwarding's bookkeeping, settlement) each announced the job and the usage rows of its
-- path (migration 0013) and the settlement its money event (migration 0017): with nobody subscribed, for nothing.
-- What a process does when it opens its first subscription closes the gap for changes already in flight: it writes
-- its row, then waits until every transaction that began before that row was committed has ended, then re-reads
-- what its subscribers follow (src/live/presence.ts). Functions and triggers are otherwise unchanged.
CREATE OR REPLACE FUNCTION gateway_live_wanted() RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN EXISTS (SELECT 1 FROM live_listeners WHERE expires_at > now());
END $$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION gateway_live_publish(p_kind text, p_id text, p_units uuid[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF gateway_live_wanted() THEN -- [livewhen]
    PERFORM pg_notify('gateway_live', json_build_object('k', p_kind, 'id', p_id, 'u', coalesce(p_units, '{}'::uuid[]))::text);
  END IF; -- [livewhen]
END;
$$;
--> statement-breakpoint
-- [livewhen] The triggers that only publish skip their PL/pgSQL call when nobody listens.
DROP TRIGGER jobs_live ON jobs;
--> statement-breakpoint
CREATE TRIGGER jobs_live AFTER INSERT OR UPDATE OF status ON jobs
  FOR EACH ROW WHEN (gateway_live_wanted()) EXECUTE FUNCTION gateway_live_job(); -- [livewhen] WHEN
--> statement-breakpoint
DROP TRIGGER usage_rollups_live ON usage_rollups;
--> statement-breakpoint
CREATE TRIGGER usage_rollups_live AFTER INSERT OR UPDATE ON usage_rollups
  FOR EACH ROW WHEN (gateway_live_wanted()) EXECUTE FUNCTION gateway_live_budget(); -- [livewhen] WHEN
--> statement-breakpoint
DROP TRIGGER budgets_live ON budgets;
--> statement-breakpoint
CREATE TRIGGER budgets_live AFTER INSERT OR UPDATE ON budgets
  FOR EACH ROW WHEN (gateway_live_wanted()) EXECUTE FUNCTION gateway_live_budget(); -- [livewhen] WHEN
--> statement-breakpoint
-- [livewhen] gateway_money_event (latest body: migration 0017): the event is written as before; its id is announced
-- to live subscribers only while there are some.
CREATE OR REPLACE FUNCTION gateway_money_event(p_kind text, p_key text, p_unit uuid, p_data jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  v_id uuid := gen_random_uuid();
BEGIN
  INSERT INTO outbox_events (id, topic, kind, dedupe_key, payload, destination, org_unit_id, max_attempts, next_attempt_at, created_at)
    VALUES (v_id, 'money_event', p_kind, p_key,
      jsonb_build_object('id', v_id, 'kind', p_kind, 'orgUnitId', p_unit, 'occurredAt', now(), 'data', p_data),
      '{}'::jsonb, p_unit, 100, now(), now())
    ON CONFLICT (topic, dedupe_key) DO NOTHING;
  IF FOUND AND gateway_live_wanted() THEN -- [livewhen] AND gateway_live_wanted()
    -- Delivered at commit, only if the cause commits: live listeners (GraphQL subscriptions) read the row by its id.
    PERFORM pg_notify('gateway_money_event', v_id::text);
  END IF;
END $$;

-- Group commit for forwarding's bookkeeping and for the followed settlements (src/jobs/follow.ts,
-- FOLLOW_GROUP_COMMIT_MAX): several calls of gateway_mark_submitted (kind 'mark'), or of gateway_settle_followed (kind
-- 'settle'), in one statement and one transaction, each exactly as alone, answered in their order. The batch locks
-- every one of its jobs first, in id order, so that two batches never wait for each other in a cycle; a settlement
-- then takes the account row's lock as a single one does, after its job's (the order every settling transaction
-- keeps). A call that raises rolls the batch back as a whole; the gateway then makes each of its calls alone.
CREATE FUNCTION gateway_follow_batch(kind text, ps jsonb) RETURNS jsonb LANGUAGE plpgsql
  SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  p jsonb;
  answers jsonb := '[]'::jsonb;
BEGIN
  IF kind NOT IN ('mark', 'settle') THEN RAISE EXCEPTION 'gateway_follow_batch: no calls of kind %', kind; END IF;
  PERFORM 1 FROM jobs WHERE id IN (SELECT (e->>'job_id')::uuid FROM jsonb_array_elements(ps) e) ORDER BY id FOR UPDATE;
  FOR p IN SELECT e.value FROM jsonb_array_elements(ps) WITH ORDINALITY AS e(value, ord) ORDER BY e.ord LOOP
    answers := answers || jsonb_build_array(CASE kind WHEN 'mark' THEN gateway_mark_submitted(p) ELSE gateway_settle_followed(p) END);
  END LOOP;
  RETURN answers;
END $$;

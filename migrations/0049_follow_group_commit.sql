-- Group commit for forwarding's bookkeeping and for the followed settlements (src/jobs/follow.ts,
-- FOLLOW_GROUP_COMMIT_MAX): several calls of gateway_mark_submitted, or of gateway_settle_followed, in one statement and
-- one transaction, each exactly as alone, answered in their order. Both lock every job of the batch first, in id
-- order, so that two batches never wait for each other in a cycle; a settlement then takes the account row's lock as
-- a single one does, after its job's (the order every settling transaction keeps). A call that raises rolls the batch
-- back as a whole; the gateway then makes each of its calls alone.
CREATE FUNCTION gateway_mark_submitted_batch(ps jsonb) RETURNS jsonb LANGUAGE plpgsql
  SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  p jsonb;
  answers jsonb := '[]'::jsonb;
BEGIN
  PERFORM 1 FROM jobs WHERE id IN (SELECT (e->>'job_id')::uuid FROM jsonb_array_elements(ps) e) ORDER BY id FOR UPDATE;
  FOR p IN SELECT e.value FROM jsonb_array_elements(ps) WITH ORDINALITY AS e(value, ord) ORDER BY e.ord LOOP
    answers := answers || jsonb_build_array(gateway_mark_submitted(p));
  END LOOP;
  RETURN answers;
END $$;
--> statement-breakpoint
CREATE FUNCTION gateway_settle_followed_batch(ps jsonb) RETURNS jsonb LANGUAGE plpgsql
  SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  p jsonb;
  answers jsonb := '[]'::jsonb;
BEGIN
  PERFORM 1 FROM jobs WHERE id IN (SELECT (e->>'job_id')::uuid FROM jsonb_array_elements(ps) e) ORDER BY id FOR UPDATE;
  FOR p IN SELECT e.value FROM jsonb_array_elements(ps) WITH ORDINALITY AS e(value, ord) ORDER BY e.ord LOOP
    answers := answers || jsonb_build_array(gateway_settle_followed(p));
  END LOOP;
  RETURN answers;
END $$;

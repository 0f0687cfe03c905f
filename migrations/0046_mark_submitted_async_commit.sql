-- [asyncmark] Forwarding's bookkeeping commits without waiting for its WAL to reach the disk
-- (synchronous_commit = off for its own transaction only; the admission and the settlement keep waiting).
--
-- Why it is safe: what this transaction records (HeyGen accepted the job, its upstream ids) is recovered if it is lost.
-- Only a crash of PostgreSQL itself within a fraction of a second after the commit loses it (never a crash of a
-- gateway process, and never a lost connection); the job is then RESERVED again, with the hold its admission made
-- durable and the lease its admission set, and a worker forwards it again with the same Idempotency-Key (the job's
-- id, src/jobs/follow.ts), which HeyGen answers for 24 hours by replaying its first answer: the same upstream job,
-- never a second one. A later transaction's flush (the job's settlement, any admission) makes this one durable
-- too, WAL being written in order. test/chaos/failover.test.ts restarts PostgreSQL `immediate` under load and checks
-- that HeyGen saw each job once and that the money invariants hold.
--
-- Why: the commit's flush was the larger part of this call's time on the submit path (a fsync of the commit's WAL,
-- which waits for the disk; the call's own work is about 0.1-0.3 ms of CPU), and the gateway answers the caller only
-- after it. The function is otherwise unchanged: the WHOLE latest body (migration 0037) with the lines marked.
CREATE OR REPLACE FUNCTION gateway_mark_submitted(p jsonb) RETURNS jsonb LANGUAGE plpgsql
  SET plan_cache_mode = force_generic_plan  -- [asyncmark] kept from migration 0045 (CREATE OR REPLACE drops it otherwise)
  AS $$
DECLARE
  j jobs%ROWTYPE;
  next_status text;
  at timestamptz := (p->>'now')::timestamptz;
  updated jsonb;
BEGIN
  SELECT * INTO j FROM jobs WHERE id = (p->>'job_id')::uuid FOR UPDATE;
  IF NOT FOUND THEN RETURN jsonb_build_object('outcome', 'not_awaiting', 'job', NULL); END IF;
  next_status := p->'next'->>(j.status::text);
  IF next_status IS NULL THEN RETURN jsonb_build_object('outcome', 'not_awaiting', 'job', gateway_json_row(to_jsonb(j))); END IF;
  -- [asyncmark] This transaction's commit does not wait for its WAL flush (see the top of this migration).
  PERFORM set_config('synchronous_commit', 'off', true);  -- [asyncmark]
  IF jsonb_array_length(p->'items') > 0 THEN
    -- [admitfn] Static SQL (planned once per session, not on every call as EXECUTE was): each item's keys over the
    -- [admitfn] columns' defaults (test/job-path-static-sql.test.ts checks they are the table's), in the array's order.
    INSERT INTO job_items SELECT r.*  -- [admitfn]
      FROM jsonb_array_elements(p->'items') WITH ORDINALITY AS e(item, ord)  -- [admitfn]
      CROSS JOIN LATERAL jsonb_populate_record(NULL::job_items,  -- [admitfn]
        jsonb_build_object('id', gen_random_uuid(), 'status', 'pending', 'created_at', now()) || e.item) r  -- [admitfn]
      ORDER BY e.ord  -- [admitfn]
      ON CONFLICT DO NOTHING;  -- [admitfn]
  END IF;
  UPDATE jobs SET status = next_status::job_status, submitted_at = at, check_attempts = 0,
      next_check_at = at + CASE WHEN j.hinted_at IS NOT NULL THEN interval '0' ELSE ((p->>'poll_min_ms')::bigint * interval '1 millisecond') END,
      hinted_at = NULL, updated_at = at
    WHERE id = j.id
    RETURNING * INTO j;  -- [admitfn] converted below, outside the statement
  updated := (SELECT coalesce(jsonb_object_agg(e.key, CASE WHEN jsonb_typeof(e.value) = 'number' THEN to_jsonb(e.value #>> '{}') ELSE e.value END), '{}'::jsonb) FROM jsonb_each(to_jsonb(j)) e);  -- [admitfn] gateway_json_row's expression, written out (planned once per session)
  -- With the job's items (as its items are read: by creation), so that the answer needs no read-back.
  RETURN jsonb_build_object('outcome', 'submitted', 'job', updated,
    'items', (SELECT coalesce(jsonb_agg(  -- [admitfn] gateway_json_row's expression, written out
                (SELECT coalesce(jsonb_object_agg(e.key, CASE WHEN jsonb_typeof(e.value) = 'number' THEN to_jsonb(e.value #>> '{}') ELSE e.value END), '{}'::jsonb) FROM jsonb_each(to_jsonb(i)) e)  -- [admitfn]
                ORDER BY i.created_at), '[]'::jsonb) FROM job_items i WHERE i.job_id = j.id));  -- [admitfn]
END $$;

-- Custom migration. gateway_mark_submitted inserts the items as the gateway describes them (jsonb rows keyed by
-- column name, every row naming the same columns), so an item HeyGen completed in its create answer (text to
-- speech) is recorded with its duration, cost and answer, and a new item column needs no change here.
CREATE OR REPLACE FUNCTION gateway_mark_submitted(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  j jobs%ROWTYPE;
  next_status text;
  at timestamptz := (p->>'now')::timestamptz;
  updated jsonb;
  cols text;
BEGIN
  SELECT * INTO j FROM jobs WHERE id = (p->>'job_id')::uuid FOR UPDATE;
  IF NOT FOUND THEN RETURN jsonb_build_object('outcome', 'not_awaiting', 'job', NULL); END IF;
  next_status := p->'next'->>(j.status::text);
  IF next_status IS NULL THEN RETURN jsonb_build_object('outcome', 'not_awaiting', 'job', gateway_json_row(to_jsonb(j))); END IF;
  IF jsonb_array_length(p->'items') > 0 THEN
    SELECT string_agg(format('%I', k), ', ' ORDER BY k) INTO cols FROM jsonb_object_keys(p->'items'->0) AS k;
    EXECUTE format('INSERT INTO job_items (%s) SELECT %s FROM jsonb_populate_recordset(NULL::job_items, $1) ON CONFLICT DO NOTHING', cols, cols)
      USING p->'items';
  END IF;
  UPDATE jobs SET status = next_status::job_status, submitted_at = at, check_attempts = 0,
      next_check_at = at + CASE WHEN j.hinted_at IS NOT NULL THEN interval '0' ELSE ((p->>'poll_min_ms')::bigint * interval '1 millisecond') END,
      hinted_at = NULL, updated_at = at
    WHERE id = j.id
    RETURNING gateway_json_row(to_jsonb(jobs.*)) INTO updated;
  -- With the job's items (as its items are read: by creation), so that the answer needs no read-back.
  RETURN jsonb_build_object('outcome', 'submitted', 'job', updated,
    'items', (SELECT coalesce(jsonb_agg(gateway_json_row(to_jsonb(i)) ORDER BY i.created_at), '[]'::jsonb) FROM job_items i WHERE i.job_id = j.id));
END $$;

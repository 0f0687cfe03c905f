-- Custom migration. Money events written by the database itself, in the transaction of the change that causes them
-- (src/notifications/events.ts documents the kinds): every path that changes usage (the admission function, a
-- settlement, a release) goes through usage_rollups, so a trigger there sees every crossing, and a budget change
-- (a raise, a cut, new thresholds) is seen by a trigger on budgets. Events are outbox rows of topic `money_event`,
-- fanned out to the notification channels by the outbox worker.
CREATE OR REPLACE FUNCTION gateway_money_event(p_kind text, p_key text, p_unit uuid, p_data jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  v_id uuid := gen_random_uuid();
BEGIN
  INSERT INTO outbox_events (id, topic, kind, dedupe_key, payload, destination, org_unit_id, max_attempts, next_attempt_at, created_at)
    VALUES (v_id, 'money_event', p_kind, p_key,
      jsonb_build_object('id', v_id, 'kind', p_kind, 'orgUnitId', p_unit, 'occurredAt', now(), 'data', p_data),
      '{}'::jsonb, p_unit, 100, now(), now())
    ON CONFLICT (topic, dedupe_key) DO NOTHING;
  IF FOUND THEN
    -- Delivered at commit, only if the cause commits: live listeners (GraphQL subscriptions) read the row by its id.
    PERFORM pg_notify('gateway_money_event', v_id::text);
  END IF;
END $$;
--> statement-breakpoint
-- One budget's thresholds over one window (YYYY-MM..YYYY-MM): usage is every open hold plus what settled in the
-- window (as the admission counts it). A threshold flips to crossed once (its state row arbitrates between
-- concurrent transactions: the second waits for the first and then finds it crossed); `may_resolve` (a budget
-- change) flips crossed thresholds that usage is now under back, with a `resolved` event.
CREATE OR REPLACE FUNCTION gateway_budget_alerts(b budgets, w_from text, w_to text, may_resolve boolean) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  used bigint;
  th int;
  gen int;
  data jsonb;
BEGIN
  SELECT coalesce(sum(r.reserved_micro_cs), 0) + coalesce(sum(r.settled_micro_cs) FILTER (WHERE r.period BETWEEN w_from AND w_to), 0)
    INTO used FROM usage_rollups r
    WHERE r.org_unit_id = b.org_unit_id AND (b.account_id IS NULL OR r.account_id = b.account_id);
  FOR th IN SELECT DISTINCT x FROM unnest(b.alert_thresholds) AS x ORDER BY x LOOP
    gen := NULL;
    data := jsonb_build_object('budgetId', b.id, 'orgUnitId', b.org_unit_id, 'accountId', b.account_id, 'window', b.window,
      'enforcement', b.enforcement, 'threshold', th, 'usedMicroCs', used::text, 'limitMicroCs', b.limit_micro_cs::text,
      'windowFrom', w_from, 'windowTo', w_to);
    IF used > 0 AND used::numeric * 100 >= th::numeric * b.limit_micro_cs THEN
      INSERT INTO budget_alert_states (budget_id, window_from, window_to, threshold, crossed, generation, changed_at)
        VALUES (b.id, w_from, w_to, th, true, 1, now())
        ON CONFLICT (budget_id, window_from, window_to, threshold) DO UPDATE
          SET crossed = true, generation = budget_alert_states.generation + 1, changed_at = now()
          WHERE NOT budget_alert_states.crossed
        RETURNING generation INTO gen;
      IF gen IS NOT NULL THEN
        PERFORM gateway_money_event('budget.threshold_crossed',
          format('budget.threshold_crossed:%s:%s:%s:%s:%s', b.id, w_from, w_to, th, gen), b.org_unit_id, data);
      END IF;
    ELSIF may_resolve THEN
      UPDATE budget_alert_states SET crossed = false, changed_at = now()
        WHERE budget_id = b.id AND window_from = w_from AND window_to = w_to AND threshold = th AND crossed
        RETURNING generation INTO gen;
      IF gen IS NOT NULL THEN
        PERFORM gateway_money_event('budget.threshold_resolved',
          format('budget.threshold_resolved:%s:%s:%s:%s:%s', b.id, w_from, w_to, th, gen), b.org_unit_id, data);
      END IF;
    END IF;
  END LOOP;
END $$;
--> statement-breakpoint
-- The window a budget covers for usage booked in `p` of account `acc`: MONTHLY that month, CONTRACT_TERM the
-- account's term (an all-accounts or term-less budget: the lifetime), LIFETIME everything.
CREATE OR REPLACE FUNCTION gateway_budget_window(b budgets, acc uuid, p text, OUT w_from text, OUT w_to text) LANGUAGE plpgsql AS $$
DECLARE
  t account_terms%ROWTYPE;
BEGIN
  w_from := '0000-01';
  w_to := '9999-12';
  IF b.window = 'MONTHLY' THEN
    w_from := p;
    w_to := p;
  ELSIF b.window = 'CONTRACT_TERM' AND b.account_id IS NOT NULL THEN
    SELECT * INTO t FROM account_terms WHERE account_id = b.account_id AND effective_from <= p ORDER BY effective_from DESC LIMIT 1;
    IF FOUND AND t.term_start IS NOT NULL AND t.term_end IS NOT NULL THEN
      w_from := substr(t.term_start, 1, 7);
      w_to := substr(t.term_end, 1, 7);
    END IF;
  END IF;
END $$;
--> statement-breakpoint
-- After a rollup grew (a hold, or a settlement above its hold): the budgets of the unit, and at the root the
-- account's included pool (`pool.crossed` once per account and period, when settled usage passes it).
CREATE OR REPLACE FUNCTION gateway_rollup_money_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  b budgets%ROWTYPE;
  w record;
  t account_terms%ROWTYPE;
  is_root boolean;
  billing text;
BEGIN
  IF TG_OP = 'INSERT' OR NEW.reserved_micro_cs + NEW.settled_micro_cs > OLD.reserved_micro_cs + OLD.settled_micro_cs THEN
    FOR b IN SELECT * FROM budgets x WHERE x.org_unit_id = NEW.org_unit_id AND (x.account_id IS NULL OR x.account_id = NEW.account_id) ORDER BY x.id LOOP
      SELECT * INTO w FROM gateway_budget_window(b, NEW.account_id, NEW.period);
      PERFORM gateway_budget_alerts(b, w.w_from, w.w_to, false);
    END LOOP;
  END IF;
  IF TG_OP = 'INSERT' OR NEW.settled_micro_cs > OLD.settled_micro_cs THEN
    SELECT u.parent_id IS NULL INTO is_root FROM org_units u WHERE u.id = NEW.org_unit_id;
    IF is_root THEN
      SELECT a.billing_model::text INTO billing FROM accounts a WHERE a.id = NEW.account_id;
      SELECT * INTO t FROM account_terms WHERE account_id = NEW.account_id AND effective_from <= NEW.period ORDER BY effective_from DESC LIMIT 1;
      IF billing = 'USAGE_BASED' AND FOUND AND t.included_micro_cs IS NOT NULL AND NEW.settled_micro_cs > t.included_micro_cs
         AND (TG_OP = 'INSERT' OR OLD.settled_micro_cs <= t.included_micro_cs) THEN
        PERFORM gateway_money_event('pool.crossed', format('pool.crossed:%s:%s', NEW.account_id, NEW.period), NEW.org_unit_id,
          jsonb_build_object('accountId', NEW.account_id, 'period', NEW.period, 'includedMicroCs', t.included_micro_cs::text,
            'settledMicroCs', NEW.settled_micro_cs::text));
      END IF;
    END IF;
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER usage_rollups_money_events AFTER INSERT OR UPDATE ON usage_rollups
  FOR EACH ROW EXECUTE FUNCTION gateway_rollup_money_events();
--> statement-breakpoint
-- A budget's limit or thresholds changed: its latest window is judged again (a cut may cross, a raise resolves).
CREATE OR REPLACE FUNCTION gateway_budget_money_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  s record;
BEGIN
  SELECT window_from, window_to INTO s FROM budget_alert_states WHERE budget_id = NEW.id ORDER BY window_to DESC, window_from DESC LIMIT 1;
  IF FOUND THEN
    PERFORM gateway_budget_alerts(NEW, s.window_from, s.window_to, true);
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER budgets_money_events AFTER UPDATE OF limit_micro_cs, alert_thresholds, enforcement ON budgets
  FOR EACH ROW EXECUTE FUNCTION gateway_budget_money_events();
--> statement-breakpoint
-- `budget.refused` (once per budget and hour): a refusal writes nothing else, so the event is written by the same
-- statement that refused: the gateway passes the admission functions' answer (they stay as they are) through
-- gateway_noted_admission(s), which writes the event when the answer is a refusal. The hour is the
-- gateway's clock at admission (`p.job.created_at`).
CREATE OR REPLACE FUNCTION gateway_note_refusal(p jsonb, r jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  v_hour text;
  v_budget uuid;
  v_unit uuid;
  v_limit text;
BEGIN
  IF r->>'outcome' NOT IN ('budget', 'pool') THEN RETURN; END IF;
  v_hour := to_char((p->'job'->>'created_at')::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24');
  IF r->>'outcome' = 'budget' THEN
    v_budget := (r->'budget'->>'id')::uuid;
    v_unit := (r->'budget'->>'org_unit_id')::uuid;
    v_limit := r->'budget'->>'limit_micro_cs';
  ELSE
    v_budget := (r->>'budget_id')::uuid;
    v_unit := (r->>'org_unit_id')::uuid;
    v_limit := r->>'limit';
  END IF;
  PERFORM gateway_money_event('budget.refused',
    format('budget.refused:%s:%s', coalesce(v_budget::text, 'pool:' || (p->>'account_id')), v_hour), v_unit,
    jsonb_build_object('budgetId', v_budget, 'orgUnitId', v_unit, 'accountId', p->>'account_id',
      'reason', CASE WHEN r->>'outcome' = 'budget' THEN 'BUDGET' ELSE 'POOL' END, 'hour', v_hour || ':00:00Z',
      'firstRequestedMicroCs', p->>'requested', 'availableMicroCs', r->>'available', 'limitMicroCs', v_limit));
END $$;
--> statement-breakpoint
-- The admission's answer, passed through after noting a refusal: `select gateway_noted_admission(q.p, gateway_admit(q.p))`.
CREATE OR REPLACE FUNCTION gateway_noted_admission(p jsonb, r jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  PERFORM gateway_note_refusal(p, r);
  RETURN r;
END $$;
--> statement-breakpoint
-- The same for a batch: `select gateway_noted_admissions(q.ps, gateway_admit_batch(q.ps))`.
CREATE OR REPLACE FUNCTION gateway_noted_admissions(ps jsonb, rs jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  i int;
BEGIN
  FOR i IN 0 .. jsonb_array_length(rs) - 1 LOOP
    PERFORM gateway_note_refusal(ps->i, rs->i);
  END LOOP;
  RETURN rs;
END $$;

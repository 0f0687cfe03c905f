// One job's whole life through the gateway as the benchmark runs it (webhooks on, the simulator rendering at once):
// submitJob, HeyGen's webhook, the status read and the settlement. The upstream read's outcome (the items' states and
// the settlement) is one call of `gateway_settle_followed`, with the writes settleJob makes: counted at the driver
// (every `query` a pg client of this process sends to the gateway's database, the listener's excepted), and checked
// row by row.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newRowId } from '../src/primitives/ids.js';
import pg from 'pg';
import { sql } from 'drizzle-orm';
import { planningsPerStep } from './support/planning.js';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { logStatements, type StatementLog } from './support/statement-log.js';
import { createTree, issueServiceToken, setBudget, SUBMIT, avatarRequest, type Tree } from './support/fixtures.js';
import { queryRows } from '../src/db/client.js';
import { expectCountersEqualLedger } from './support/invariants.js';
import { dayOf, periodOf } from '../src/primitives/period.js';
import { formatDecimal, parseDecimalRational } from '../src/primitives/money.js';
import * as Q from '../src/primitives/rational.js';

let h: Harness;
let tree: Tree;
let service: { token: string; id: string };
const captured: Record<string, string> = {};
let log: StatementLog;

beforeAll(async () => {
  log = logStatements();
  // The parameter of each job-path function's last call by the gateway (its named statements; the replays below
  // send plain text), to replay a job by hand.
  log.onStatement = (text, query) => {
    const fn = /(gateway_admit|gateway_mark_submitted|gateway_settle_followed)\(/.exec(text)?.[1];
    const named = typeof query === 'object' ? (query as { name?: string; values?: unknown[] }) : undefined;
    if (fn && named?.name && typeof named.values?.[0] === 'string') captured[fn] = named.values[0];
  };
  h = await startHarness({ callbacks: true, sim: { renderMs: 0 } });
  log.database = new URL(h.database.url).pathname.slice(1);
  tree = await createTree(h, { name: 'Lifecycle' });
  service = await issueServiceToken(h, tree.projectId, 'counted');
});

afterAll(async () => {
  log.restore();
  await h?.close();
});

const submit = () => h.gql(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } }, service.token);
const uuidOf = (globalId: string) => Buffer.from(globalId, 'base64').toString('utf8').split(':')[1]!;
const statusOf = async (id: string) => (await queryRows<{ status: string }>(h.services.db, sql`select status from jobs where id = ${id}::uuid`))[0]?.status;

describe('a followed job settled by one call', () => {
  it('settles with the writes of settleJob, in one statement after the status read', async () => {
    // The first job warms the process (token, project, account, prepared statements).
    const first = uuidOf((await submit()).data.submitJob.job.id);
    await waitFor(async () => (await statusOf(first)) === 'SUCCEEDED');
    log.sent.length = 0;
    const id = uuidOf((await submit()).data.submitJob.job.id);
    await waitFor(async () => (await statusOf(id)) === 'SUCCEEDED');
    const statements = [...log.sent];
    const shown = statements.map((s) => s.replace(/\s+/g, ' ').slice(0, 140)).join('\n');
    // Of this job's own: the admission, forwarding's bookkeeping, the webhook's hint, the status read (the job, its
    // account and its running items, one statement) and the one settling call; no transaction of the gateway's own
    // locks the job any more.
    expect(statements.filter((s) => /gateway_settle_followed/.test(s)), shown).toHaveLength(1);
    expect(statements.filter((s) => /insert into "ledger_entries"|from "jobs" .* for update/is.test(s)), shown).toEqual([]);

    const [job] = await queryRows<Record<string, string | null>>(
      h.services.db,
      sql`select status, reserved_micro_cs::text, actual_micro_cs::text, actual_seconds::text, overrun_micro_cs::text, settled_period,
                 settled_at is not null as settled, next_check_at, failure_code, failure_message, estimated_micro_cs::text, hold_period, hold_day::text, project_id::text, account_id::text, kind
            from jobs where id = ${id}::uuid`,
    );
    const items = await queryRows<{ status: string; cost: string; duration: string }>(
      h.services.db,
      sql`select status, cost_micro_cs::text as cost, duration_seconds::text as duration from job_items where job_id = ${id}::uuid`,
    );
    expect(items.length).toBeGreaterThan(0);
    expect(items.every((i) => i.status === 'completed')).toBe(true);
    const actual = items.reduce((s, i) => s + BigInt(i.cost), 0n);
    const now = new Date();
    expect(job).toMatchObject({
      status: 'SUCCEEDED',
      reserved_micro_cs: '0',
      actual_micro_cs: actual.toString(),
      // As settleJob writes it: the exact sum of the completed items' seconds, without trailing zeros.
      actual_seconds: formatDecimal(Q.sum(items.map((i) => parseDecimalRational(i.duration)))),
      overrun_micro_cs: '0',
      settled_period: periodOf(now, 'UTC'),
      settled: true,
      next_check_at: null,
      failure_code: null,
      failure_message: null,
    });
    const ledger = await queryRows<{ entry_type: string; amount: string; period: string; day: string }>(
      h.services.db,
      sql`select entry_type, amount_micro_cs::text as amount, period, day::text from ledger_entries where job_id = ${id}::uuid order by id`,
    );
    expect(ledger).toEqual([
      { entry_type: 'HOLD', amount: job!.estimated_micro_cs, period: job!.hold_period, day: job!.hold_day },
      { entry_type: 'RELEASE', amount: job!.estimated_micro_cs, period: job!.hold_period, day: job!.hold_day },
      { entry_type: 'DEBIT', amount: actual.toString(), period: periodOf(now, 'UTC'), day: dayOf(now, 'UTC') },
    ]);
    const [event] = await queryRows<{ payload: { kind: string; orgUnitId: string; data: Record<string, unknown> } }>(
      h.services.db,
      sql`select payload from outbox_events where topic = 'money_event' and dedupe_key = ${`job.finished:${id}`}`,
    );
    expect(event!.payload).toMatchObject({
      kind: 'job.finished',
      orgUnitId: job!.project_id,
      data: {
        jobId: id, projectId: job!.project_id, accountId: job!.account_id, kind: job!.kind, status: 'SUCCEEDED',
        estimatedMicroCs: job!.estimated_micro_cs, actualMicroCs: actual.toString(), settledPeriod: periodOf(now, 'UTC'),
      },
    });
    await expectCountersEqualLedger(h.services.db);
  });

  it('takes the hold back and settles the usage in one update of each rollup row, judging no budget again', async () => {
    // Budgets with alert thresholds (50, 80, 100 % by default) on the project and its team: a growth of their rows'
    // total is judged against them (the rollups' money-event trigger).
    await setBudget(h, { orgUnitId: tree.teamId, accountId: tree.accountId, window: 'MONTHLY', limitCreditSeconds: '100000000' });
    await setBudget(h, { orgUnitId: tree.projectId, window: 'LIFETIME', enforcement: 'SOFT', limitCreditSeconds: '100000000' });
    const id = uuidOf((await submit()).data.submitJob.job.id);
    await waitFor(async () => (await statusOf(id)) === 'SUCCEEDED');
    // The same job's three calls replayed on a connection of the test's own, the settlement in a transaction whose
    // own counters are read before it commits.
    const client = new pg.Client({ connectionString: h.database.url });
    await client.connect();
    try {
      const settle = await replayUntilSettlement(client);
      const [{ n: pathLength }] = (await client.query<{ n: number }>('select cardinality(path) as n from org_units where id = $1', [uuidOf(tree.projectId)])).rows as [{ n: number }];
      await client.query(`set track_functions = 'pl'`);
      // This session's counters not yet reported (the replayed admission's among them) are in pg_stat_get_xact_*:
      // read before and after the settlement, in its transaction (nothing is reported inside one).
      const countersNow = async () =>
        (
          await client.query<{ updated: string; inserted: string; judged: string }>(
            `select pg_stat_get_xact_tuples_updated('usage_rollups'::regclass)::text as updated,
                    pg_stat_get_xact_tuples_inserted('usage_rollups'::regclass)::text as inserted,
                    coalesce(pg_stat_get_xact_function_calls('gateway_rollup_money_events'::regproc), 0)::text as judged`,
          )
        ).rows[0]!;
      await client.query('begin');
      const before = await countersNow();
      const settled = (await client.query<{ r: { outcome: string } }>('select gateway_settle_followed($1::jsonb) as r', [JSON.stringify(settle)])).rows[0]!.r;
      const after = await countersNow();
      const counts = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, Number(v) - Number(before[k as keyof typeof before])]));
      await client.query('commit');
      expect(settled.outcome).toBe('settled');
      // One new version of each of the path's rows (it was two: the hold taken back, then the usage added), and the
      // total did not grow (the job cost no more than its hold): no budget judged again.
      expect(counts).toEqual({ updated: pathLength, inserted: 0, judged: 0 });
    } finally {
      await client.end();
    }
    await expectCountersEqualLedger(h.services.db);
  });

  it('settles a job held in an earlier period: the hold taken back there, the usage added to the current one', async () => {
    // A job admitted before the month's end and settled after it (its hold replayed into the month before).
    const client = new pg.Client({ connectionString: h.database.url });
    await client.connect();
    try {
      // The month before the current one, on its last day.
      const [year, month] = periodOf(new Date(), 'UTC').split('-').map(Number) as [number, number];
      const last = new Date(Date.UTC(year, month - 1, 0));
      const earlier = { period: last.toISOString().slice(0, 7), day: last.toISOString().slice(0, 10) };
      const settle = await replayUntilSettlement(client, earlier);
      const rows = async (period: string) =>
        (await client.query<{ unit: string; reserved: string; settled: string }>(
          `select org_unit_id::text as unit, reserved_micro_cs::text as reserved, settled_micro_cs::text as settled
             from usage_rollups where period = $1 order by org_unit_id`, [period])).rows;
      const held = await rows(earlier.period);
      expect(held.length).toBeGreaterThan(0);
      expect(held.every((r) => BigInt(r.reserved) > 0n && r.settled === '0')).toBe(true);
      const current = await rows(settle.period as string);
      const settled = (await client.query<{ r: { outcome: string; actual_micro_cs: string } }>('select gateway_settle_followed($1::jsonb) as r', [JSON.stringify(settle)])).rows[0]!.r;
      expect(settled.outcome).toBe('settled');
      expect((await rows(earlier.period)).map((r) => [r.unit, r.reserved, r.settled])).toEqual(held.map((r) => [r.unit, '0', '0']));
      const after = new Map((await rows(settle.period as string)).map((r) => [r.unit, r]));
      for (const unit of held.map((r) => r.unit)) {
        const before = current.find((r) => r.unit === unit);
        expect(BigInt(after.get(unit)!.settled) - BigInt(before?.settled ?? '0'), unit).toBe(BigInt(settled.actual_micro_cs));
        expect(after.get(unit)!.reserved, unit).toBe(before?.reserved ?? '0');
      }
      const ledger = (await client.query<{ entry_type: string; period: string }>(
        `select entry_type::text, period from ledger_entries where job_id = $1 order by id`, [settle.job_id])).rows;
      expect(ledger).toEqual([
        { entry_type: 'HOLD', period: earlier.period },
        { entry_type: 'RELEASE', period: earlier.period },
        { entry_type: 'DEBIT', period: settle.period },
      ]);
    } finally {
      await client.end();
    }
    await expectCountersEqualLedger(h.services.db);
  });
});

describe("the job path's statements are planned once per session (migration generic_plans)", () => {
  // The functions the gateway calls on a job's path, and the gateway's trigger functions, run with generic plans: left
  // to PostgreSQL, the statements whose generic plan looked dearer than their custom plans were planned again at every
  // execution. The queue's dispatch keeps PostgreSQL's choice.
  const ENTRY_FUNCTIONS = ['gateway_admit', 'gateway_admit_batch', 'gateway_noted_admission', 'gateway_noted_admissions', 'gateway_mark_submitted', 'gateway_settle_followed', 'gateway_follow_batch', 'gateway_money_event'];
  // Trigger functions that only raise (append-only guards): nothing to plan.
  const RAISE_ONLY = ['ledger_entries_append_only', 'billing_append_only', 'billing_statements_immutable', 'org_units_fixed'];
  const SETTING = 'plan_cache_mode=force_generic_plan';

  it('carry the setting, every trigger function too (CREATE OR REPLACE without it drops it)', async () => {
    const client = new pg.Client({ connectionString: h.database.url });
    await client.connect();
    const { rows } = await client.query<{ name: string; config: string[] | null; trigger: boolean }>(
      `select p.proname as name, p.proconfig as config, p.prorettype = 'trigger'::regtype as trigger
         from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'public' and (p.proname = any($1) or p.prorettype = 'trigger'::regtype)`,
      [ENTRY_FUNCTIONS],
    ).finally(() => client.end());
    expect(rows.filter((r) => !r.trigger).map((r) => r.name).sort()).toEqual([...ENTRY_FUNCTIONS].sort());
    const triggers = rows.filter((r) => r.trigger && !RAISE_ONLY.includes(r.name));
    expect(triggers.length).toBeGreaterThan(5);
    for (const r of [...rows.filter((r) => !r.trigger), ...triggers]) expect(r.config, r.name).toContain(SETTING);
  });

  it('a warm session plans only the three calls themselves, not their statements, for each job', async () => {
    // A HARD budget on the path: its look-up and lock in the admission is what PostgreSQL kept re-planning.
    await setBudget(h, { orgUnitId: tree.projectId, window: 'MONTHLY', limitCreditSeconds: '100000000' });
    const fresh = uuidOf((await submit()).data.submitJob.job.id); // the calls replayed below are this job's (with the budget)
    await waitFor(async () => (await statusOf(fresh)) === 'SUCCEEDED');
    // Each planning PostgreSQL does for a session is one notice (log_planner_stats); the replayed calls are plain-text
    // statements, so each of the three is planned once itself. Per job, over ten jobs of a new session, the quietest
    // of the last four (an autovacuum's statistics refresh re-plans a table's statements once).
    const plannedPerJob = (): Promise<number[]> =>
      planningsPerStep(h.database.url, 10, async (client) => {
        const settle = await replayUntilSettlement(client);
        const settled = (await client.query<{ r: { outcome: string } }>('select gateway_settle_followed($1::jsonb) as r', [JSON.stringify(settle)])).rows[0]!.r;
        expect(settled.outcome).toBe('settled');
      });
    // The control: the same jobs with the functions' setting taken away (this file's own database), then given back.
    const admin = new pg.Client({ connectionString: h.database.url });
    await admin.connect();
    const { rows: configured } = await admin.query<{ fn: string }>(
      `select p.oid::regprocedure::text as fn from pg_proc p where $1 = any(p.proconfig)`, [SETTING]);
    expect(configured.length).toBeGreaterThan(10);
    let withoutSetting: number[];
    try {
      try {
        for (const { fn } of configured) await admin.query(`alter function ${fn} reset plan_cache_mode`);
        withoutSetting = await plannedPerJob();
      } finally {
        // Given back whatever happened (each one tried; the first failure, if any, reported after).
        const failed = (await Promise.allSettled(configured.map(({ fn }) => admin.query(`alter function ${fn} set plan_cache_mode = force_generic_plan`))))
          .find((r) => r.status === 'rejected');
        if (failed) throw (failed as PromiseRejectedResult).reason;
      }
    } finally {
      await admin.end();
    }
    const withSetting = await plannedPerJob();
    // Left to PostgreSQL, each statement is planned afresh for its first five executions in a session (and some at
    // every one); with the setting, once. Jobs 2 to 6 of a new session: about 360 plannings against 15.
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    const shown = `without: ${withoutSetting.join(', ')}; with: ${withSetting.join(', ')}`;
    expect(sum(withoutSetting.slice(1, 6)), shown).toBeGreaterThan(100);
    expect(sum(withSetting.slice(1, 6)), shown).toBeLessThan(sum(withoutSetting.slice(1, 6)) / 3);
    expect(Math.min(...withSetting.slice(-4)), shown).toBe(3);
    await expectCountersEqualLedger(h.services.db);
  });
});

/**
 * The last job's admission and forwarding replayed on `client` as a new job (its hold in `holdPeriod` on `holdDay`
 * when given), from the parameters the gateway sent; returns the parameter that settles it, not yet sent.
 */
async function replayUntilSettlement(client: pg.Client, hold?: { period: string; day: string }): Promise<Record<string, unknown>> {
  if (!captured.gateway_admit || !captured.gateway_mark_submitted || !captured.gateway_settle_followed) {
    // No job has gone through the gateway yet (the test runs alone): one does, and its calls are captured.
    const id = uuidOf((await submit()).data.submitJob.job.id);
    await waitFor(async () => (await statusOf(id)) === 'SUCCEEDED');
  }
  const job = newRowId();
  const admit = JSON.parse(captured.gateway_admit!) as { job: { id: string; hold_period: string; hold_day: string }; audit: { entity_id: string }; period: string; day: string };
  admit.job.id = job;
  admit.audit.entity_id = job;
  if (hold) {
    Object.assign(admit, hold);
    Object.assign(admit.job, { hold_period: hold.period, hold_day: hold.day });
  }
  const admitted = (await client.query<{ r: { outcome: string } }>('select gateway_admit($1::jsonb) as r', [JSON.stringify(admit)])).rows[0]!.r;
  expect(admitted.outcome).toBe('admitted');
  const mark = JSON.parse(captured.gateway_mark_submitted!) as { job_id: string; poll_min_ms: number; items: { id: string; job_id: string; upstream_id: string }[] };
  mark.job_id = job;
  mark.poll_min_ms = 3_600_000; // its first read an hour away: the gateway's worker leaves it to the test
  mark.items[0]!.job_id = job;
  mark.items[0]!.upstream_id = `replayed-${job}`;
  mark.items[0]!.id = newRowId();
  const marked = (await client.query<{ r: { outcome: string; items: { id: string }[] } }>('select gateway_mark_submitted($1::jsonb) as r', [JSON.stringify(mark)])).rows[0]!.r;
  expect(marked.outcome).toBe('submitted');
  const settle = JSON.parse(captured.gateway_settle_followed!) as { job_id: string; updates: { id: string }[] };
  settle.job_id = job;
  settle.updates[0]!.id = marked.items[0]!.id;
  return settle;
}

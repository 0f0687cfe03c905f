// The job path's functions insert the job, its audit event and its items by static SQL (planned once per session;
// EXECUTE format(...) was parsed and planned on every call): each row is the keys the gateway sent over the columns'
// defaults, which the functions spell. A column given a default (or a default changed) must be spelled there too:
// this test names the defaults the functions spell and fails when the tables' differ.
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness.js';

let h: Harness;
let client: pg.Client;

beforeAll(async () => {
  h = await startHarness({ workers: false });
  client = new pg.Client({ connectionString: h.database.url });
  await client.connect();
});

afterAll(async () => {
  await client?.end();
  await h?.close();
});

// Table → column → its default, as the functions spell it (gateway_admit: jobs and audit_events;
// gateway_mark_submitted: job_items).
const SPELLED: Record<string, { fn: string; defaults: Record<string, { table: string; spelled: string }> }> = {
  jobs: {
    fn: 'gateway_admit',
    defaults: {
      id: { table: 'gen_random_uuid()', spelled: `'id', gen_random_uuid()` },
      submit_attempts: { table: '0', spelled: `'submit_attempts', 0` },
      check_attempts: { table: '0', spelled: `'check_attempts', 0` },
      created_at: { table: 'now()', spelled: `'created_at', now()` },
      updated_at: { table: 'now()', spelled: `'updated_at', now()` },
      tags: { table: `'{}'::jsonb`, spelled: `'tags', '{}'::jsonb` },
    },
  },
  audit_events: {
    fn: 'gateway_admit',
    defaults: {
      id: { table: `nextval('audit_events_id_seq'::regclass)`, spelled: `'id', nextval('audit_events_id_seq')` },
      created_at: { table: 'now()', spelled: `'created_at', now()` },
    },
  },
  job_items: {
    fn: 'gateway_mark_submitted',
    defaults: {
      id: { table: 'gen_random_uuid()', spelled: `'id', gen_random_uuid()` },
      status: { table: `'pending'::text`, spelled: `'status', 'pending'` },
      created_at: { table: 'now()', spelled: `'created_at', now()` },
    },
  },
};

it('every column default of jobs, audit_events and job_items is the one the functions spell', async () => {
  for (const [table, { fn, defaults }] of Object.entries(SPELLED)) {
    const { rows } = await client.query<{ column_name: string; column_default: string }>(
      `select column_name, column_default from information_schema.columns
        where table_schema = 'public' and table_name = $1 and column_default is not null order by column_name`,
      [table],
    );
    const actual = Object.fromEntries(rows.map((r) => [r.column_name, r.column_default]));
    const expected = Object.fromEntries(Object.entries(defaults).map(([c, d]) => [c, d.table]));
    expect(actual, `${table}: a column default changed; spell it in ${fn}'s static INSERT too`).toEqual(expected);
    const { rows: defs } = await client.query<{ def: string }>(`select pg_get_functiondef(p.oid) as def from pg_proc p where p.proname = $1`, [fn]);
    expect(defs, fn).toHaveLength(1);
    for (const [column, d] of Object.entries(defaults)) expect(defs[0]!.def, `${fn}: ${table}.${column}`).toContain(d.spelled);
  }
});

it('no function of the job path builds SQL at run time', async () => {
  for (const fn of ['gateway_admit', 'gateway_mark_submitted', 'gateway_settle_followed']) {
    const { rows } = await client.query<{ def: string }>(`select pg_get_functiondef(p.oid) as def from pg_proc p where p.proname = $1`, [fn]);
    expect(rows, fn).toHaveLength(1);
    const code = rows[0]!.def.replace(/--.*$/gm, ''); // comments may name what was replaced
    expect(code, fn).not.toMatch(/\bEXECUTE\b/);
  }
});

// A LANGUAGE sql function PostgreSQL does not inline is parsed and planned again by every query execution that calls
// it (per transaction at best), where PL/pgSQL keeps its plans for the session: on the money path (the admission, the
// ledger's and the rollups' triggers, their WHEN look-ups) such a call cost more than the query it ran. The small
// helpers called there are inlined (a function declared IMMUTABLE over a STABLE body, as an enum's cast to text, is
// not) or PL/pgSQL.
it('the money path plans its helper functions once: inlined, or PL/pgSQL', async () => {
  const { rows: plan } = await client.query<{ 'QUERY PLAN': string }>(`explain (verbose, costs off) select gateway_budget_by_day(b) from budgets b`);
  const text = plan.map((r) => r['QUERY PLAN']).join('\n');
  expect(text, 'gateway_budget_by_day is inlined').not.toMatch(/gateway_budget_by_day/);
  expect(text).toMatch(/window/);
  const { rows } = await client.query<{ name: string; language: string }>(
    `select p.proname as name, l.lanname as language from pg_proc p join pg_language l on l.oid = p.prolang
      where p.proname = any($1) order by 1`,
    [['gateway_budget_granted', 'gateway_budget_now', 'gateway_pool_included']],
  );
  expect(rows).toEqual([
    { name: 'gateway_budget_granted', language: 'plpgsql' },
    { name: 'gateway_budget_now', language: 'plpgsql' },
    { name: 'gateway_pool_included', language: 'plpgsql' },
  ]);
});

// Admission, the queue's pick and the dispatcher count an account's running jobs under its lock. They must read them
// through the partial index jobs_in_flight, not scan the account's (or every account's) whole history: each states
// the index's own predicate, the literal list IN_FLIGHT_STATUSES spells (migration 0036).
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { IN_FLIGHT_STATUSES } from '../src/jobs/lifecycle.js';
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

const literal = `(${IN_FLIGHT_STATUSES.map((s) => `'${s}'`).join(', ')})`;

it('jobs_in_flight indexes exactly the statuses IN_FLIGHT_STATUSES names', async () => {
  const { rows } = await client.query<{ indexdef: string }>(`select indexdef from pg_indexes where indexname = 'jobs_in_flight'`);
  const listed = [...rows[0]!.indexdef.matchAll(/'([A-Z_]+)'/g)].map((m) => m[1]);
  expect(listed.sort()).toEqual([...IN_FLIGHT_STATUSES].sort());
});

it('admission, the queue pick and the dispatcher count running jobs with the index predicate, which the index serves', async () => {
  for (const fn of ['gateway_admit', 'gateway_queue_pick', 'gateway_dispatch']) {
    const { rows } = await client.query<{ def: string }>(`select pg_get_functiondef(p.oid) as def from pg_proc p where p.proname = $1`, [fn]);
    expect(rows, fn).toHaveLength(1);
    expect(rows[0]!.def, fn).toContain(`status IN ${literal}`);
  }
  // The statement's shape in those functions, planned generically (as PL/pgSQL does after a few calls), with
  // sequential scans ruled out: before, no plan without one existed.
  await client.query('begin');
  try {
    await client.query('set local enable_seqscan = off');
    await client.query(`set local plan_cache_mode = force_generic_plan`);
    await client.query(`prepare running(uuid, text[]) as
      select count(*) from jobs where account_id = $1 and status in ${literal.replaceAll(', ', ',')} and status::text = any($2)`);
    const plan = (await client.query<{ 'QUERY PLAN': string }>(`explain execute running('00000000-0000-0000-0000-000000000000', '{RESERVED}')`)).rows
      .map((r) => r['QUERY PLAN'])
      .join('\n');
    expect(plan).toContain('jobs_in_flight');
    expect(plan).not.toContain('Seq Scan');
  } finally {
    await client.query('rollback');
    await client.query('deallocate all');
  }
});

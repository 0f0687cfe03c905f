// Every index costs each insert (and each non-HOT update) of its table one more index entry: an index whose key
// columns lead another index of the same table serves no look-up the other does not, and is only a cost (migration
// 0048 dropped ledger_job (job_id), led by ledger_one_per_job_type (job_id, entry_type): one index entry fewer for each
// of a job's ledger entries). A unique index is never redundant (it enforces something), nor a partial one.
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

it('no plain index is led by another index of its table (same access method, same columns first)', async () => {
  const { rows } = await client.query<{ tbl: string; name: string; am: string; keys: string; uniq: boolean; partial: boolean }>(`
    select c.relname as tbl, i.relname as name, am.amname as am, x.indkey::text as keys, x.indisunique as uniq,
           x.indpred is not null as partial
    from pg_index x
    join pg_class i on i.oid = x.indexrelid
    join pg_class c on c.oid = x.indrelid
    join pg_namespace n on n.oid = c.relnamespace
    join pg_am am on am.oid = i.relam
    where n.nspname = 'public' and x.indexprs is null`);
  const redundant: string[] = [];
  for (const a of rows) {
    if (a.uniq || a.partial) continue;
    for (const b of rows) {
      if (b === a || b.tbl !== a.tbl || b.am !== a.am || b.am !== 'btree' || b.partial) continue;
      if (`${b.keys} `.startsWith(`${a.keys} `)) redundant.push(`${a.tbl}.${a.name} (${a.keys}) is led by ${b.name} (${b.keys})`);
    }
  }
  expect(redundant).toEqual([]);
});

it("a job's ledger entries are found through ledger_one_per_job_type", async () => {
  await client.query('begin');
  try {
    await client.query('set local enable_seqscan = off');
    const plan = (await client.query<{ 'QUERY PLAN': string }>(`explain select * from ledger_entries where job_id = '00000000-0000-0000-0000-000000000000'`)).rows
      .map((r) => r['QUERY PLAN'])
      .join('\n');
    expect(plan).toContain('ledger_one_per_job_type');
  } finally {
    await client.query('rollback');
  }
});

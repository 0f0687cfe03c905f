// The request's loader (src/graphql/context.ts): one promise per key while it loads, the value at once after; a key
// cleared while its load runs is not given that load's (stale) value afterwards.
import { expect, it } from 'vitest';
import { RequestLoader } from '../src/graphql/context.js';

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

it('waits once per key, answers at once when loaded, and a cleared key keeps the newer load', async () => {
  const batches: { keys: readonly string[]; answer: ReturnType<typeof deferred<string[]>> }[] = [];
  const loader = new RequestLoader<string, string>((keys) => {
    const answer = deferred<string[]>();
    batches.push({ keys, answer });
    return answer.promise;
  });

  const first = loader.loadNow('a');
  expect(loader.loadNow('a')).toBe(first); // one promise for every field waiting for the same key
  await new Promise((r) => setTimeout(r, 0));
  expect(batches).toHaveLength(1);

  loader.clear('a'); // e.g. the value changed: what was loading is stale
  const second = loader.loadNow('a');
  expect(second).not.toBe(first);
  await new Promise((r) => setTimeout(r, 0));
  expect(batches).toHaveLength(2);

  batches[0]!.answer.resolve(['old']);
  expect(await first).toBe('old');
  // The stale load ended first: the key still waits for the newer one.
  expect(loader.loadNow('a')).toBe(second);
  batches[1]!.answer.resolve(['new']);
  expect(await second).toBe('new');
  expect(loader.loadNow('a')).toBe('new');
});

it('a batch of more units than the process keeps answers every unit it read (the cache drops the least recently used)', async () => {
  // More units than the per-process cache holds (10,000), read in one batch: the batch's answer is its own, not what
  // the cache still holds after the read pushed the first of them out.
  const { startHarness } = await import('./support/harness.js');
  const { createLoaders } = await import('../src/graphql/context.js');
  const { queryRows } = await import('../src/db/client.js');
  const { sql } = await import('drizzle-orm');
  const h = await startHarness({ workers: false });
  try {
    const [root] = await queryRows<{ id: string }>(
      h.services.db,
      sql`with made as (select gen_random_uuid() as id)
          insert into org_units (id, kind, name, path, depth) select id, 'ORGANIZATION', 'Many', array[id], 0 from made
          returning id::text as id`,
    );
    const ids = (
      await queryRows<{ id: string }>(
        h.services.db,
        sql`with made as (select gen_random_uuid() as id, n from generate_series(1, 10050) n)
            insert into org_units (id, parent_id, kind, name, path, depth)
              select id, ${root!.id}::uuid, 'TEAM', 'team ' || n, array[${root!.id}::uuid, id], 1 from made order by n
            returning id::text as id`,
      )
    ).map((r) => r.id);
    const loaders = createLoaders(h.services.db, new Date());
    const units = await loaders.unitById.loadMany(ids);
    expect(units.filter((u) => u === null || u instanceof Error)).toHaveLength(0);
    expect(units.map((u) => (u as { id: string }).id)).toEqual(ids);
    // What the cache relies on, the database holds: a unit is never renamed, moved or deleted.
    for (const change of [
      sql`update org_units set name = 'renamed' where id = ${ids[0]!}::uuid`,
      sql`update org_units set parent_id = null, path = array[id], depth = 0 where id = ${ids[1]!}::uuid`,
      sql`delete from org_units where id = ${ids[2]!}::uuid`,
      sql`truncate org_units cascade`,
    ]) {
      await expect(queryRows(h.services.db, change)).rejects.toMatchObject({ cause: { code: '42501' } });
    }
    const [still] = await queryRows<{ n: number }>(h.services.db, sql`select count(*)::int as n from org_units where name like 'team %'`);
    expect(still!.n).toBe(ids.length);
  } finally {
    await h.close();
  }
}, 120_000);

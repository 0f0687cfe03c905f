// The group commit helper (src/db/group-commit.ts) on its own: who goes alone, who goes together, in which order, and
// what a batch that fails does to its callers.
import { describe, expect, it } from 'vitest';
import { ALONE, groupCommit } from '../src/db/group-commit.js';
import type { Db } from '../src/db/client.js';

interface Call {
  kind: 'one' | 'many';
  ps: number[];
}

/** A fake database handle (the helper only keys its groups by it) and calls that log what they were sent. */
function setup(behaviour: { many?: (ps: number[]) => (string | typeof ALONE)[]; one?: (p: number) => string } = {}) {
  const db = {} as Db;
  const calls: Call[] = [];
  const tick = () => new Promise((r) => setImmediate(r));
  const call = groupCommit<number, string>({
    async one(_db, p) {
      calls.push({ kind: 'one', ps: [p] });
      await tick();
      return behaviour.one ? behaviour.one(p) : `one:${p}`;
    },
    async many(_db, ps) {
      calls.push({ kind: 'many', ps });
      await tick();
      return behaviour.many ? behaviour.many(ps) : ps.map((p) => `many:${p}`);
    },
  });
  return { db, calls, call };
}

const settle = <T>(ps: Promise<T>[]) => Promise.allSettled(ps);

describe('group commit calls', () => {
  it('a call with none in flight goes at once and alone; those arriving meanwhile go together, in arrival order, at most max each', async () => {
    const { db, calls, call } = setup();
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => call(db, 'a', i, 4)));
    expect(answers).toEqual(['one:0', ...[1, 2, 3, 4, 5, 6, 7, 8].map((i) => `many:${i}`), 'one:9']);
    expect(calls).toEqual([
      { kind: 'one', ps: [0] },
      { kind: 'many', ps: [1, 2, 3, 4] },
      { kind: 'many', ps: [5, 6, 7, 8] },
      { kind: 'one', ps: [9] },
    ]);
    // The group is gone once drained: the next call goes alone again.
    expect(await call(db, 'a', 10, 4)).toBe('one:10');
  });

  it('keys and database handles have groups of their own; max 1 sends every call alone', async () => {
    const { db, calls, call } = setup();
    const other = {} as Db;
    await Promise.all([call(db, 'a', 1, 8), call(db, 'b', 2, 8), call(other, 'a', 3, 8), call(db, 'a', 4, 8), call(db, 'a', 5, 8)]);
    expect(calls).toEqual([
      { kind: 'one', ps: [1] },
      { kind: 'one', ps: [2] },
      { kind: 'one', ps: [3] },
      { kind: 'many', ps: [4, 5] },
    ]);
    calls.length = 0;
    await Promise.all([call(db, 'a', 1, 1), call(db, 'a', 2, 1), call(db, 'a', 3, 1)]);
    expect(calls.map((c) => c.kind)).toEqual(['one', 'one', 'one']);
  });

  it('an answer ALONE, or a batch that fails as a whole, makes those calls again alone: a bad one fails as it would alone', async () => {
    const { db, calls, call } = setup({
      many: (ps) => {
        if (ps.includes(13)) throw new Error('a value the batch statement could not take');
        return ps.map((p) => (p === 7 ? ALONE : `many:${p}`));
      },
      one: (p) => {
        if (p === 13) throw new Error(`13 fails alone`);
        return `one:${p}`;
      },
    });
    const results = await settle([0, 6, 7, 8, 0, 12, 13, 14].map((p, i) => call(db, 'a', p, 3)));
    // 0 alone; [6, 7, 8]: 7 again alone; [0, 12, 13] fails: each alone; [14] alone.
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual([
      'one:0', 'many:6', 'one:7', 'many:8', 'one:0', 'one:12', '13 fails alone', 'one:14',
    ]);
    expect(calls.filter((c) => c.kind === 'many').map((c) => c.ps)).toEqual([[6, 7, 8], [0, 12, 13]]);
    // Those made again alone went one after the other, each before the next batch.
    expect(calls.map((c) => `${c.kind}:${c.ps.join(',')}`)).toEqual(['one:0', 'many:6,7,8', 'one:7', 'many:0,12,13', 'one:0', 'one:12', 'one:13', 'one:14']);
    // The group is gone once drained, failures and all.
    expect(await call(db, 'a', 99, 3)).toBe('one:99');
  });

  it('a call arriving while a batch is in flight goes with the next batch', async () => {
    const { db, calls, call } = setup();
    const first = [call(db, 'a', 1, 8), call(db, 'a', 2, 8), call(db, 'a', 3, 8)];
    // While 1 is in flight alone, 2 and 3 wait; 4 and 5 arrive while [2, 3] is in flight.
    while (!calls.some((c) => c.kind === 'many')) await new Promise((r) => setImmediate(r));
    const later = [call(db, 'a', 4, 8), call(db, 'a', 5, 8)];
    expect(await Promise.all([...first, ...later])).toEqual(['one:1', 'many:2', 'many:3', 'many:4', 'many:5']);
    expect(calls.map((c) => c.ps)).toEqual([[1], [2, 3], [4, 5]]);
  });

  it('a batch that fails because the database is away fails every call of it, without trying them again', async () => {
    const away = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const { db, calls, call } = setup({
      many: () => {
        throw away;
      },
    });
    const results = await settle([1, 2, 3].map((p) => call(db, 'a', p, 8)));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected']);
    expect(results.slice(1).map((r) => (r as PromiseRejectedResult).reason)).toEqual([away, away]);
    expect(calls.map((c) => c.kind)).toEqual(['one', 'many']);
    expect(await call(db, 'a', 4, 8)).toBe('one:4');
  });
});

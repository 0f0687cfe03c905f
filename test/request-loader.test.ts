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

// How `npm run bench -- --repeat N` merges its runs (test/bench/repeat.ts): each figure's median, key by key and index
// by index; a figure a run could not measure stays unmeasured; and each run's command line is the repeated one's
// without --repeat and --json.
import { expect, it } from 'vitest';
import { medianOfRuns, singleRunArgs } from './bench/repeat.js';

it('takes each figure’s median over the runs, key by key and index by index; names are the first run’s', () => {
  const run = (p50: number, rps: number, extra: Record<string, unknown> = {}) => ({
    mode: 'quick',
    commit: 'abc',
    submit: { open: [{ rate: 10, gateway: { p50Ms: p50 } }, { rate: 100, gateway: { p50Ms: p50 * 2 } }], closed: { throughput: rps } },
    ...extra,
  });
  expect(medianOfRuns([run(5, 300), run(9, 200), run(7, 250)])).toEqual(run(7, 250));
  // An even count: the upper middle, as the benchmark's own medians.
  expect(medianOfRuns([1, 4, 3, 2])).toBe(3);
  // A key only some runs have: the median of those.
  expect(medianOfRuns([{ a: 1 }, { a: 3, b: 10 }, { a: 2 }])).toEqual({ a: 2, b: 10 });
});

it('keeps a figure that any run could not measure unmeasured (null), so that a failed run is not hidden', () => {
  expect(medianOfRuns([{ drain: { ms: 3000, left: 0 } }, { drain: { ms: null, left: 5 } }, { drain: { ms: 2000, left: 0 } }])).toEqual({ drain: { ms: null, left: 0 } });
});

it('runs each repetition with the same options, without --repeat and --json', () => {
  expect(singleRunArgs(['--quick', '--repeat', '3', '--only', 'submit', '--json', 'x.json'])).toEqual(['--quick', '--only', 'submit']);
  expect(singleRunArgs(['--repeat=3', '--json=x.json', '--smoke'])).toEqual(['--smoke']);
});

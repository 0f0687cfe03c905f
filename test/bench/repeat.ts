// `npm run bench -- --repeat N`: the run made N times, each in processes and a database of its own, and reported as
// the median of each figure (the figures are medians of three runs: on a shared machine one run's figures move
// by tens of per cent). This file merges the runs' JSON results.

/**
 * The figure-by-figure median of several runs' results, which have the same shape: a number is the median of the
 * runs' numbers (the middle one of an odd count, the upper middle of an even count, as the benchmark's own medians);
 * a figure that a run could not measure (`null`, e.g. the time for jobs to settle when some never did) is `null`,
 * so that no failed run is hidden by the others; an object or an array is merged key by key, index by index;
 * anything else (names, modes, dates) is the first run's.
 */
export function medianOfRuns(runs: readonly unknown[]): unknown {
  const present = runs.filter((r) => r !== undefined);
  if (present.length === 0) return undefined;
  if (present.some((r) => r === null)) return null;
  if (present.every((r) => typeof r === 'number')) return [...(present as number[])].sort((a, b) => a - b)[Math.floor(present.length / 2)];
  const first = present[0];
  if (Array.isArray(first)) {
    const arrays = present.filter(Array.isArray);
    return first.map((_, i) => medianOfRuns(arrays.map((a) => a[i])));
  }
  if (first !== null && typeof first === 'object') {
    const objects = present.filter((r): r is Record<string, unknown> => r !== null && typeof r === 'object' && !Array.isArray(r));
    const keys = [...new Set(objects.flatMap((o) => Object.keys(o)))];
    return Object.fromEntries(keys.map((k) => [k, medianOfRuns(objects.map((o) => o[k]))]));
  }
  return first;
}

/** The command line of one run of a repeated benchmark: the same options without `--repeat` and `--json`. */
export function singleRunArgs(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--repeat' || arg === '--json') i++;
    else if (!arg.startsWith('--repeat=') && !arg.startsWith('--json=')) out.push(arg);
  }
  return out;
}

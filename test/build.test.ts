// The build (src/cli/build.ts, run by the suite's global setup and by `npm ci`) bundles named entry points only:
// every dist/ script that package.json, the Dockerfile or the README tells someone to run must be one of them.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ROOT, dist } from './support/build.js';
import { ENTRY_POINTS } from '../src/cli/build.js';

it('every dist/ entry that package.json, the Dockerfile and the README name is built', () => {
  const named = new Set<string>();
  for (const file of ['package.json', 'Dockerfile', 'README.md']) {
    for (const m of readFileSync(join(ROOT, file), 'utf8').matchAll(/\bdist\/([\w/-]+)\.js\b/g)) named.add(m[1]!);
  }
  expect(named.size).toBeGreaterThan(3);
  for (const entry of named) {
    expect(Object.keys(ENTRY_POINTS)).toContain(entry);
    expect(existsSync(dist(`${entry}.js`))).toBe(true);
  }
});

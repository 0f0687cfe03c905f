// The build (src/cli/build.ts, run by the suite's global setup and by `npm ci`): it bundles named entry points only,
// so every dist/ script that package.json, the Dockerfile or the README tells someone to run must be one of them; and
// its source maps keep the gateway's own code only, so a stack frame in a dependency must never read as a line of
// src/ (a frame without a mapping of its own takes the nearest one before it); and graphql, which ships an ES module and
// a CommonJS build side by side, is bundled once, as ES modules.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
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

it("the source maps point the gateway's own lines at src/ and no dependency's line anywhere", () => {
  const files = readdirSync(dist(''), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.js') && !f.startsWith('console/'))
    .map((f) => dist(f));
  let ownLines = 0;
  let dependencyLines = 0;
  const wrong: string[] = [];
  for (const file of files) {
    const map = new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')));
    // esbuild (not minified) opens each bundled module with a comment naming its file: `// src/db/client.ts`.
    let module: string | null = null;
    for (const [i, line] of readFileSync(file, 'utf8').split('\n').entries()) {
      const header = /^\/\/ ((?:src|node_modules)\/\S+)$/.exec(line);
      if (header) {
        module = header[1]!;
        continue;
      }
      const column = line.search(/\S/);
      if (module === null || column < 0 || line.startsWith('//', column)) continue;
      const entry = map.findEntry(i, column);
      const source = (entry as { originalSource?: string }).originalSource ?? null;
      if (module.startsWith('src/')) {
        ownLines++;
        if (!source?.endsWith(module)) wrong.push(`${file.slice(ROOT.length)}:${i + 1} (${module}) → ${source}`);
      } else {
        dependencyLines++;
        if (source !== null) wrong.push(`${file.slice(ROOT.length)}:${i + 1} (${module}) → ${source}`);
      }
    }
  }
  expect(ownLines).toBeGreaterThan(10_000);
  expect(dependencyLines).toBeGreaterThan(100_000);
  expect(wrong.slice(0, 20)).toEqual([]);
});

it('graphql is bundled once, from its ES module build (one GraphQLError class; no getter per imported name)', () => {
  const modules = new Set<string>();
  for (const f of readdirSync(dist(''), { recursive: true, encoding: 'utf8' })) {
    if (!f.endsWith('.js') || f.startsWith('console/')) continue;
    for (const m of readFileSync(dist(f), 'utf8').matchAll(/^\/\/ node_modules\/graphql\/(\S+)$/gm)) modules.add(m[1]!);
  }
  expect(modules).toContain('execution/execute.mjs');
  expect(modules).toContain('error/GraphQLError.mjs');
  expect([...modules].filter((m) => !m.endsWith('.mjs'))).toEqual([]);
});

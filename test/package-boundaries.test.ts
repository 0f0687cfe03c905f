// Dependencies run one way: db → domain → graphql / http. Domain modules never import Pothos, Yoga or the
// GraphQL layer, and the database layer imports no domain module.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../src', import.meta.url));

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
}

const imports = (file: string) => [...readFileSync(file, 'utf8').matchAll(/from '([^']+)'/g)].map((m) => m[1]!);
const EDGE = /^(graphql|http|cli|demo)\/|^(app|main)\.ts$/;

it('domain modules do not import the GraphQL or HTTP layers', () => {
  const offenders: string[] = [];
  for (const file of files(SRC)) {
    const rel = relative(SRC, file);
    if (EDGE.test(rel) || rel.startsWith('heygen/simulator/')) continue;
    for (const spec of imports(file)) {
      if (spec.startsWith('@pothos/') || spec === 'graphql-yoga' || /\/(graphql|http)\//.test(spec)) offenders.push(`${rel} → ${spec}`);
    }
  }
  expect(offenders).toEqual([]);
});

it('the database layer imports no domain module', () => {
  const offenders = files(join(SRC, 'db'))
    .flatMap((file) => imports(file).filter((spec) => spec.startsWith('..')).map((spec) => `${relative(SRC, file)} → ${spec}`));
  expect(offenders).toEqual([]);
});

it('the pricing model imports neither the gateway jobs nor the simulator (both import it)', () => {
  const offenders = files(join(SRC, 'pricing')).flatMap((file) =>
    imports(file)
      .filter((spec) => spec.startsWith('..') || /\/(jobs|heygen|graphql|http|db)\//.test(spec))
      .map((spec) => `${relative(SRC, file)} → ${spec}`),
  );
  expect(offenders).toEqual([]);
});

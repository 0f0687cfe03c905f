// Dependencies run one way: primitives → db → domain → graphql / http. Domain modules never import Pothos,
// Yoga or the GraphQL layer, the database layer imports no domain module, the folders of src/ import one
// another without a cycle, and nothing in the repository points outside it.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SRC = join(ROOT, 'src');

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

it('the database layer imports no domain module (only the primitives under it)', () => {
  const offenders = files(join(SRC, 'db'))
    .flatMap((file) => imports(file).filter((spec) => spec.startsWith('..') && !spec.startsWith('../primitives/')).map((spec) => `${relative(SRC, file)} → ${spec}`));
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

/** Every relative module a file names: static imports, re-exports, side-effect and dynamic imports. */
const relativeImports = (file: string) =>
  [...readFileSync(file, 'utf8').matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => m[1]!);

/** A file's node in the folder graph: the first path segment under src/ (a top-level file is its own node). */
const nodeOf = (path: string) => relative(SRC, path).split(sep)[0]!;

/** The folder-level import graph of a source tree: node → the nodes it imports, each with one example import. */
function folderGraph(srcFiles: readonly string[]): Map<string, Map<string, string>> {
  const graph = new Map<string, Map<string, string>>();
  for (const file of srcFiles) {
    const from = nodeOf(file);
    if (!graph.has(from)) graph.set(from, new Map());
    for (const spec of relativeImports(file)) {
      const target = resolve(dirname(file), spec);
      if (relative(SRC, target).startsWith('..')) continue; // outside src/: checked below
      const to = nodeOf(target.replace(/\.js$/, '.ts'));
      if (to !== from && !graph.get(from)!.has(to)) graph.get(from)!.set(to, `${relative(SRC, file)} → ${spec}`);
    }
  }
  return graph;
}

/** Every cycle's strongly connected component (Tarjan), each named as one cycle through it, edge by edge. */
function folderCycles(graph: Map<string, Map<string, string>>): string[] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)?.keys() ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) components.push(component.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return components.map((component) => {
    // One concrete cycle through the component: a shortest way back from its first node to itself.
    const inside = new Set(component);
    const start = component[0]!;
    const previous = new Map<string, string>();
    const queue = [start];
    let closing: string | undefined;
    while (queue.length > 0 && closing === undefined) {
      const v = queue.shift()!;
      for (const w of graph.get(v)?.keys() ?? []) {
        if (!inside.has(w)) continue;
        if (w === start) {
          closing = v;
          break;
        }
        if (!previous.has(w)) {
          previous.set(w, v);
          queue.push(w);
        }
      }
    }
    const path = [start];
    for (let v = closing!; v !== start; v = previous.get(v)!) path.splice(1, 0, v);
    path.push(start);
    const edges = path.slice(1).map((to, i) => graph.get(path[i]!)!.get(to)!);
    return `${path.join(' → ')} (${edges.join('; ')}); all of {${component.join(', ')}} import one another`;
  });
}

it('the folders of src/ import one another without a cycle', () => {
  expect(folderCycles(folderGraph(files(SRC)))).toEqual([]);
});

it('the cycle check names a folder cycle when there is one', () => {
  const graph = new Map([
    ['a', new Map([['b', 'a/x.ts → ../b/y.js']])],
    ['b', new Map([['c', 'b/y.ts → ../c/z.js']])],
    ['c', new Map([['a', 'c/z.ts → ../a/x.js']])],
    ['d', new Map([['a', 'd/w.ts → ../a/x.js']])],
  ]);
  expect(folderCycles(graph)).toEqual([
    'a → b → c → a (a/x.ts → ../b/y.js; b/y.ts → ../c/z.js; c/z.ts → ../a/x.js); all of {a, b, c} import one another',
  ]);
});

it('money and time primitives import nothing above them', () => {
  const offenders = files(join(SRC, 'primitives')).flatMap((file) =>
    relativeImports(file)
      .filter((spec) => !spec.startsWith('./') && spec !== '../errors.js')
      .map((spec) => `${relative(SRC, file)} → ${spec}`),
  );
  expect(offenders).toEqual([]);
});

it('nothing under src/ imports from test/ or from outside src/', () => {
  const offenders = files(SRC).flatMap((file) =>
    [...readFileSync(file, 'utf8').matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)['"]([^'"]+)['"]/g)]
      .map((m) => m[1]!)
      .filter((spec) => /(^|\/)test\//.test(spec) || (spec.startsWith('.') && relative(SRC, resolve(dirname(file), spec)).startsWith('..')))
      .map((spec) => `${relative(SRC, file)} → ${spec}`),
  );
  expect(offenders).toEqual([]);
});

it('the console (src/console) imports nothing from the gateway: it speaks only the public GraphQL API', () => {
  const CONSOLE = join(SRC, 'console');
  const sources = (dir: string): string[] =>
    readdirSync(dir).flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? sources(path) : /\.(ts|tsx)$/.test(name) ? [path] : [];
    });
  // Front-end libraries only (oauth4webapi: the OIDC sign-in with the company IdP, src/console/oidc.ts; graphql-sse: subscriptions over SSE).
  const allowed = /^(react|react-dom|react\/jsx-runtime|react-dom\/client|@urql\/core|gql\.tada|echarts(\/.*)?|oauth4webapi|graphql-sse|vite|@vitejs\/plugin-react|node:(fs|path|url|zlib))$/;
  const offenders = sources(CONSOLE).flatMap((file) =>
    [...readFileSync(file, 'utf8').matchAll(/^\s*import\b[^;'"()=]*?['"]([^'"]+)['"]|^\s*export\b[^;'"()=]*?\bfrom\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]/gm)]
      .map((m) => (m[1] ?? m[2] ?? m[3])!)
      .filter((spec) => (spec.startsWith('.') ? relative(CONSOLE, resolve(dirname(file), spec)).startsWith('..') : !allowed.test(spec)))
      .map((spec) => `${relative(SRC, file)} → ${spec}`),
  );
  expect(offenders).toEqual([]);
  // And nothing on the server side imports the console's code.
  const intoConsole = files(SRC)
    .filter((file) => !file.startsWith(CONSOLE))
    .flatMap((file) => relativeImports(file).filter((spec) => resolve(dirname(file), spec).startsWith(CONSOLE)).map((spec) => `${relative(SRC, file)} → ${spec}`));
  expect(intoConsole).toEqual([]);
});

/** Folders that are not the repository's own text: git, installed and built code, local data (see .gitignore). */
const NOT_OURS = new Set(['.git', 'node_modules', 'dist', 'data', 'coverage', 'test-output', join('.ci', '.node')]);

/** Every file of the repository except the lock file and the folders above. */
function repositoryFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (NOT_OURS.has(relative(ROOT, path))) return [];
    if (statSync(path).isDirectory()) return repositoryFiles(path);
    return name === 'package-lock.json' ? [] : [path];
  });
}

it('no file in the repository points at documents outside it', () => {
  // Spelled in pieces so that this file does not name them itself.
  const outside = ['../' + 'shared', 'DESIGN' + '.md', 'heygen-api' + '.md', 'STYLE' + '.md'];
  const offenders = repositoryFiles(ROOT).flatMap((file) => {
    const text = readFileSync(file, 'latin1');
    return outside.filter((needle) => text.includes(needle)).map((needle) => `${relative(ROOT, file)}: ${needle}`);
  });
  expect(offenders).toEqual([]);
});

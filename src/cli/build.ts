// `npm run build`'s server half (`tsx src/cli/build.ts`, which the tests' global setup also runs): the gateway,
// the demo, the simulator and the command-line tools bundled by esbuild into dist/, one file per entry point at the
// path it always had (dist/main.js, dist/cli/token.js, …) and the code they share in dist/chunks/, with source maps
// (`--enable-source-maps` prints src/ positions). Type-checking is tsc's (`tsc -p tsconfig.build.json`, before this).
//
// Why a bundle rather than tsc's one file per module: Node resolves each import of a package through that package's
// package.json, and reads the whole file again for every module that package loads (nodejs/node#60425);
// drizzle-orm's is 179 KB with 447 subpath exports, so importing the compiled modules took 1.8 s of a 2.7 s start,
// against a start-up target of 1.5 s. In one bundle there is nothing left to resolve (docs/benchmark.md, "start-up").
import { mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decode, encode, type SourceMapSegment } from '@jridgewell/sourcemap-codec';
import { build } from 'esbuild';

/** The repository: this file only ever runs from source (src/cli/). */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Entry points, by their path under dist/ without `.js`. */
export const ENTRY_POINTS: Record<string, string> = {
  main: 'src/main.ts',
  'demo/main': 'src/demo/main.ts',
  'heygen/simulator/main': 'src/heygen/simulator/main.ts',
  'cli/token': 'src/cli/token.ts',
  'cli/migrate': 'src/cli/migrate.ts',
  'cli/rotate-master-key': 'src/cli/rotate-master-key.ts',
};

/**
 * Left to Node at run time: koffi (a native binary per platform), PGlite (loads its WebAssembly and data files from
 * beside its own module) and pg-native (pg's optional binding, not installed; pg only tries it when asked).
 */
const EXTERNAL = ['koffi', '@electric-sql/pglite', '@electric-sql/pglite/*', 'pg-native'];

/** Builds dist/ (the console's dist/console/, Vite's, is kept). */
async function buildServer(): Promise<void> {
  const out = join(ROOT, 'dist');
  mkdirSync(out, { recursive: true });
  for (const name of readdirSync(out, { withFileTypes: true }).map((e) => e.name)) {
    if (name !== 'console') rmSync(join(out, name), { recursive: true, force: true });
  }
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: ENTRY_POINTS,
    outdir: out,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node24',
    sourcemap: true,
    sourcesContent: false,
    external: EXTERNAL,
    chunkNames: 'chunks/[name]-[hash]',
    // A package's ES module build before its CommonJS one (esbuild's default for Node is the reverse). graphql ships
    // both without an exports map: its CommonJS build, bundled, is reached from ES modules (Yoga's executor, Pothos)
    // through a getter per imported name per call, which was 5.5 % of a page of units' CPU (docs/benchmark.md). `.mjs`
    // first too, so that an extensionless deep import (graphql-armor's `graphql/language/parser`) takes the same copy:
    // two copies of graphql would be two GraphQLError classes. test/build.test.ts checks that one copy is bundled.
    mainFields: ['module', 'main'],
    resolveExtensions: ['.mjs', '.tsx', '.ts', '.jsx', '.js', '.css', '.json'],
    // CommonJS packages in the bundle (pg, graphql, nodemailer, …) call require() for Node's built-in modules.
    banner: { js: "import { createRequire as gatewayCreateRequire } from 'node:module'; const require = gatewayCreateRequire(import.meta.url);" },
    logLevel: 'warning',
    metafile: true,
  });
  for (const file of Object.keys(result.metafile.outputs)) if (file.endsWith('.map')) ownCodeOnly(join(ROOT, file));
}

/**
 * A source map of the gateway's own code only: segments that map into node_modules/ become unmapped. Node keeps the
 * map of every module it loads in memory under `--enable-source-maps` (npm start's flags); with the dependencies'
 * mappings the bundle's maps took 28 MB of RSS at ready, and a stack frame in a dependency read as a position in the
 * bundle is still enough to find it.
 */
function ownCodeOnly(file: string): void {
  const map = JSON.parse(readFileSync(file, 'utf8')) as { sources: string[]; mappings: string };
  const own = map.sources.map((source) => !source.includes('node_modules/'));
  // A position with no segment of its own takes the last one before it, on an earlier line too: after the gateway's
  // code, the first dependency segment (whatever its line) becomes a column-only segment, which ends that mapping.
  let lastKeptMapped = false;
  const lines = decode(map.mappings).map((line) => {
    const kept: SourceMapSegment[] = [];
    for (const segment of line) {
      const mapped = segment.length > 1 && own[segment[1]!] === true;
      if (mapped) kept.push(segment);
      else if (lastKeptMapped) kept.push([segment[0]]);
      else continue;
      lastKeptMapped = mapped;
    }
    return kept;
  });
  map.mappings = encode(lines);
  writeFileSync(file, JSON.stringify(map));
}

// Run as a script (argv[1] as given may hold a symbolic link; the module's own URL never does).
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) await buildServer();

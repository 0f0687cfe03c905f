// The folder the gateway is installed in: the one holding its package.json, migrations/ and dist/. Found from this
// module's own file, which is src/primitives/ when run from source (tsx, tests) and dist/ or dist/chunks/ in the
// bundled build (src/cli/build.ts), so that no path is written relative to where a module happens to be emitted.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const NAME = 'heygen-gateway';

function packageRootAbove(start: string): string {
  for (let dir = start; ; ) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === NAME) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json of ${NAME} in ${start} or any folder above it`);
    dir = parent;
  }
}

export const PACKAGE_ROOT = packageRootAbove(dirname(fileURLToPath(import.meta.url)));

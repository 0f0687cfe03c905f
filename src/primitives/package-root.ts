// The folder the gateway is installed in: the nearest one, from this module's own file up, that holds a package.json
// beside a migrations/ folder (the container's runtime stage copies both). This module is in src/primitives/ when run
// from source (tsx, tests) and in dist/ or dist/chunks/ in the bundled build (src/cli/build.ts), so no path is written
// relative to where a module happens to be emitted.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function packageRootAbove(start: string): string {
  for (let dir = start; ; ) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'migrations'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no folder with a package.json and migrations/ in ${start} or above it`);
    dir = parent;
  }
}

export const PACKAGE_ROOT = packageRootAbove(dirname(fileURLToPath(import.meta.url)));

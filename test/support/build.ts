// One shared build for the whole suite: tests that start real processes (gateways, CLIs, the simulator) run the
// compiled dist/, as production does. vitest's global setup builds it once when any source is newer.
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Absolute path of a compiled entry point, e.g. `dist('cli/token.js')`. */
export function dist(entry: string): string {
  return join(ROOT, 'dist', entry);
}

function newestSource(dir: string): number {
  return Math.max(...readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((f) => statSync(join(dir, f)).mtimeMs));
}

export function distIsFresh(): boolean {
  const built = statSync(dist('main.js'), { throwIfNoEntry: false })?.mtimeMs ?? 0;
  return built > newestSource(join(ROOT, 'src'));
}

export default function buildOnce(): void {
  if (distIsFresh()) return;
  execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, stdio: 'inherit' });
}

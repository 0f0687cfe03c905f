// One shared build for the whole suite: tests that start real processes (gateways, CLIs, the simulator) run the
// compiled dist/, as production does. vitest's global setup builds it once when any source is newer.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Absolute path of a compiled entry point, e.g. `dist('cli/token.js')`. */
export function dist(entry: string): string {
  return join(ROOT, 'dist', entry);
}

/**
 * An npm script that runs Node on a compiled entry, split: leading `NAME=value` words (its environment), then `node`,
 * its flags and `entry` (e.g. `nodeScript('start', 'dist/main.js')`).
 */
export function nodeScript(script: string, entry: string): { env: Record<string, string>; flags: string[] } {
  const command: string = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts[script];
  const words = command.split(/\s+/);
  const env: Record<string, string> = {};
  while (words.length > 0 && /^[A-Z_][A-Z0-9_]*=/.test(words[0]!)) {
    const [name, ...value] = words.shift()!.split('=');
    env[name!] = value.join('=');
  }
  if (words[0] !== 'node' || words.at(-1) !== entry) throw new Error(`unexpected ${script} script: ${command}`);
  return { env, flags: words.slice(1, -1) };
}

const startCommand = () => nodeScript('start', 'dist/main.js');

/**
 * The Node flags of `npm start` (package.json's `start` script, the one place they are written; the Dockerfile's CMD
 * is checked against it): child gateways in tests and the start-up measurement run as production does.
 */
export function startFlags(): string[] {
  return startCommand().flags;
}

/**
 * The environment variables that `npm start` sets before `node` (e.g. `MALLOC_ARENA_MAX=2`; the Dockerfile's `ENV`
 * is checked against them), given to child gateways with the flags.
 */
export function startEnv(): Record<string, string> {
  return startCommand().env;
}

function newestSource(dir: string): number {
  return Math.max(...readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((f) => statSync(join(dir, f)).mtimeMs));
}

export function distIsFresh(): boolean {
  const built = statSync(dist('main.js'), { throwIfNoEntry: false })?.mtimeMs ?? 0;
  // The bundle holds the dependencies too: an install since the last build makes it stale.
  const installed = ['package-lock.json', 'node_modules/.package-lock.json'].map((f) => statSync(join(ROOT, f), { throwIfNoEntry: false })?.mtimeMs ?? 0);
  return built > Math.max(newestSource(join(ROOT, 'src')), ...installed);
}

/** dist/console/ (the budget console, built by Vite) is newer than every file of src/console. */
export function consoleIsFresh(): boolean {
  const built = statSync(dist('console/index.html'), { throwIfNoEntry: false })?.mtimeMs ?? 0;
  return built > newestSource(join(ROOT, 'src/console'));
}

export default function buildOnce(): void {
  if (!distIsFresh()) {
    execFileSync(process.execPath, ['--import', join(ROOT, 'node_modules/tsx/dist/loader.mjs'), join(ROOT, 'src/cli/build.ts')], { cwd: ROOT, stdio: 'inherit' });
  }
  if (!consoleIsFresh()) {
    execFileSync(process.execPath, [join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--config', join(ROOT, 'src/console/vite.config.ts')], {
      cwd: ROOT,
      stdio: 'inherit',
      // vitest sets NODE_ENV=test; the console is built as it ships (React's production build).
      env: { ...process.env, NODE_ENV: 'production' },
    });
  }
}

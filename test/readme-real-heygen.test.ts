// The README's "Pointing it at real HeyGen" block, run as written (with a scratch database and port 0): the token
// it prints works against the gateway it started. And every CLI, given a wrong setting, prints one line and exits 2.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/db.js';
import { dist, ROOT } from './support/build.js';


/** The shell block that follows the `real-heygen` marker in the README. */
function readmeBlock(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const match = /<!-- real-heygen:[^>]*-->\s*```bash\n([\s\S]*?)```/.exec(readme);
  if (!match) throw new Error('README has no real-heygen block');
  return match[1]!;
}

describe("the README's real-HeyGen steps, literally", () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => db?.drop());

  it('start a gateway on PostgreSQL and print an ADMIN token that works against it', async () => {
    const block = readmeBlock();
    expect(block).toContain('npm start &');
    expect(block).toContain('npm run token -- --admin');
    // Two substitutions, said here: the scratch database for the example URL, and for `npm ci` nothing: node_modules
    // is installed already (reinstalling it under the running suite would break the suite), and the build that
    // `npm ci` runs is the suite's shared one (test/support/build.ts).
    const script = block
      .replace(/^export DATABASE_URL=.*$/m, `export DATABASE_URL='${db.url}'`)
      .replace(/^npm ci$/m, 'true');
    expect(script).not.toBe(block);
    const child = spawn('bash', ['-euo', 'pipefail', '-c', `${script}\nwait`], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: '', GATEWAY_MASTER_KEY: '', PORT: '0', HOST: '127.0.0.1', GATEWAY_PRINT_PORT: '1', LOG_LEVEL: 'warn', NODE_ENV: 'test' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    try {
      const found = await new Promise<{ port: number; token: string }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no port and token in time:\n${out}\n${err}`)), 120_000);
        const check = () => {
          const port = /GATEWAY_PORT=(\d+)/.exec(out);
          const token = /^(eyJ[\w-]+\.[\w-]+\.[\w-]+)$/m.exec(out);
          if (port && token) {
            clearTimeout(timer);
            resolve({ port: Number(port[1]), token: token[1]! });
          }
        };
        child.stdout.on('data', check);
        child.once('exit', (code) => reject(new Error(`the block exited with ${code}:\n${out}\n${err}`)));
      });
      expect(out).toContain('migrations applied');
      // The CLI says which database it used: the server's, not the embedded one.
      expect(err).toMatch(/using PostgreSQL 127\.0\.0\.1:5432\/gw_test_/);
      const res = await fetch(`http://127.0.0.1:${found.port}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${found.token}` },
        body: JSON.stringify({ query: '{ viewer { role } }' }),
      });
      expect(await res.json()).toEqual({ data: { viewer: { role: 'ADMIN' } } });
    } finally {
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        /* already gone */
      }
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    }
  }, 180_000);
});

describe('every CLI: a wrong setting is one line and exit code 2', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'gw-cli-'));
  // The compiled tools, as shipped, each with a data folder of the test's own.
  const run = (script: string, args: string[], env: Record<string, string>) =>
    spawnSync(process.execPath, [dist(script), ...args], {
      cwd,
      env: { PATH: process.env.PATH ?? '', HOME: cwd, NODE_OPTIONS: '', DATA_DIR: join(cwd, 'data'), ...env },
      encoding: 'utf8',
      timeout: 60_000,
    });
  // A database that does not exist: a configuration error must be reported before anything connects (or migrates).
  const untouched = 'postgres://postgres@127.0.0.1:5432/gw_never_created';
  const cases: [name: string, script: string, args: string[], env: Record<string, string>, message: RegExp][] = [
    ['token: no role', 'cli/token.js', [], {}, /^token: usage: /],
    ['token: MANAGER without a unit', 'cli/token.js', ['--role', 'MANAGER'], {}, /needs --unit/],
    ['token: a unit that is not an id', 'cli/token.js', ['--role', 'MEMBER', '--unit', 'video-team'], {}, /--unit must be an OrgUnit id/],
    ['token: master key without DATABASE_URL', 'cli/token.js', ['--admin'], { GATEWAY_MASTER_KEY: 'x' }, /DATABASE_URL is not/],
    ['token: DATABASE_URL without master key', 'cli/token.js', ['--admin'], { DATABASE_URL: untouched }, /GATEWAY_MASTER_KEY: required/],
    ['token: malformed master key', 'cli/token.js', ['--admin'], { DATABASE_URL: untouched, GATEWAY_MASTER_KEY: 'short' }, /master key|GATEWAY_MASTER_KEY/i],
    ['db:migrate: not a database URL', 'cli/migrate.js', [], { DATABASE_URL: 'localhost/gateway' }, /DATABASE_URL: must be a postgres/],
    ['db:migrate: master key without DATABASE_URL', 'cli/migrate.js', [], { GATEWAY_MASTER_KEY: 'x' }, /DATABASE_URL is not/],
    ['rotate-master-key: no key', 'cli/rotate-master-key.js', [], {}, /GATEWAY_MASTER_KEY \(the new key\) is required/],
    ['gateway: bad PORT', 'main.js', [], { PORT: 'eighty' }, /^gateway: invalid configuration: PORT/],
    ['gateway: bad LOG_LEVEL and HOLD_TTL_HOURS at once', 'main.js', [], { LOG_LEVEL: 'loud', HOLD_TTL_HOURS: '0' }, /LOG_LEVEL.*HOLD_TTL_HOURS|HOLD_TTL_HOURS.*LOG_LEVEL/],
  ];
  it.each(cases)('%s', (_name, script, args, env, message) => {
    const r = run(script, args, env);
    expect(r.status, r.stderr).toBe(2);
    const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('using '));
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('migrations need no master key, and the CLI says which database it used', async () => {
    const db = await createTestDatabase();
    try {
      const r = run('cli/migrate.js', [], { DATABASE_URL: db.url });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toContain(`using PostgreSQL 127.0.0.1:5432/${db.name}`);
      expect(r.stdout).toContain('migrations applied');
    } finally {
      await db.drop();
    }
  });

  it('a second process cannot open the embedded database while one holds it', async () => {
    const dataDir = join(cwd, 'locked');
    const first = spawn(process.execPath, [dist('main.js')], {
      cwd,
      env: { PATH: process.env.PATH ?? '', HOME: cwd, DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', GATEWAY_PRINT_PORT: '1', LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        let out = '';
        first.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          if (out.includes('GATEWAY_PORT=')) resolve();
        });
        first.once('exit', (code) => reject(new Error(`first gateway exited with ${code}`)));
      });
      const second = run('cli/migrate.js', [], { DATA_DIR: dataDir });
      expect(second.status).toBe(2);
      expect(second.stderr).toMatch(/db:migrate: the embedded database in .* is in use by another process/);
    } finally {
      first.kill('SIGTERM');
      await new Promise((r) => (first.exitCode !== null ? r(null) : first.once('exit', r)));
    }
  });
});

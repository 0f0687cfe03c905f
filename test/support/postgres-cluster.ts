// A private PostgreSQL cluster for tests that stop and restart the database: its own data folder under the
// temp dir, its own free port and socket folder, started with the server binaries of the machine
// (/usr/lib/postgresql/<version>/bin, or PG_BIN_DIR). The shared server the other tests use is never touched.
// Run as root (CI), the binaries run as the `postgres` OS user, since PostgreSQL refuses to run as root.
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

export interface PrivateCluster {
  readonly port: number;
  /** postgres://postgres@127.0.0.1:<port>/<database> */
  url(database: string): string;
  createDatabase(name: string): Promise<string>;
  /** Stops the server: `fast` ends sessions cleanly (57P01 to each), `immediate` is a crash and a recovery at the next start. */
  stop(mode: 'fast' | 'immediate'): Promise<void>;
  start(): Promise<void>;
  /** Stops the server if it runs and deletes its folder. */
  destroy(): Promise<void>;
}

function binDir(): string {
  const configured = process.env.PG_BIN_DIR;
  if (configured) return configured;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : [];
  for (const version of versions) {
    const dir = join(root, version, 'bin');
    if (existsSync(join(dir, 'pg_ctl')) && existsSync(join(dir, 'initdb'))) return dir;
  }
  throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql/<version>/bin; set PG_BIN_DIR');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function startPrivateCluster(): Promise<PrivateCluster> {
  const bin = binDir();
  const root = mkdtempSync(join(tmpdir(), 'gw-pg-'));
  const data = join(root, 'data');
  const log = join(root, 'server.log');
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(root, uid, gid);
  }
  // cwd: the postgres user may not read the repository folder.
  const pgRun = (tool: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', join(bin, tool), ...args], { cwd: root }) : run(join(bin, tool), args, { cwd: root });
  const port = await freePort();
  // fsync and full-page writes off: they only guard against the operating system crashing, which the test never
  // does. synchronous_commit stays on: with it off, an `immediate` stop (a server crash) loses transactions the
  // gateway was told had committed — a job acknowledged to its caller, or HeyGen's acceptance of it — which no
  // production setup accepts and which the chaos suite's checks rightly catch.
  const options = [
    `-p ${port}`,
    `-k ${root}`,
    '-c listen_addresses=127.0.0.1',
    '-c max_connections=120',
    '-c fsync=off',
    '-c full_page_writes=off',
    '-c shared_buffers=32MB',
  ].join(' ');
  let running = false;
  const cluster: PrivateCluster = {
    port,
    url: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async createDatabase(name) {
      const client = new pg.Client({ connectionString: cluster.url('postgres') });
      await client.connect();
      try {
        await client.query(`create database ${name}`);
      } finally {
        await client.end();
      }
      return cluster.url(name);
    },
    async stop(mode) {
      await pgRun('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '60', 'stop']);
      running = false;
    },
    async start() {
      try {
        await pgRun('pg_ctl', ['-D', data, '-l', log, '-w', '-t', '60', '-o', options, 'start']);
      } catch (error) {
        const tail = existsSync(log) ? readFileSync(log, 'utf8').slice(-2000) : '';
        throw new Error(`private PostgreSQL did not start: ${(error as Error).message}\n${tail}`);
      }
      running = true;
    },
    async destroy() {
      if (running) await cluster.stop('immediate').catch(() => undefined);
      rmSync(root, { recursive: true, force: true });
    },
  };
  await pgRun('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions']);
  await cluster.start();
  // A test that dies without its afterAll must not leave a server behind.
  process.once('exit', () => {
    if (!running) return;
    try {
      if (asRoot) execFileSync('runuser', ['-u', 'postgres', '--', join(bin, 'pg_ctl'), '-D', data, '-m', 'immediate', 'stop'], { cwd: root, stdio: 'ignore' });
      else execFileSync(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop'], { cwd: root, stdio: 'ignore' });
    } catch {
      /* already gone */
    }
  });
  return cluster;
}

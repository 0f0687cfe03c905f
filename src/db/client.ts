// One database handle type for both drivers: `pg` against PostgreSQL, PGlite embedded.
import { fileURLToPath } from 'node:url';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import pg from 'pg';
import { drizzle as drizzlePg, type NodePgQueryResultHKT } from 'drizzle-orm/node-postgres';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import type { PgDatabase } from 'drizzle-orm/pg-core';
import { sql, type SQL } from 'drizzle-orm';
import * as schema from './schema.js';

/** The database or a transaction: domain functions take it as their first argument. */
export type Db = PgDatabase<NodePgQueryResultHKT, typeof schema>;

export interface Database {
  readonly db: Db;
  readonly driver: 'pg' | 'pglite';
  close(): Promise<void>;
  /** Called with every SQL statement text; tests count statements with it. */
  onQuery?: (text: string) => void;
}

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../migrations', import.meta.url));
/** Arbitrary but fixed: replicas starting together run migrations one at a time. */
const MIGRATION_LOCK_KEY = 72_410_331;

// int8 and numeric stay strings at the driver; drizzle's bigint mode and our code turn them into bigint.
export async function openDatabase(opts: { databaseUrl?: string | undefined; dataDir: string; poolSize?: number }): Promise<Database> {
  const database: { -readonly [K in keyof Database]: Database[K] } = {} as Database;
  const logger = { logQuery: (query: string) => database.onQuery?.(query) };
  if (opts.databaseUrl) {
    const pool = new pg.Pool({ connectionString: opts.databaseUrl, max: opts.poolSize ?? 10 });
    pool.on('error', () => {
      /* an idle client died; the pool replaces it */
    });
    database.db = drizzlePg(pool, { schema, logger }) as unknown as Db;
    database.driver = 'pg';
    database.close = () => pool.end();
    return database;
  }
  const { PGlite } = await import('@electric-sql/pglite');
  const { drizzle: drizzlePglite } = await import('drizzle-orm/pglite');
  const release = opts.dataDir === 'memory://' ? async () => {} : await lockDataDir(opts.dataDir);
  let client;
  try {
    client = await PGlite.create(opts.dataDir);
  } catch (error) {
    await release();
    throw error;
  }
  database.db = drizzlePglite(client, { schema, logger }) as unknown as Db;
  database.driver = 'pglite';
  database.close = async () => {
    await client.close();
    await release();
  };
  return database;
}

export class DataDirInUseError extends Error {}

/**
 * The embedded database is one process's: a second gateway, demo or CLI opening the same folder would corrupt it.
 * A lock file (refreshed while held, stale after 10 s so a crashed holder does not block for ever) keeps it one.
 */
async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  mkdirSync(dataDir, { recursive: true });
  try {
    return await lockfile.lock(dataDir, {
      lockfilePath: join(dataDir, 'gateway.lock'),
      stale: 10_000,
      update: 2_000,
      realpath: false,
      // Should the lock be taken over (the process stalled past `stale`), stop writing rather than corrupt.
      onCompromised: () => {
        console.error(`the lock on the embedded database in ${dataDir} was lost; exiting to protect it`);
        process.exit(1);
      },
    });
  } catch (error) {
    if ((error as { code?: string }).code === 'ELOCKED') {
      throw new DataDirInUseError(`the embedded database in ${dataDir} is in use by another process (a gateway, demo or CLI); stop it, or set DATABASE_URL`);
    }
    throw error;
  }
}

/** Applies the committed migrations under an advisory lock, so several replicas may start at once. */
export async function runMigrations(opts: { databaseUrl?: string | undefined; database?: Database }): Promise<void> {
  if (opts.databaseUrl) {
    const client = new pg.Client({ connectionString: opts.databaseUrl });
    await client.connect();
    try {
      await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
      await migratePg(drizzlePg(client), { migrationsFolder: MIGRATIONS_FOLDER });
    } finally {
      await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
      await client.end();
    }
    return;
  }
  if (!opts.database || opts.database.driver !== 'pglite') throw new Error('runMigrations needs a database URL or a PGlite database');
  const { migrate } = await import('drizzle-orm/pglite/migrator');
  // PGlite is single-connection and single-process: no lock needed.
  await migrate(opts.database.db as never, { migrationsFolder: MIGRATIONS_FOLDER });
}

/** Raw rows of a statement, for the few hand-written SQL statements that drizzle cannot express. */
export async function queryRows<T>(db: Db, query: SQL): Promise<T[]> {
  const result = (await db.execute(query)) as unknown as { rows: T[] };
  return result.rows;
}

export function toBigInt(value: unknown): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return BigInt(value);
  if (value === null || value === undefined) return 0n;
  throw new TypeError(`not an integer: ${String(value)}`);
}

/** True when every committed migration has been applied (readiness). */
export async function migrationsApplied(db: Db): Promise<boolean> {
  const { readMigrationFiles } = await import('drizzle-orm/migrator');
  const expected = readMigrationFiles({ migrationsFolder: MIGRATIONS_FOLDER }).length;
  try {
    const rows = await queryRows<{ n: string | number }>(db, sql`select count(*)::int as n from drizzle.__drizzle_migrations`);
    return Number(rows[0]?.n ?? 0) >= expected;
  } catch {
    return false;
  }
}

/** Whether an error (or its cause, as drizzle wraps driver errors) is a unique-constraint violation. */
export function isUniqueViolation(error: unknown): boolean {
  let e: unknown = error;
  for (let i = 0; i < 3 && e && typeof e === 'object'; i++) {
    if ((e as { code?: unknown }).code === '23505') return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

// One database handle type for both drivers: `pg` against PostgreSQL, PGlite embedded.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import pg from 'pg';
import { drizzle as drizzlePg, type NodePgQueryResultHKT } from 'drizzle-orm/node-postgres';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import type { PgDatabase } from 'drizzle-orm/pg-core';
import { sql, type SQL } from 'drizzle-orm';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { PACKAGE_ROOT } from '../primitives/package-root.js';
import * as schema from './schema.js';

// uuid[] (org_units.path, on every unit a request reads) split at its commas: PostgreSQL writes a uuid array as
// `{a,b,c}` with bare lowercase hex elements, which the driver's generic array parser reads a character at a time (a
// page of 200 units and their parents spent ~3 ms there). Anything else (NULL elements, nested arrays) goes to the
// generic parser. Set on the driver's global table because drizzle's queries fall back to it.
const UUID_ARRAY_OID = 2951 as Parameters<typeof pg.types.getTypeParser>[0]; // _uuid: not in the driver's list of builtins
const genericUuidArray = pg.types.getTypeParser(UUID_ARRAY_OID, 'text') as (text: string) => unknown;
const BARE_UUID_LIST = /^[0-9a-f,-]*$/;
export function parseUuidArray(text: string): unknown {
  if (text === '{}') return [];
  const inner = text.slice(1, -1);
  if (text.charCodeAt(0) !== 123 || text.charCodeAt(text.length - 1) !== 125 || !BARE_UUID_LIST.test(inner)) return genericUuidArray(text);
  return inner.split(',');
}
pg.types.setTypeParser(UUID_ARRAY_OID, 'text', parseUuidArray);

// integer[] (budgets.alert_thresholds, on every budget a request reads) the same way: `{50,80,100}` split at its
// commas, each element read as the driver reads it (base-10 parseInt); any other shape goes to the generic parser
// (a page's 400 budgets allocated ~370 KB in it).
const INT4_ARRAY_OID = 1007 as Parameters<typeof pg.types.getTypeParser>[0];
const genericIntArray = pg.types.getTypeParser(INT4_ARRAY_OID, 'text') as (text: string) => unknown;
const BARE_INT_LIST = /^\{-?\d+(?:,-?\d+)*\}$/;
export function parseIntArray(text: string): unknown {
  if (text === '{}') return [];
  if (!BARE_INT_LIST.test(text)) return genericIntArray(text);
  return text.slice(1, -1).split(',').map((n) => parseInt(n, 10));
}
pg.types.setTypeParser(INT4_ARRAY_OID, 'text', parseIntArray);

/** The database or a transaction: domain functions take it as their first argument. */
export type Db = PgDatabase<NodePgQueryResultHKT, typeof schema>;

export interface Database {
  readonly db: Db;
  readonly driver: 'pg' | 'pglite';
  close(): Promise<void>;
  /** Called with every SQL statement text; tests count statements with it. */
  onQuery?: (text: string) => void;
  /**
   * Embedded PGlite only (one process, one connection): LISTEN on the database's own connection. With PostgreSQL,
   * notifications are heard on the dedicated listener connection (src/db/notifications.ts).
   */
  listen?: (channel: string, handler: (payload: string) => void) => Promise<void>;
}

export const MIGRATIONS_FOLDER = join(PACKAGE_ROOT, 'migrations');
/** Arbitrary but fixed: replicas starting together run migrations one at a time. */
const MIGRATION_LOCK_KEY = 72_410_331;

export interface OpenDatabaseOptions {
  databaseUrl?: string | undefined;
  dataDir: string;
  poolSize?: number;
  /** How long a request waits for a pooled connection (or a new one) before it fails as unavailable; 0 = no limit. */
  connectTimeoutMs?: number;
  /**
   * Told about every connection the server or the network dropped (a restart, a failover), idle or checked
   * out. The query in flight on it fails on its own (a transaction is rolled back by the server); the pool
   * replaces the connection. Without this listener the driver's 'error' event would end the process.
   */
  onConnectionError?: (error: Error) => void;
}

// int8 and numeric stay strings at the driver; drizzle's bigint mode and our code turn them into bigint.
export async function openDatabase(opts: OpenDatabaseOptions): Promise<Database> {
  const database: { -readonly [K in keyof Database]: Database[K] } = {} as Database;
  const logger = { logQuery: (query: string) => database.onQuery?.(query) };
  if (opts.databaseUrl) {
    const pool = new pg.Pool({
      connectionString: opts.databaseUrl,
      max: opts.poolSize ?? 10,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 0,
      keepAlive: true,
    });
    const lost = (error: Error) => opts.onConnectionError?.(error);
    // Idle clients: the pool removes them. Checked-out clients (a transaction in progress) get their own
    // listener when they connect, so a dropped connection fails only the query in flight.
    pool.on('error', lost);
    pool.on('connect', (client) => {
      client.on('error', lost);
      traceStatements(client);
    });
    traceStatements(pool);
    database.db = drizzlePg(pool, { schema, logger }) as unknown as Db;
    pgPools.set(database.db, { pool, logQuery: logger.logQuery });
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
  const pglite = client;
  database.listen = async (channel, handler) => {
    await pglite.listen(channel, handler);
  };
  database.close = async () => {
    await client.close();
    await release();
  };
  return database;
}

const sqlTracer = trace.getTracer('heygen-gateway.db');

/**
 * A span per SQL statement, child of the span in progress (a request's, through its GraphQL operation): only when
 * that span is recording, so a gateway without tracing, and background work outside a trace, pay one check.
 * Statements through the pool are spanned at `pool.query` (which runs them on a client with a callback, where the
 * caller's context may already be lost); statements of a transaction on its own client at `client.query` (promise
 * form, which is how drizzle calls both). The span has the statement's text, with its `$n` placeholders: parameter
 * values (caller input, secrets) are never recorded.
 */
function traceStatements(target: { query: (...args: never[]) => unknown }): void {
  const query = target.query as (...args: unknown[]) => unknown;
  (target as { query: unknown }).query = function tracedQuery(this: unknown, ...args: unknown[]): unknown {
    const active = context.active();
    if (!trace.getSpan(active)?.isRecording() || typeof args.at(-1) === 'function') return query.apply(this, args);
    const first = args[0] as string | { text?: unknown; submit?: unknown } | undefined;
    const text = typeof first === 'string' ? first : typeof first?.text === 'string' && typeof first.submit !== 'function' ? first.text : null;
    if (text === null) return query.apply(this, args);
    const operation = /^\s*([A-Za-z]+)/.exec(text)?.[1]?.toUpperCase() ?? 'SQL';
    const span = sqlTracer.startSpan(
      operation,
      { kind: SpanKind.CLIENT, attributes: { 'db.system.name': 'postgresql', 'db.operation.name': operation, 'db.query.text': text } },
      active,
    );
    const failed = (error: unknown) => {
      const code = (error as { code?: unknown } | null)?.code;
      span.setAttribute('error.type', typeof code === 'string' ? code : 'error');
      span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    };
    let result: unknown;
    try {
      result = query.apply(this, args);
    } catch (error) {
      failed(error);
      throw error;
    }
    (result as Promise<unknown>).then(() => span.end(), failed);
    return result;
  };
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
    const client = new pg.Client({ connectionString: opts.databaseUrl, connectionTimeoutMillis: 10_000 });
    // A dropped connection rejects the statement in flight (and so the start-up); it must not also end the process.
    client.on('error', () => undefined);
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

/**
 * The pool under each `pg` database handle, for named statements (below). A transaction's handle is not in it, nor is
 * an embedded (PGlite) database's: those run the same text through drizzle.
 */
const pgPools = new WeakMap<Db, { pool: pg.Pool; logQuery: (query: string) => void }>();

/** Values as drizzle's node-postgres driver reads them (timestamps, dates and intervals stay text), so rows are the same either way. */
const RAW_TEXT_TYPES = new Set<number>([pg.types.builtins.TIMESTAMPTZ, pg.types.builtins.TIMESTAMP, pg.types.builtins.DATE, pg.types.builtins.INTERVAL, 1231, 1115, 1185, 1187, 1182]);
const asText = (value: string) => value;
const DRIZZLE_TYPES = {
  getTypeParser: ((typeId: number, format?: 'text' | 'binary') =>
    RAW_TEXT_TYPES.has(typeId) ? asText : pg.types.getTypeParser(typeId, format)) as typeof pg.types.getTypeParser,
};

/** A statement of fixed text with `$1…$n` parameters, sent by name (see `namedStatement`). */
export interface NamedStatement<T> {
  readonly name: string;
  readonly text: string;
  /** Its rows for these parameter values. */
  rows(db: Db, values: readonly unknown[]): Promise<T[]>;
}

/**
 * The one way the hot paths send SQL (a submission, its forwarding, a webhook's hint, the worker's claim, the status
 * read's outcome, the outbox, the budget reads apps poll): fixed text written once, sent straight to the `pg` pool under a statement name, so that
 * each connection parses and plans it once and no query builder runs per call (drizzle's building and mapping of a
 * statement cost more CPU in the gateway than the statement's own round trip). The rows are as drizzle's driver would
 * give them (`DRIZZLE_TYPES`); the statement is counted by `Database.onQuery` and traced like any other. In a
 * transaction, or on the embedded database, the same text runs through drizzle. Names must be unique.
 */
export function namedStatement<T>(name: string, text: string): NamedStatement<T> {
  if (namedStatements.has(name)) throw new Error(`two statements are named ${name}`);
  namedStatements.add(name);
  // For drizzle (transactions, PGlite): the text with its parameters as drizzle parameters.
  const parts = text.split(/\$(\d+)/);
  return {
    name,
    text,
    async rows(db, values) {
      const direct = pgPools.get(db);
      if (direct) {
        direct.logQuery(text);
        const result = await direct.pool.query<T & pg.QueryResultRow>({ name, text, values: values as unknown[], types: DRIZZLE_TYPES });
        return result.rows;
      }
      const chunks: SQL[] = [];
      for (let i = 0; i < parts.length; i++) chunks.push(i % 2 === 0 ? sql.raw(parts[i]!) : sql`${sql.param(values[Number(parts[i]) - 1])}`);
      return queryRows<T>(db, sql.join(chunks));
    },
  };
}
const namedStatements = new Set<string>();

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

export interface Readiness {
  database: boolean;
  migrations: boolean;
}

/** Readiness: the database answers within `timeoutMs` and every committed migration is applied. Never throws. */
export async function checkReadiness(db: Db, timeoutMs = 2_000): Promise<Readiness> {
  const checks: Readiness = { database: false, migrations: false };
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  const probe = (async () => {
    await db.execute(sql`select 1`);
    checks.database = true;
    checks.migrations = await migrationsApplied(db);
  })().catch(() => undefined);
  await Promise.race([probe, deadline]);
  clearTimeout(timer);
  // A probe that finished late must not turn a timed-out check ready.
  return { ...checks };
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

/** Node socket errors that mean the database could not be reached or the connection broke. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);
/**
 * SQLSTATEs of a server that is going away or not there yet: 57P01 admin_shutdown, 57P02 crash_shutdown,
 * 57P03 cannot_connect_now (starting up, shutting down, in recovery), 53300 too_many_connections, and class 08
 * (connection exceptions).
 */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300']);
/** What node-postgres and its pool say (without a code) when a connection ends or cannot be had. */
const UNAVAILABLE_MESSAGES = [
  /Connection terminated/i,
  /connection error and is not queryable/i,
  /timeout exceeded when trying to connect/i,
  /Client was closed and is not queryable/i,
  /the database system is (starting up|shutting down|in recovery mode)/i,
];

/**
 * The one place that decides whether a failure means "the database is away" (a restart, a failover, a
 * network cut) rather than a bug or a refused statement: surfaces map it to a retryable UNAVAILABLE / 503 and
 * background work backs off on it. Looks through drizzle's wrapping (DrizzleQueryError's `cause`), GraphQL's
 * (`originalError`) and Node's AggregateError (one error per address tried), but not through other causes, so
 * that a failed HTTP call to HeyGen (whose cause may be an ECONNREFUSED too) is never read as the database.
 * Driver messages count only on plain `Error`s, which is what node-postgres throws.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  const visit = (e: unknown, depth: number): boolean => {
    if (!e || typeof e !== 'object' || depth > 6) return false;
    const { code, message, cause, originalError, errors, query } = e as Record<string, unknown>;
    if (typeof code === 'string' && (NETWORK_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code) || /^08[0-9A-Z]{3}$/.test(code))) return true;
    const plain = Object.getPrototypeOf(e) === Error.prototype;
    if (plain && typeof message === 'string' && UNAVAILABLE_MESSAGES.some((re) => re.test(message))) return true;
    if (e instanceof AggregateError && Array.isArray(errors)) return errors.some((inner) => visit(inner, depth + 1));
    if (typeof query === 'string' && visit(cause, depth + 1)) return true;
    return visit(originalError, depth + 1);
  };
  return visit(error, 0);
}

/** The driver's own words for a failure (code and first line), without drizzle's SQL text and parameters: for logs. */
export function driverReason(error: unknown): string {
  let e: unknown = error;
  for (let i = 0; i < 6 && e && typeof e === 'object'; i++) {
    const { query, cause, originalError } = e as Record<string, unknown>;
    const next = typeof query === 'string' ? cause : originalError;
    if (!next) break;
    e = next;
  }
  if (e instanceof AggregateError) e = e.errors[0] ?? e;
  if (!(e instanceof Error)) return String(e);
  const code = (e as { code?: unknown }).code;
  const line = e.message.split('\n')[0]!.slice(0, 200);
  return typeof code === 'string' ? `${code} ${line}` : line;
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

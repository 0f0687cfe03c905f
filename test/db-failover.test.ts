// A database connection lost in the middle of a transaction: the statement fails with an error the gateway
// recognises as "database unavailable", the transaction is rolled back, the process does not die (node-postgres
// emits 'error' on the checked-out client), and the pool serves again. Background passes back off on it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { DrizzleQueryError } from 'drizzle-orm/errors';
import { GraphQLError } from 'graphql';
import pg from 'pg';
import { driverReason, isDatabaseUnavailable, isUniqueViolation, openDatabase, queryRows, type Database } from '../src/db/client.js';
import { failureDelayMs, runPeriodically } from '../src/background/periodic.js';
import { HeygenError } from '../src/heygen/client.js';
import { createTestDatabase, type TestDatabase } from './support/db.js';
import { waitFor } from './support/harness.js';
import type { Logger } from '../src/logging.js';

const codeError = (message: string, code: string) => Object.assign(new Error(message), { code });

describe('isDatabaseUnavailable', () => {
  it.each([
    ['a refused connection', codeError('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')],
    ['a reset connection', codeError('read ECONNRESET', 'ECONNRESET')],
    ['admin_shutdown (57P01)', codeError('terminating connection due to administrator command', '57P01')],
    ['crash_shutdown (57P02)', codeError('terminating connection because of crash of another server process', '57P02')],
    ['cannot_connect_now (57P03)', codeError('the database system is starting up', '57P03')],
    ['a connection exception (08006)', codeError('connection failure', '08006')],
    ['too many connections (53300)', codeError('sorry, too many clients already', '53300')],
    ['the driver losing the socket', new Error('Connection terminated unexpectedly')],
    ['a client that already failed', new Error('Client has encountered a connection error and is not queryable')],
    ['the pool timing out', new Error('timeout exceeded when trying to connect')],
    ['drizzle wrapping a driver error', new DrizzleQueryError('select 1', [], codeError('terminating connection due to administrator command', '57P01') as Error)],
    ['GraphQL wrapping drizzle', new GraphQLError('x', { originalError: new DrizzleQueryError('select 1', [], new Error('Connection terminated unexpectedly')) })],
    ['every address refused', new AggregateError([codeError('connect ECONNREFUSED ::1:5432', 'ECONNREFUSED'), codeError('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')])],
  ])('recognises %s', (_name, error) => {
    expect(isDatabaseUnavailable(error)).toBe(true);
  });

  it.each([
    ['a unique violation', codeError('duplicate key value violates unique constraint', '23505')],
    ['a syntax error', codeError('syntax error at or near "selec"', '42601')],
    ['a date out of range', new DrizzleQueryError('select $1::timestamptz', ['x'], codeError('date/time field value out of range', '22008') as Error)],
    ['a bug', new TypeError('Cannot read properties of undefined')],
    // HeyGen being unreachable is an upstream matter, not the database, even when its cause is the same errno.
    ['a failed call to HeyGen', Object.assign(new TypeError('fetch failed'), { cause: codeError('connect ECONNREFUSED 127.0.0.1:4100', 'ECONNREFUSED') })],
    ['a HeyGen error quoting a driver message', new HeygenError('submitJob: HTTP 502 bad_gateway: Connection terminated unexpectedly', { httpStatus: 502, code: 'bad_gateway', retryable: true })],
    ['nothing', undefined],
  ])('does not take %s for an outage', (_name, error) => {
    expect(isDatabaseUnavailable(error)).toBe(false);
  });
});

it('logs the driver reason of an outage without the SQL or its parameters', () => {
  const error = new GraphQLError('x', {
    originalError: new DrizzleQueryError('select secret_column from t where id = $1', ['param-value'], codeError('terminating connection due to administrator command', '57P01') as Error),
  });
  expect(driverReason(error)).toBe('57P01 terminating connection due to administrator command');
  expect(driverReason(new AggregateError([codeError('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')]))).toBe('ECONNREFUSED connect ECONNREFUSED 127.0.0.1:5432');
});

describe('background backoff', () => {
  it('doubles from the interval per failure, caps, and jitters between half and all of it', () => {
    expect(failureDelayMs(1, 100, 1000, () => 0)).toBe(50);
    expect(failureDelayMs(1, 100, 1000, () => 1)).toBe(100);
    expect(failureDelayMs(3, 100, 1000, () => 1)).toBe(400);
    expect(failureDelayMs(10, 100, 1000, () => 1)).toBe(1000);
    expect(failureDelayMs(60, 100, 1000, () => 0)).toBe(500);
    // The cap never undercuts the interval itself.
    expect(failureDelayMs(5, 2000, 1000, () => 1)).toBe(2000);
  });

  it('a pass failing on the database backs off with warnings (no error lines) and resumes', async () => {
    const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
    const at = (level: string) => (obj: Record<string, unknown>, msg: string) => void lines.push({ level, obj, msg });
    const logger = { warn: at('warn'), error: at('error'), info: at('info') } as unknown as Logger;
    let calls = 0;
    const periodic = runPeriodically(
      'test worker',
      async () => {
        calls++;
        if (calls <= 4) throw new DrizzleQueryError('select 1', [], new Error('Connection terminated unexpectedly'));
        return false;
      },
      10,
      logger,
      { backoffMaxMs: 40, random: () => 1 },
    );
    await waitFor(async () => lines.some((l) => l.msg === 'test worker resumed'), 5_000, 5);
    await periodic.stop();
    const warnings = lines.filter((l) => l.level === 'warn');
    expect(lines.filter((l) => l.level === 'error')).toEqual([]);
    expect(warnings.map((l) => l.obj.retryInMs)).toEqual([10, 20, 40, 40]);
    expect(warnings[0]!.msg).toBe('test worker: database unavailable; backing off');
  });

  it('any other failure is logged at error level and backed off too', async () => {
    const lines: string[] = [];
    const logger = { warn: () => lines.push('warn'), error: () => lines.push('error'), info: () => lines.push('info') } as unknown as Logger;
    let calls = 0;
    const periodic = runPeriodically('w', async () => {
      calls++;
      if (calls === 1) throw new Error('a bug');
      return false;
    }, 10, logger);
    await waitFor(async () => lines.includes('info'), 5_000, 5);
    await periodic.stop();
    expect(lines).toEqual(['error', 'info']);
  });
});

describe('a connection lost inside a transaction (real PostgreSQL)', () => {
  let testDb: TestDatabase;
  let database: Database;
  const lost: Error[] = [];

  beforeAll(async () => {
    testDb = await createTestDatabase();
    database = await openDatabase({ databaseUrl: testDb.url, dataDir: 'memory://', poolSize: 3, onConnectionError: (e) => lost.push(e) });
    await database.db.execute(sql`create table money (amount bigint not null)`);
  });
  afterAll(async () => {
    await database?.close();
    await testDb?.drop();
  });

  it('fails the statement as unavailable, rolls the transaction back, keeps the process up, and serves again', async () => {
    const admin = new pg.Client({ connectionString: testDb.url });
    await admin.connect();
    let caught: unknown;
    try {
      await database.db.transaction(async (tx) => {
        await tx.execute(sql`insert into money (amount) values (100)`);
        const [row] = await queryRows<{ pid: number }>(tx, sql`select pg_backend_pid() as pid`);
        // The server ends this session (what a restart or failover does to every session).
        await admin.query('select pg_terminate_backend($1)', [row!.pid]);
        await waitFor(async () => lost.length > 0, 5_000, 10);
        await tx.execute(sql`insert into money (amount) values (200)`);
      });
    } catch (error) {
      caught = error;
    } finally {
      await admin.end();
    }
    expect(caught).toBeDefined();
    expect(isDatabaseUnavailable(caught)).toBe(true);
    expect(isUniqueViolation(caught)).toBe(false);
    expect(lost.length).toBeGreaterThanOrEqual(1);
    // Nothing of the interrupted transaction was committed, and the pool hands out a working connection.
    const [count] = await queryRows<{ n: number }>(database.db, sql`select count(*)::int as n from money`);
    expect(count!.n).toBe(0);
    await database.db.transaction(async (tx) => tx.execute(sql`insert into money (amount) values (300)`));
    const [sum] = await queryRows<{ total: string }>(database.db, sql`select sum(amount)::text as total from money`);
    expect(sum!.total).toBe('300');
  });

  it('an idle pooled connection dropped by the server is replaced without an error event escaping', async () => {
    const before = lost.length;
    const admin = new pg.Client({ connectionString: testDb.url });
    await admin.connect();
    try {
      await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`);
    } finally {
      await admin.end();
    }
    await waitFor(async () => lost.length > before, 5_000, 10);
    const [row] = await queryRows<{ one: number }>(database.db, sql`select 1 as one`);
    expect(row!.one).toBe(1);
  });
});

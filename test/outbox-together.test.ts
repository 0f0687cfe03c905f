// The outbox worker's pass for a topic delivered together (`deliverAll`, src/outbox/worker.ts), against real
// PostgreSQL: each event's attempt is recorded as it would be alone, in one statement for the pass (delivered,
// failed and retried after a backoff, given up on the last attempt), an event whose own delivery failed fails alone,
// a `deliverAll` that throws has each event of the pass delivered alone (one bad event fails only itself), and an
// event another process's pass has already moved on is left as it is.
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness.js';
import { queryRows } from '../src/db/client.js';
import { enqueueEvents, type AttemptResult, type ClaimedEvent } from '../src/outbox/outbox.js';
import { deliveredTogether, runOutboxOnce, type OutboxDeps, type OutboxHandler } from '../src/outbox/worker.js';

let h: Harness;
let statements: string[] = [];

beforeAll(async () => {
  h = await startHarness({ workers: false });
});
afterAll(async () => {
  await h?.close();
});

/**
 * A handler whose pass answers, per event, what `answer` says for its key: delivered, failed alone (an Error), or
 * `throw`: the whole `deliverAll` throws (as a statement failing because of that one event would).
 */
function handler(answer: (key: string) => 'ok' | 'error' | 'throw'): OutboxHandler {
  return deliveredTogether(async (events: readonly ClaimedEvent[], now: Date): Promise<(AttemptResult | Error)[]> => {
    const keys = events.map((e) => (e.payload as { key: string }).key);
    if (keys.some((k) => answer(k) === 'throw')) throw new Error('the pass broke');
    return keys.map((k, i) => (answer(k) === 'ok' ? { ok: true, httpStatus: null, error: null, startedAt: now, durationMs: 3 } : new Error(`no ${events[i]!.id}`)));
  });
}

/** A topic of each test's own: no test claims another's events. */
function deps(topic: string, handle: OutboxHandler): OutboxDeps {
  return { ...h.services.outboxDeps, handlers: new Map([[topic, handle]]), settings: { ...h.services.outboxDeps.settings, batchSize: 50, retryBaseMs: 60_000, retryMaxMs: 60_000, random: () => 0 } };
}

async function enqueue(topic: string, prefix: string, keys: string[], maxAttempts: number, now: Date): Promise<void> {
  await enqueueEvents(
    h.services.db,
    keys.map((key) => ({ topic, kind: 'test.event', dedupeKey: `${prefix}:${key}`, payload: () => ({ key }), destination: {}, maxAttempts })),
    now,
  );
}

async function rows(prefix: string) {
  return queryRows<{ key: string; status: string; attempts: number; next_at: string | null; delivered: boolean; last_error: string | null; logged: string }>(
    h.services.db,
    sql`select split_part(e.dedupe_key, ':', 2) as key, e.status, e.attempts, to_char(e.next_attempt_at at time zone 'UTC', 'HH24:MI:SS') as next_at,
               e.delivered_at is not null as delivered, e.last_error,
               coalesce(string_agg(d.attempt || ':' || d.outcome || ':' || coalesce(d.error, '-'), ',' order by d.attempt), '') as logged
          from outbox_events e left join outbox_deliveries d on d.event_id = e.id
         where e.dedupe_key like ${`${prefix}:%`}
         group by e.id order by e.dedupe_key`,
  );
}

async function pass(d: OutboxDeps, at: Date): Promise<{ claimed: number; attemptStatements: number }> {
  statements = [];
  h.services.database.onQuery = (text) => statements.push(text);
  try {
    const claimed = await runOutboxOnce(d, at);
    return { claimed, attemptStatements: statements.filter((s) => /outbox_deliveries/.test(s)).length };
  } finally {
    h.services.database.onQuery = undefined;
  }
}

it('a pass records each event as alone, in one statement: delivered, failed and retried, given up on its last attempt', async () => {
  const t0 = new Date('2026-12-01T10:00:00Z');
  await enqueue('t1', 'mixed', ['a', 'b', 'c'], 2, t0);
  await enqueue('t1', 'last', ['d'], 1, t0);
  const d = deps('t1', handler((key) => (key === 'a' ? 'ok' : 'error')));
  expect(await pass(d, new Date(t0.getTime() + 1000))).toEqual({ claimed: 4, attemptStatements: 1 });
  const failed = 'internal error in the gateway';
  expect(await rows('mixed')).toEqual([
    { key: 'a', status: 'DELIVERED', attempts: 1, next_at: null, delivered: true, last_error: null, logged: '1:delivered:-' },
    { key: 'b', status: 'PENDING', attempts: 1, next_at: '10:00:31', delivered: false, last_error: failed, logged: `1:failed:${failed}` },
    { key: 'c', status: 'PENDING', attempts: 1, next_at: '10:00:31', delivered: false, last_error: failed, logged: `1:failed:${failed}` },
  ]);
  expect(await rows('last')).toEqual([{ key: 'd', status: 'DEAD', attempts: 1, next_at: null, delivered: false, last_error: failed, logged: `1:gave_up:${failed}` }]);

  // Not due before the backoff (equal jitter, no random part: half of the 60 s base); then the two left are delivered together, their second attempts logged.
  expect((await pass(deps('t1', handler(() => 'ok')), new Date(t0.getTime() + 30_000))).claimed).toBe(0);
  expect(await pass(deps('t1', handler(() => 'ok')), new Date(t0.getTime() + 62_000))).toEqual({ claimed: 2, attemptStatements: 1 });
  expect((await rows('mixed')).map((r) => [r.key, r.status, r.attempts, r.logged])).toEqual([
    ['a', 'DELIVERED', 1, '1:delivered:-'],
    ['b', 'DELIVERED', 2, `1:failed:${failed},2:delivered:-`],
    ['c', 'DELIVERED', 2, `1:failed:${failed},2:delivered:-`],
  ]);
});

it('a deliverAll that throws has each event of its pass delivered alone (one bad event fails only itself); a single event is delivered alone', async () => {
  const t0 = new Date('2026-12-02T10:00:00Z');
  await enqueue('t2', 'broken', ['a', 'b', 'c'], 3, t0);
  expect(await pass(deps('t2', handler((key) => (key === 'b' ? 'throw' : 'ok'))), new Date(t0.getTime() + 1000))).toEqual({ claimed: 3, attemptStatements: 3 });
  const failed = 'internal error in the gateway';
  expect((await rows('broken')).map((r) => [r.key, r.status, r.attempts, r.next_at, r.logged])).toEqual([
    ['a', 'DELIVERED', 1, null, '1:delivered:-'],
    ['b', 'PENDING', 1, '10:00:31', `1:failed:${failed}`],
    ['c', 'DELIVERED', 1, null, '1:delivered:-'],
  ]);
  await enqueue('t2', 'single', ['y'], 3, new Date(t0.getTime() + 2000));
  expect(await pass(deps('t2', handler(() => 'ok')), new Date(t0.getTime() + 3000))).toEqual({ claimed: 1, attemptStatements: 1 });
  expect((await rows('single')).map((r) => [r.key, r.status, r.logged])).toEqual([['y', 'DELIVERED', '1:delivered:-']]);
  // Retried after its backoff with the others that are due, together.
  await enqueue('t2', 'later', ['x'], 3, new Date(t0.getTime() + 61_000));
  expect(await pass(deps('t2', handler(() => 'ok')), new Date(t0.getTime() + 62_000))).toEqual({ claimed: 2, attemptStatements: 1 });
  expect((await rows('broken')).map((r) => [r.key, r.status, r.attempts])).toEqual([['a', 'DELIVERED', 1], ['b', 'DELIVERED', 2], ['c', 'DELIVERED', 1]]);
});

it('an attempt recorded after another process moved the event on (its lease ran out) changes nothing but its log', async () => {
  const t0 = new Date('2026-12-03T10:00:00Z');
  await enqueue('t3', 'late', ['a', 'b'], 3, t0);
  // This pass is slow, and its deliveries fail: meanwhile another process, the lease past, claims and delivers both.
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let entered!: () => void;
  const inside = new Promise<void>((r) => (entered = r));
  const slow = handler(() => 'error');
  const deliverAll = slow.deliverAll!;
  slow.deliverAll = async (events, now) => {
    entered();
    await gate;
    return deliverAll(events, now);
  };
  const state = () =>
    queryRows<{ key: string; status: string; attempts: number; next_attempt_at: string | null; last_error: string | null; delivered_at: string | null }>(
      h.services.db,
      sql`select split_part(dedupe_key, ':', 2) as key, status, attempts, next_attempt_at::text, last_error, delivered_at::text from outbox_events
           where dedupe_key like 'late:%' order by dedupe_key`,
    );
  const first = runOutboxOnce(deps('t3', slow), new Date(t0.getTime() + 1000));
  let delivered: Awaited<ReturnType<typeof state>>;
  try {
    await inside;
    const leaseOver = new Date(t0.getTime() + 1000 + h.services.outboxDeps.settings.leaseMs + 1000);
    expect(await runOutboxOnce(deps('t3', handler(() => 'ok')), leaseOver)).toBe(2);
    delivered = await state();
  } finally {
    release();
  }
  expect(await first).toBe(2);
  // The rows stay as the second pass left them (delivered, no error, nothing due); the first pass's attempts are logged.
  expect(delivered.map((r) => [r.key, r.status, r.attempts, r.next_attempt_at, r.last_error, r.delivered_at !== null])).toEqual([
    ['a', 'DELIVERED', 2, null, null, true],
    ['b', 'DELIVERED', 2, null, null, true],
  ]);
  expect(await state()).toEqual(delivered);
  const [log] = await queryRows<{ logged: string }>(
    h.services.db,
    sql`select string_agg(split_part(e.dedupe_key, ':', 2) || d.attempt || ':' || d.outcome, ',' order by e.dedupe_key, d.attempt) as logged
          from outbox_events e join outbox_deliveries d on d.event_id = e.id where e.dedupe_key like 'late:%'`,
  );
  expect(log!.logged).toBe('a1:failed,a2:delivered,b1:failed,b2:delivered');
});

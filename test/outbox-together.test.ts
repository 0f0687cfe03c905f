// The outbox worker's pass for a topic delivered together (`deliverAll`, src/outbox/worker.ts), against real
// PostgreSQL: each event's attempt is recorded as it would be alone, in one statement for the pass (delivered,
// failed and retried after a backoff, given up on the last attempt), an event whose own delivery failed fails alone,
// a `deliverAll` that throws fails every event of the pass (each retried), and an event another process's pass has
// already moved on is left as it is.
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness.js';
import { queryRows } from '../src/db/client.js';
import { enqueueEvents, type AttemptResult, type ClaimedEvent } from '../src/outbox/outbox.js';
import { runOutboxOnce, type OutboxDeps, type OutboxHandler } from '../src/outbox/worker.js';

let h: Harness;
let statements: string[] = [];

beforeAll(async () => {
  h = await startHarness({ workers: false });
});
afterAll(async () => {
  await h?.close();
});

/** A handler whose pass answers, per event, what `answer` says for its dedupe key (or throws, with `throws`). */
function handler(answer: (key: string) => 'ok' | 'error', throws = false): OutboxHandler {
  const deliverAll = async (events: readonly ClaimedEvent[], now: Date): Promise<(AttemptResult | Error)[]> => {
    if (throws) throw new Error('the pass broke');
    return events.map((e) =>
      answer((e.payload as { key: string }).key) === 'ok' ? { ok: true, httpStatus: null, error: null, startedAt: now, durationMs: 3 } : new Error(`no ${e.id}`),
    );
  };
  const one: OutboxHandler = async (event, now) => {
    const [r] = await deliverAll([event], now);
    if (r instanceof Error) throw r;
    return r!;
  };
  one.deliverAll = deliverAll;
  return one;
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

it('a deliverAll that throws fails every event of its pass, each retried; a single event is delivered alone', async () => {
  const t0 = new Date('2026-12-02T10:00:00Z');
  await enqueue('t2', 'broken', ['a', 'b'], 3, t0);
  expect(await pass(deps('t2', handler(() => 'ok', true)), new Date(t0.getTime() + 1000))).toEqual({ claimed: 2, attemptStatements: 1 });
  expect((await rows('broken')).map((r) => [r.key, r.status, r.attempts, r.next_at])).toEqual([
    ['a', 'PENDING', 1, '10:00:31'],
    ['b', 'PENDING', 1, '10:00:31'],
  ]);
  await enqueue('t2', 'alone', ['z'], 3, new Date(t0.getTime() + 61_000));
  expect(await pass(deps('t2', handler(() => 'ok')), new Date(t0.getTime() + 62_000))).toEqual({ claimed: 3, attemptStatements: 1 });
  expect((await rows('broken')).map((r) => [r.key, r.status, r.attempts])).toEqual([['a', 'DELIVERED', 2], ['b', 'DELIVERED', 2]]);
  await enqueue('t2', 'single', ['y'], 3, new Date(t0.getTime() + 63_000));
  expect(await pass(deps('t2', handler(() => 'ok')), new Date(t0.getTime() + 64_000))).toEqual({ claimed: 1, attemptStatements: 1 });
  expect((await rows('alone')).map((r) => [r.key, r.status, r.logged])).toEqual([['z', 'DELIVERED', '1:delivered:-']]);
  expect((await rows('single')).map((r) => [r.key, r.status, r.logged])).toEqual([['y', 'DELIVERED', '1:delivered:-']]);
});

it('an attempt recorded after another process moved the event on (its lease ran out) changes nothing but its log', async () => {
  const t0 = new Date('2026-12-03T10:00:00Z');
  await enqueue('t3', 'late', ['a', 'b'], 3, t0);
  const slow = deps('t3', handler(() => 'ok'));
  // This pass's deliveries are slow: meanwhile another process, its lease past, claims and delivers 'a'.
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const held = handler(() => 'ok');
  const deliverAll = held.deliverAll!;
  held.deliverAll = async (events, now) => {
    await gate;
    return deliverAll(events, now);
  };
  const first = runOutboxOnce({ ...slow, handlers: new Map([['t3', held]]) }, new Date(t0.getTime() + 1000));
  await new Promise((r) => setTimeout(r, 50));
  const leaseOver = new Date(t0.getTime() + 1000 + h.services.outboxDeps.settings.leaseMs + 1000);
  expect(await runOutboxOnce(slow, leaseOver)).toBe(2);
  release();
  expect(await first).toBe(2);
  // Each event delivered once (by the second pass, attempt 2); the first pass's attempt 1 is logged, moves nothing.
  expect((await rows('late')).map((r) => [r.key, r.status, r.attempts, r.logged])).toEqual([
    ['a', 'DELIVERED', 2, '1:delivered:-,2:delivered:-'],
    ['b', 'DELIVERED', 2, '1:delivered:-,2:delivered:-'],
  ]);
});

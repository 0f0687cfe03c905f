// The outbox: events are rows written in the transaction that causes them (so an event exists if and only if its
// cause committed), delivered at least once by any gateway process. A process claims due rows with
// FOR UPDATE SKIP LOCKED, counts the attempt and moves next_attempt_at past the attempt's time limit (its lease) in
// the same statement, commits, and only then calls out: no transaction stays open during a delivery, and a process
// that dies mid-attempt leaves a row that becomes due again when the lease runs out. Each attempt is logged
// (outbox_deliveries). A failed attempt is retried with exponential backoff and jitter; after max_attempts the row is
// DEAD (given up). Destinations are per topic (`app_callback`, `money_event` and the notification channels, `notify.*`), each a handler.
import { newRowId } from '../primitives/ids.js';
import { namedStatement, type Db } from '../db/client.js';
import { outboxEventsTable } from '../db/schema.js';
import { failureDelayMs } from '../background/periodic.js';
import { redactAndTruncate } from '../secrets/redact.js';

export interface OutboxEventInput {
  /** The destination kind, e.g. `app_callback`; a handler per topic delivers it. */
  topic: string;
  /** The event, e.g. `avatar_video.success`. */
  kind: string;
  /** With the topic, unique: writing the same event twice (a re-run of its cause) writes it once. */
  dedupeKey: string;
  /** Builds the payload from the event's id (so the body can carry it, e.g. HeyGen's `event_id`). */
  payload: (eventId: string) => unknown;
  destination: Record<string, unknown>;
  jobId?: string | null;
  orgUnitId?: string | null;
  maxAttempts: number;
}

/**
 * Writes events in the caller's transaction; one already written (same topic and dedupe key) is left as it is.
 * Returns the ids of the rows this call wrote.
 */
export async function enqueueEvents(tx: Db, events: readonly OutboxEventInput[], now: Date): Promise<string[]> {
  if (events.length === 0) return [];
  const rows = events.map((e) => {
    const id = newRowId();
    return {
      id,
      topic: e.topic,
      kind: e.kind,
      dedupeKey: e.dedupeKey,
      payload: e.payload(id),
      destination: e.destination,
      jobId: e.jobId ?? null,
      orgUnitId: e.orgUnitId ?? null,
      maxAttempts: e.maxAttempts,
      nextAttemptAt: now,
      createdAt: now,
    };
  });
  const written = await tx.insert(outboxEventsTable).values(rows).onConflictDoNothing({ target: [outboxEventsTable.topic, outboxEventsTable.dedupeKey] }).returning({ id: outboxEventsTable.id });
  return written.map((r) => r.id);
}

export interface ClaimedEvent {
  id: string;
  topic: string;
  kind: string;
  payload: unknown;
  destination: Record<string, unknown>;
  jobId: string | null;
  orgUnitId: string | null;
  /** This attempt's number (1 for the first). */
  attempt: number;
  maxAttempts: number;
  createdAt: Date;
}

type ClaimedEventRow = {
  id: string;
  topic: string;
  kind: string;
  payload: unknown;
  destination: Record<string, unknown>;
  job_id: string | null;
  org_unit_id: string | null;
  attempts: number;
  max_attempts: number;
  created_at: string | Date;
};
/** $1 the lease's end, $2 now, $3 the topics, $4 the most claimed. */
const CLAIM_EVENTS = namedStatement<ClaimedEventRow>(
  'gateway_outbox_claim',
  `update outbox_events set attempts = attempts + 1, next_attempt_at = $1::timestamptz
        where id in (
          select id from outbox_events
          where status = 'PENDING' and next_attempt_at <= $2::timestamptz
            and topic = any($3::text[])
          order by next_attempt_at
          limit $4
          for update skip locked)
        returning id, topic, kind, payload, destination, job_id, org_unit_id, attempts, max_attempts, created_at`,
);

/**
 * Claims up to `limit` due PENDING events of the given topics: counts the attempt and pushes next_attempt_at to
 * `now + leaseMs`, so no other process takes them while this attempt may still be running.
 */
export async function claimDueEvents(db: Db, opts: { topics: readonly string[]; limit: number; leaseMs: number; now: Date }): Promise<ClaimedEvent[]> {
  if (opts.topics.length === 0) return [];
  const until = new Date(opts.now.getTime() + opts.leaseMs);
  const rows = await CLAIM_EVENTS.rows(db, [until.toISOString(), opts.now.toISOString(), [...opts.topics], opts.limit]);
  return rows.map((r) => ({
    id: r.id,
    topic: r.topic,
    kind: r.kind,
    payload: typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload,
    destination: typeof r.destination === 'string' ? JSON.parse(r.destination) : r.destination,
    jobId: r.job_id,
    orgUnitId: r.org_unit_id,
    attempt: Number(r.attempts),
    maxAttempts: Number(r.max_attempts),
    createdAt: new Date(r.created_at),
  }));
}

/** How one attempt went. `permanent`: retrying cannot help (the event is given up at once). */
export interface AttemptResult {
  ok: boolean;
  httpStatus: number | null;
  /** Why it failed, in the gateway's words (never a secret; redacted and cut anyway). */
  error: string | null;
  permanent?: boolean;
  startedAt: Date;
  durationMs: number;
}

export interface RetrySettings {
  /** Delay before the second attempt; doubled per failed attempt, capped, with "equal jitter". */
  retryBaseMs: number;
  retryMaxMs: number;
  random?: () => number;
}

export type AttemptOutcome = 'delivered' | 'failed' | 'gave_up';

/** Delay before attempt `attempt + 1` after `attempt` failed ones. */
export function retryDelayMs(attempt: number, settings: RetrySettings): number {
  return failureDelayMs(attempt, settings.retryBaseMs, settings.retryMaxMs, settings.random);
}

/** One attempt of an event, as a pass records it. */
export interface Attempt {
  event: ClaimedEvent;
  result: AttemptResult;
}

/**
 * Logs the attempts and moves each event on: DELIVERED, PENDING again after a backoff, or DEAD. Each move is
 * conditional on its event still being PENDING at this attempt (a slower process whose lease ran out changes
 * nothing). One statement, whatever the number of attempts; answers each attempt's outcome, in order.
 */
export async function recordAttempts(db: Db, attempts: readonly Attempt[], settings: RetrySettings): Promise<AttemptOutcome[]> {
  if (attempts.length === 0) return [];
  const columns: unknown[][] = [[], [], [], [], [], [], [], []];
  const outcomes = attempts.map(({ event, result }) => {
    const outcome: AttemptOutcome = result.ok ? 'delivered' : result.permanent || event.attempt >= event.maxAttempts ? 'gave_up' : 'failed';
    const finishedAt = new Date(result.startedAt.getTime() + result.durationMs);
    const at = outcome === 'delivered' ? finishedAt : outcome === 'failed' ? new Date(finishedAt.getTime() + retryDelayMs(event.attempt, settings)) : null;
    const error = result.error === null ? null : redactAndTruncate(result.error, 500);
    const row = [event.id, event.attempt, outcome, result.httpStatus, error, result.startedAt.toISOString(), result.durationMs, at?.toISOString() ?? null];
    row.forEach((value, i) => columns[i]!.push(value));
    return outcome;
  });
  await RECORD_ATTEMPTS.rows(db, columns);
  return outcomes;
}

/**
 * recordAttempts' statement (the log rows and the events' moves, together, as a transaction of both would), one
 * array per column: $1 the events, $2 their attempts, $3 the outcomes, $4 the HTTP statuses, $5 the errors, $6 the
 * starts, $7 the durations (ms), $8 when each was delivered (`delivered`) or is due again (`failed`).
 */
const RECORD_ATTEMPTS = namedStatement<never>(
  'gateway_outbox_attempts',
  `with attempt as (
     select * from unnest($1::uuid[], $2::int[], $3::text[], $4::int[], $5::text[], $6::timestamptz[], $7::int[], $8::timestamptz[])
       as a(event_id, attempt, outcome, http_status, error, started_at, duration_ms, at)),
   logged as (
     insert into outbox_deliveries (event_id, attempt, outcome, http_status, error, started_at, duration_ms)
     select event_id, attempt, outcome, http_status, error, started_at, duration_ms from attempt
     on conflict do nothing)
   update outbox_events e
      set status = case a.outcome when 'delivered' then 'DELIVERED' when 'gave_up' then 'DEAD' else e.status end,
          delivered_at = case a.outcome when 'delivered' then a.at else e.delivered_at end,
          next_attempt_at = case a.outcome when 'failed' then a.at end,
          last_error = case a.outcome when 'delivered' then null else a.error end
     from attempt a
    where e.id = a.event_id and e.status = 'PENDING' and e.attempts = a.attempt`,
);

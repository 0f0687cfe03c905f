// The outbox's delivery loop: claims due events of the topics it has handlers for, delivers them a few at a time
// (one slow receiver does not hold up the others), and records each attempt. It runs on its own timer, apart from
// the job worker: a receiver that fails or hangs delays only its own events, never an admission or a settlement
// (those only insert a row).
import type { Db } from '../db/client.js';
import type { Logger } from '../logging.js';
import { runPeriodically, type Periodic } from '../background/periodic.js';
import { claimDueEvents, recordAttempt, type AttemptOutcome, type AttemptResult, type ClaimedEvent, type RetrySettings } from './outbox.js';

/**
 * Delivers one event once; `now` is the attempt's start (tests pin it). Throwing counts as a failed attempt.
 * `prepare`, when a handler has it, is called once per pass with the pass's events of its topic (two or more) before
 * any of them is delivered, to read what they all need in one statement; if it fails, each delivery reads alone.
 */
export type OutboxHandler = ((event: ClaimedEvent, now: Date) => Promise<AttemptResult>) & {
  prepare?: (events: readonly ClaimedEvent[]) => Promise<void>;
};

export interface OutboxSettings extends RetrySettings {
  /** Events claimed per pass. */
  batchSize: number;
  /** Deliveries in flight at once per process. */
  concurrency: number;
  /**
   * How long a claim lasts: longer than a whole pass's attempts take (a batch is claimed at once and delivered
   * `concurrency` at a time, each within the handlers' time limit).
   */
  leaseMs: number;
}

export interface OutboxDeps {
  db: Db;
  logger: Logger;
  handlers: ReadonlyMap<string, OutboxHandler>;
  settings: OutboxSettings;
  /** Told every attempt's outcome (metrics); must not throw. */
  onAttempt?: (event: ClaimedEvent, outcome: AttemptOutcome, result: AttemptResult) => void;
}

async function deliverOne(deps: OutboxDeps, event: ClaimedEvent, now: Date): Promise<void> {
  const handler = deps.handlers.get(event.topic)!;
  let result: AttemptResult;
  try {
    result = await handler(event, now);
  } catch (error) {
    deps.logger.error({ eventId: event.id, topic: event.topic, err: error }, 'outbox delivery failed unexpectedly; it will be retried');
    result = { ok: false, httpStatus: null, error: 'internal error in the gateway', startedAt: now, durationMs: 0 };
  }
  const outcome = await recordAttempt(deps.db, event, result, deps.settings);
  deps.onAttempt?.(event, outcome, result);
  const fields = { eventId: event.id, topic: event.topic, kind: event.kind, attempt: event.attempt, httpStatus: result.httpStatus, outcome };
  if (outcome === 'delivered') deps.logger.debug(fields, 'outbox event delivered');
  else if (outcome === 'gave_up') deps.logger.warn({ ...fields, error: result.error }, 'outbox event given up');
  else deps.logger.info({ ...fields, error: result.error }, 'outbox delivery failed; will retry');
}

/**
 * One pass: claims a batch and delivers it. Returns how many events it claimed. `now` pins the clock of the pass
 * (which events are due, when attempts start; tests), else each attempt starts at the real time.
 */
export async function runOutboxOnce(deps: OutboxDeps, now?: Date): Promise<number> {
  const claimed = await claimDueEvents(deps.db, {
    topics: [...deps.handlers.keys()],
    limit: deps.settings.batchSize,
    leaseMs: deps.settings.leaseMs,
    now: now ?? new Date(),
  });
  for (const [topic, handler] of deps.handlers) {
    if (!handler.prepare) continue;
    const mine = claimed.filter((e) => e.topic === topic);
    // What a failed preparation would have read, each delivery reads (and fails on) alone, as without it.
    if (mine.length > 1) await handler.prepare(mine).catch(() => undefined);
  }
  let next = 0;
  const lane = async () => {
    while (next < claimed.length) {
      const event = claimed[next++]!;
      await deliverOne(deps, event, now ?? new Date());
    }
  };
  await Promise.all(Array.from({ length: Math.min(deps.settings.concurrency, claimed.length) }, lane));
  return claimed.length;
}

export function startOutboxWorker(deps: OutboxDeps, intervalMs: number, backoffMaxMs?: number): Periodic {
  return runPeriodically('outbox worker', async () => (await runOutboxOnce(deps)) >= deps.settings.batchSize, intervalMs, deps.logger, { backoffMaxMs });
}

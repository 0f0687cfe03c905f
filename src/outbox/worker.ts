// The outbox's delivery loop: claims due events of the topics it has handlers for, delivers them a few at a time
// (one slow receiver does not hold up the others), and records each attempt. It runs on its own timer, apart from
// the job worker: a receiver that fails or hangs delays only its own events, never an admission or a settlement
// (those only insert a row). A topic whose delivery only writes to the database (the money events' fan-out) has a
// pass's events delivered together and their attempts recorded in one statement: no receiver can be slow there.
import pMap from 'p-map';
import type { Db } from '../db/client.js';
import type { Logger } from '../logging.js';
import { runPeriodically, type Periodic } from '../background/periodic.js';
import { claimDueEvents, recordAttempts, type AttemptOutcome, type AttemptResult, type ClaimedEvent, type RetrySettings } from './outbox.js';

/**
 * Delivers one event once; `now` is the attempt's start (tests pin it). Throwing counts as a failed attempt.
 * `deliverAll`, when a handler has it, delivers a pass's events of its topic (two or more) in one go, for a topic whose
 * delivery only writes to the database: each event's result in order (an Error: that event's attempt failed, as if
 * the handler had thrown), recorded together in one statement, each with the pass's duration. If it throws, each
 * event is delivered alone instead, as without it (one bad event fails only itself).
 */
export type OutboxHandler = ((event: ClaimedEvent, now: Date) => Promise<AttemptResult>) & { deliverAll?: DeliverAll };
export type DeliverAll = (events: readonly ClaimedEvent[], now: Date) => Promise<(AttemptResult | Error)[]>;

/** The handler of a topic delivered together: an event delivered alone is `deliverAll` of that one event. */
export function deliveredTogether(deliverAll: DeliverAll): OutboxHandler {
  const handler: OutboxHandler = async (event, now) => {
    const [result] = await deliverAll([event], now);
    if (result instanceof Error) throw result;
    return result!;
  };
  handler.deliverAll = deliverAll;
  return handler;
}

export interface OutboxSettings extends RetrySettings {
  /** Events claimed per pass. */
  batchSize: number;
  /** Deliveries in flight at once per process (beside them, a pass's topics delivered together, database only). */
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
    result = failed(deps, event, error, now);
  }
  const [outcome] = await recordAttempts(deps.db, [{ event, result }], deps.settings);
  reported(deps, event, outcome!, result);
}

/** A pass's events of one topic, delivered by its handler's `deliverAll` and recorded in one statement. */
async function deliverTogether(deps: OutboxDeps, deliverAll: DeliverAll, events: readonly ClaimedEvent[], now: Date): Promise<void> {
  let answers: (AttemptResult | Error)[];
  try {
    answers = await deliverAll(events, now);
  } catch (error) {
    deps.logger.warn({ topic: events[0]!.topic, events: events.length, err: error }, 'outbox events could not be delivered together; delivering each alone');
    for (const event of events) await deliverOne(deps, event, now);
    return;
  }
  const attempts = events.map((event, i) => {
    const answer = answers[i] ?? new Error('no result for the event');
    return { event, result: answer instanceof Error ? failed(deps, event, answer, now) : answer };
  });
  const outcomes = await recordAttempts(deps.db, attempts, deps.settings);
  attempts.forEach(({ event, result }, i) => reported(deps, event, outcomes[i]!, result));
}

/** A delivery that threw: a failed attempt, retried; the error is logged, never sent anywhere. */
function failed(deps: OutboxDeps, event: ClaimedEvent, error: unknown, now: Date): AttemptResult {
  deps.logger.error({ eventId: event.id, topic: event.topic, err: error }, 'outbox delivery failed unexpectedly; it will be retried');
  return { ok: false, httpStatus: null, error: 'internal error in the gateway', startedAt: now, durationMs: 0 };
}

function reported(deps: OutboxDeps, event: ClaimedEvent, outcome: AttemptOutcome, result: AttemptResult): void {
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
  const together: Promise<void>[] = [];
  const batched = new Set<string>();
  for (const [topic, handler] of deps.handlers) {
    const mine = claimed.filter((e) => e.topic === topic);
    if (!handler.deliverAll || mine.length < 2) continue;
    batched.add(topic);
    together.push(deliverTogether(deps, handler.deliverAll, mine, now ?? new Date()));
  }
  const single = claimed.filter((e) => !batched.has(e.topic));
  // A delivery records its own failure; recording it can fail (the database away): then no further one is started.
  await Promise.all([...together, pMap(single, (event) => deliverOne(deps, event, now ?? new Date()), { concurrency: deps.settings.concurrency })]);
  return claimed.length;
}

export function startOutboxWorker(deps: OutboxDeps, intervalMs: number, backoffMaxMs?: number): Periodic {
  return runPeriodically('outbox worker', async () => (await runOutboxOnce(deps)) >= deps.settings.batchSize, intervalMs, deps.logger, { backoffMaxMs });
}

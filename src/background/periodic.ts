// One way to run background work: a pass every interval (none overlapping), drained while passes report
// more work, and stoppable (waiting for the pass in progress). A failing pass (the database is away, most
// often) is retried with bounded exponential backoff and jitter, logged at warn for an unreachable database.
import type { Logger } from '../logging.js';
import { driverReason, isDatabaseUnavailable } from '../db/client.js';

export interface Periodic {
  stop(): Promise<void>;
}

export interface PeriodicOptions {
  /** Cap of the delay after consecutive failures (default 30 s, never below the interval). */
  backoffMaxMs?: number;
  /** Source of randomness for the jitter (tests pin it). */
  random?: () => number;
}

/**
 * Delay before the next pass after `failures` consecutive failed passes: the interval doubled per failure,
 * capped, then "equal jitter" (between half and all of it) so that a fleet does not retry in step.
 */
export function failureDelayMs(failures: number, intervalMs: number, backoffMaxMs: number, random: () => number = Math.random): number {
  const cap = Math.max(backoffMaxMs, intervalMs);
  const exp = Math.min(cap, intervalMs * 2 ** Math.min(Math.max(failures - 1, 0), 30));
  return Math.round(exp / 2 + (random() * exp) / 2);
}

/** `pass` returns true when it may have left work behind (a full batch), to run again at once. */
export function runPeriodically(name: string, pass: () => Promise<boolean>, intervalMs: number, logger: Logger, opts: PeriodicOptions = {}): Periodic {
  const backoffMaxMs = opts.backoffMaxMs ?? 30_000;
  let stopped = false;
  let running: Promise<void> | null = null;
  let timer: NodeJS.Timeout | null = null;
  let failures = 0;
  /** Runs passes until none is left; returns the delay before the next one. */
  const drain = async (): Promise<number> => {
    try {
      while (!stopped && (await pass())) {
        /* a full batch came back: go again */
      }
      if (failures > 0) logger.info({ failures }, `${name} resumed`);
      failures = 0;
      return intervalMs;
    } catch (error) {
      failures += 1;
      const delay = failureDelayMs(failures, intervalMs, backoffMaxMs, opts.random);
      if (isDatabaseUnavailable(error)) {
        // One line per attempt, and attempts back off: an outage does not flood the log.
        logger.warn({ failures, retryInMs: delay, reason: driverReason(error) }, `${name}: database unavailable; backing off`);
      } else {
        logger.error({ err: error, failures, retryInMs: delay }, `${name} pass failed`);
      }
      return delay;
    }
  };
  const schedule = (delay: number) => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = drain().then((next) => {
        running = null;
        schedule(next);
      });
    }, delay);
  };
  schedule(0);
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}

// One way to run background work: a pass every interval (none overlapping), drained while passes report
// more work, and stoppable (waiting for the pass in progress). A failing pass (the database is away, most
// often) is retried with bounded exponential backoff and jitter, logged at warn for an unreachable database.
import type { Logger } from '../logging.js';
import { driverReason, isDatabaseUnavailable } from '../db/client.js';

export interface Periodic {
  stop(): Promise<void>;
  /**
   * Asks for a pass within `withinMs` (sooner than the interval would bring it), or within `withinMs` of the end of the
   * pass in progress. Calls while one is pending share it. Ignored while failed passes are backing off.
   */
  runWithin(withinMs: number): void;
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
  /** When the timer's pass runs (ms since the epoch), and the soonest runWithin asked for during a pass. */
  let timerAt = 0;
  let wokenDuringPass: number | null = null;
  const schedule = (delay: number) => {
    if (stopped) return;
    timerAt = Date.now() + delay;
    timer = setTimeout(() => {
      timer = null;
      running = drain().then((next) => {
        running = null;
        const woken = wokenDuringPass;
        wokenDuringPass = null;
        schedule(woken !== null && failures === 0 ? Math.min(next, woken) : next);
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
    runWithin(withinMs) {
      if (stopped || failures > 0) return;
      if (running) {
        wokenDuringPass = Math.min(wokenDuringPass ?? withinMs, withinMs);
        return;
      }
      if (timer && timerAt > Date.now() + withinMs) {
        clearTimeout(timer);
        schedule(withinMs);
      }
    },
  };
}

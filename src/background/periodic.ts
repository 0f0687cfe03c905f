// One way to run background work: a pass every interval (none overlapping), drained while passes report
// more work, and stoppable (waiting for the pass in progress).
import type { Logger } from '../logging.js';

export interface Periodic {
  stop(): Promise<void>;
}

/** `pass` returns true when it may have left work behind (a full batch), to run again at once. */
export function runPeriodically(name: string, pass: () => Promise<boolean>, intervalMs: number, logger: Logger): Periodic {
  let stopped = false;
  let running: Promise<void> | null = null;
  let timer: NodeJS.Timeout | null = null;
  const drain = async () => {
    try {
      while (!stopped && (await pass())) {
        /* a full batch came back: go again */
      }
    } catch (error) {
      logger.error({ err: error }, `${name} pass failed`);
    }
  };
  const schedule = (delay: number) => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = drain().finally(() => {
        running = null;
        schedule(intervalMs);
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

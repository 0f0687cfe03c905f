// Whether live signals are worth sending. The triggers that announce changes to subscriptions (NOTIFY gateway_live and
// gateway_money_event, migration "live_signals_when_listened") send nothing unless some process has a row in force in
// `live_listeners`: a NOTIFY makes its transaction's commit take PostgreSQL's one lock on the notification queue, held
// until the commit is flushed, so every notifying commit of the cluster waits for the one before it. A process writes
// its row when its first stream opens (src/live/hub.ts), renews it while streams are open, and deletes it when the last
// one ends; a process that dies leaves a row that lapses after `ttlMs`.
//
// The gap at the start: a transaction whose trigger looked for listeners before the row was committed announces
// nothing, yet may commit after the new subscriber read its entity. So after writing its row a process waits until
// every transaction of the database that began before that (those are the only ones that may not have seen the row)
// has ended, and only then says it is ready and has its subscribers re-read what they follow (`onCaughtUp`).
import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { queryRows, type Db } from '../db/client.js';
import type { Logger } from '../logging.js';

export interface LivePresence {
  /**
   * This process has a stream open: its row is written (or renewed), and the promise resolves once every change
   * committed from then on is announced to it, and `onCaughtUp` has been called. It never rejects (a failure is
   * logged and retried at the next renewal, which then catches up).
   */
  activate(): Promise<void>;
  /** No stream is open any more: the row is deleted. */
  deactivate(): void;
  /** Stops renewing and deletes the row (the process is stopping). */
  close(): Promise<void>;
}

export interface LivePresenceOptions {
  /** How long a row stays in force without renewal (it is renewed every third of it). */
  ttlMs: number;
  /** The longest wait for transactions begun before the row (a transaction left open must not stall subscriptions). */
  catchUpMaxMs: number;
  logger: Logger;
  /** Called once the row is in force and the transactions that may not have seen it have ended. */
  onCaughtUp: () => void;
}

const POLL_MS = 5;

export function createLivePresence(db: Db, opts: LivePresenceOptions): LivePresence {
  const processId = randomUUID();
  let active = false;
  let written = false; // the row was last written successfully (a failed renewal catches up when it succeeds again)
  let renewal: NodeJS.Timeout | null = null;
  let chain: Promise<void> = Promise.resolve();
  const serially = (step: () => Promise<void>): Promise<void> => (chain = chain.then(step, step));

  const write = async (): Promise<boolean> => {
    try {
      await queryRows(
        db,
        sql`insert into live_listeners (process_id, expires_at) values (${processId}::uuid, now() + ${opts.ttlMs}::int * interval '1 millisecond')
            on conflict (process_id) do update set expires_at = excluded.expires_at`,
      );
      return true;
    } catch (error) {
      opts.logger.warn({ err: { message: (error as Error).message } }, 'live subscriptions: this process could not register; changes are not announced to it until it does');
      return false;
    }
  };

  /** Waits until no transaction of the database that began before now (the row committed) is still open. */
  const catchUp = async (): Promise<void> => {
    try {
      const [{ at }] = (await queryRows<{ at: string }>(db, sql`select clock_timestamp()::text as at`)) as [{ at: string }];
      const deadline = Date.now() + opts.catchUpMaxMs;
      for (;;) {
        const [row] = await queryRows<{ open: number }>(
          db,
          sql`select count(*)::int as open from pg_stat_activity
               where datname = current_database() and backend_type = 'client backend' and pid <> pg_backend_pid()
                 and xact_start < ${at}::timestamptz`,
        );
        if (!row || row.open === 0) break;
        if (Date.now() >= deadline) {
          opts.logger.warn({ open: row.open }, 'live subscriptions: transactions begun before this process registered are still open; not waiting for them any longer');
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    } catch (error) {
      opts.logger.warn({ err: { message: (error as Error).message } }, 'live subscriptions: could not wait for the transactions in flight');
    }
    opts.onCaughtUp();
  };

  const renew = () =>
    void serially(async () => {
      if (!active) return;
      const wasWritten = written;
      written = await write();
      // Back after a failure: the row may have lapsed meanwhile, so changes may have gone unannounced.
      if (written && !wasWritten) await catchUp();
    });

  const deactivate = () => {
    active = false;
    if (renewal) clearInterval(renewal);
    renewal = null;
    void serially(async () => {
      if (active) return;
      written = false;
      try {
        await queryRows(db, sql`delete from live_listeners where process_id = ${processId}::uuid`);
      } catch (error) {
        // It lapses by itself.
        opts.logger.warn({ err: { message: (error as Error).message } }, 'live subscriptions: could not unregister this process');
      }
    });
  };

  return {
    activate() {
      active = true;
      if (!renewal) {
        renewal = setInterval(renew, Math.max(1, Math.floor(opts.ttlMs / 3)));
        renewal.unref();
      }
      return serially(async () => {
        if (!active) return;
        written = await write();
        if (written) await catchUp();
      });
    },
    deactivate,
    async close() {
      if (active || written) deactivate();
      await chain;
    },
  };
}

// Whether live signals are worth sending. The triggers that announce changes to subscriptions (NOTIFY gateway_live and
// gateway_money_event, migration "live_signals_when_listened") send nothing unless some process has a row in force in
// `live_listeners`: a NOTIFY makes its transaction's commit take PostgreSQL's one lock on the notification queue, held
// until the commit is flushed, so every notifying commit of the cluster waits for the one before it. A process writes
// its row when its first stream opens (src/live/hub.ts), renews it while streams are open, and deletes it when the last
// one ends; a process that dies leaves a row that lapses after `ttlMs` (and is deleted by the next process that
// writes its own).
//
// The gap at the start: a transaction whose trigger looked for listeners before the row was committed announces
// nothing, yet may commit after the new subscriber read its entity. So after writing its row a process waits until
// every transaction of the database that began before that (those are the only ones that may not have seen the row)
// has ended, and only then is ready and has its subscribers re-read what they follow (`onCaughtUp`). It sees those
// transactions in pg_stat_activity, which shows a session's `xact_start` to its own role (and to pg_read_all_stats):
// every gateway process must connect as the same role, or be granted pg_read_all_stats.
import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { queryRows, type Db } from '../db/client.js';
import type { Logger } from '../logging.js';

export interface LivePresence {
  /** This process has a stream open: its row is written (renewed from then on), then it catches up (`ready`). */
  activate(): void;
  /**
   * Resolves once changes committed from now on reach this process's streams (at once while no stream is open);
   * rejects, with the database's error, when the row could not be written (renewals keep trying, and a later call
   * resolves once one succeeds).
   */
  ready(): Promise<void>;
  /** No stream is open any more: the row is deleted. */
  deactivate(): void;
  /** Stops renewing and deletes the row (the process is stopping). */
  close(): Promise<void>;
}

export interface LivePresenceOptions {
  /** How long a row stays in force without renewal (it is renewed every third of it). */
  ttlMs: number;
  /**
   * How long a first subscription waits for transactions begun before the row (one left open must not stall it):
   * past it the subscription is answered, and the wait goes on in the background before `onCaughtUp`.
   */
  catchUpMaxMs: number;
  logger: Logger;
  /** Called once the row is in force and the transactions that may not have seen it have ended. */
  onCaughtUp: () => void;
}

const POLL_MS = 5;
/** The background wait for transactions begun before the row, after `catchUpMaxMs`: polled this often. */
const LONG_POLL_MS = 250;
/** Attempts at writing the row when the first stream opens, this far apart, before the subscription fails. */
const FIRST_WRITE_ATTEMPTS = 3;
const FIRST_WRITE_RETRY_MS = 100;

export function createLivePresence(db: Db, opts: LivePresenceOptions): LivePresence {
  const processId = randomUUID();
  let active = false;
  let written = false; // the row was last written successfully (a failed renewal catches up when it succeeds again)
  let renewal: NodeJS.Timeout | null = null;
  let chain: Promise<void> = Promise.resolve();
  let ready: Promise<void> = Promise.resolve();
  const serially = (step: () => Promise<void>): Promise<void> => (chain = chain.then(step, step));

  /** Writes (or renews) this process's row, and deletes rows of processes that stopped renewing a while ago. */
  const write = () =>
    queryRows(
      db,
      sql`with mine as (
            insert into live_listeners (process_id, expires_at) values (${processId}::uuid, now() + ${opts.ttlMs}::int * interval '1 millisecond')
            on conflict (process_id) do update set expires_at = excluded.expires_at)
          delete from live_listeners where expires_at < now() - ${opts.ttlMs}::int * interval '1 millisecond'`,
    );

  /** How many sessions of the database have a transaction open since before `at` (this one's aside). */
  const openSince = async (at: string): Promise<number> => {
    const [row] = await queryRows<{ open: number }>(
      db,
      sql`select count(*)::int as open from pg_stat_activity
           where datname = current_database() and backend_type = 'client backend' and pid <> pg_backend_pid()
             and xact_start < ${at}::timestamptz`,
    );
    return row?.open ?? 0;
  };

  /**
   * Waits until no transaction of the database that began before now (the row committed) is still open, at most
   * `catchUpMaxMs`; past that, goes on waiting in the background. `onCaughtUp` is called once they have all ended
   * (or the wait could not be made), unless the process stopped listening meanwhile.
   */
  const catchUp = async (): Promise<void> => {
    try {
      const [{ at }] = (await queryRows<{ at: string }>(db, sql`select clock_timestamp()::text as at`)) as [{ at: string }];
      const deadline = Date.now() + opts.catchUpMaxMs;
      while (active && (await openSince(at)) > 0) {
        if (Date.now() >= deadline) {
          opts.logger.warn('live subscriptions: transactions begun before this process registered are still open; subscriptions are answered, and re-read once those end');
          void (async () => {
            while (active && (await openSince(at)) > 0) await new Promise((resolve) => setTimeout(resolve, LONG_POLL_MS));
            if (active) opts.onCaughtUp();
          })().catch((error: unknown) => {
            opts.logger.warn({ err: { message: (error as Error).message } }, 'live subscriptions: could not wait for the transactions in flight');
            if (active) opts.onCaughtUp();
          });
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    } catch (error) {
      opts.logger.warn({ err: { message: (error as Error).message } }, 'live subscriptions: could not wait for the transactions in flight');
    }
    if (active) opts.onCaughtUp();
  };

  const renew = () =>
    void serially(async () => {
      if (!active) return;
      const wasWritten = written;
      try {
        await write();
        written = true;
      } catch (error) {
        written = false;
        opts.logger.warn({ err: { message: (error as Error).message } }, 'live subscriptions: this process could not renew its registration; it retries');
        return;
      }
      // Back after a failure: the row may have lapsed meanwhile, so changes may have gone unannounced.
      if (!wasWritten) {
        await catchUp();
        ready = Promise.resolve();
      }
    });

  const deactivate = () => {
    active = false;
    ready = Promise.resolve();
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
      ready = serially(async () => {
        if (!active) return;
        for (let attempt = 1; ; attempt++) {
          try {
            await write();
            written = true;
            break;
          } catch (error) {
            written = false;
            if (attempt >= FIRST_WRITE_ATTEMPTS || !active) {
              opts.logger.warn({ err: { message: (error as Error).message } }, 'live subscriptions: this process could not register; its renewals keep trying');
              throw error;
            }
            await new Promise((resolve) => setTimeout(resolve, FIRST_WRITE_RETRY_MS));
          }
        }
        await catchUp();
      });
      // Awaited by subscriptions; a failure is theirs to report, not an unhandled rejection.
      ready.catch(() => {});
    },
    ready: () => ready,
    deactivate,
    async close() {
      if (active || written) deactivate();
      await chain.catch(() => {});
    },
  };
}

// Every statement any pg client of this test process sends to one database, whatever layer sent it (the listener's
// excepted: it only waits for notifications). Install it before the gateway opens its pool, so that every client it
// makes goes through it; restore pg's own method afterwards.
import pg from 'pg';
import { LISTENER_APPLICATION_NAME } from '../../src/db/notifications.js';

export interface StatementLog {
  /** The statements' texts, in the order they were sent; empty it to start a count. */
  readonly sent: string[];
  /** The name of the database whose statements are logged ('' for none). */
  database: string;
  /** Told each logged statement with what it was sent as (a text, or a query config with its name and values). */
  onStatement?: (text: string, query: unknown) => void;
  /** pg's own query method back. */
  restore(): void;
}

type LoggedClient = pg.Client & { database?: string; connectionParameters?: { application_name?: string } };

export function logStatements(): StatementLog {
  const original = pg.Client.prototype.query as (...args: unknown[]) => unknown;
  const log: StatementLog = {
    sent: [],
    database: '',
    restore: () => {
      pg.Client.prototype.query = original as typeof pg.Client.prototype.query;
    },
  };
  pg.Client.prototype.query = function loggedQuery(this: LoggedClient, ...args: unknown[]) {
    const first = args[0] as string | { text?: string } | undefined;
    const text = typeof first === 'string' ? first : first?.text;
    if (log.database && this.database === log.database && !String(this.connectionParameters?.application_name).startsWith(LISTENER_APPLICATION_NAME) && typeof text === 'string') {
      log.sent.push(text);
      log.onStatement?.(text, first);
    }
    return original.apply(this, args);
  } as typeof pg.Client.prototype.query;
  return log;
}

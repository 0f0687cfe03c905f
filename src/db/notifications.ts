// PostgreSQL LISTEN/NOTIFY on one dedicated connection (outside the pool): how a process learns, without a query
// per request, that another process changed something it caches (a service token revoked).
//
// Caches built on it must follow one rule: trust a cached entry only while `live` is true and the entry was
// filled under the current `epoch`. The epoch changes whenever the connection is lost or re-established, since
// notifications sent while nobody listened are gone: everything cached before is then re-read.
import { randomUUID } from 'node:crypto';
import pg from 'pg';

export interface Notifications {
  /** True while the connection is up and listening: only then may a cache be trusted. */
  readonly live: boolean;
  /** Changes on every loss and every (re)connection. */
  readonly epoch: number;
  /**
   * Calls `handler` with the payload of every notification on `channel` (one of those given at creation), and the
   * backend pid of the session that sent it.
   */
  on(channel: string, handler: (payload: string, senderPid: number) => void): void;
  /** Sends a notification from the listening connection (a no-op while it is down). */
  send(channel: string, payload: string): void;
  /**
   * Resolves once every notification committed before this call has been handled here (a notification to
   * itself comes back after them: PostgreSQL delivers in commit order). Rejects if the connection is down.
   */
  sync(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface NotificationOptions {
  databaseUrl: string;
  channels: readonly string[];
  /** Told when a live connection is lost (the log line); the listener reconnects by itself. */
  onLost?: (error: Error | undefined) => void;
  /** Told each time the connection is up and listening (again): notifications sent while it was down are gone. */
  onLive?: () => void;
  /** Told when a notification handler throws (it must not; the others still run). */
  onHandlerError?: (error: unknown) => void;
  /** A `select 1` on the connection this often; a connection that does not answer within it is dropped. */
  heartbeatMs?: number;
  /** First delay before reconnecting; doubled per failure up to reconnectMaxMs. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
}

/** The listener's connection names itself so (pg_stat_activity.application_name). */
export const LISTENER_APPLICATION_NAME = 'heygen-gateway-listener';

const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;

export function listenForNotifications(opts: NotificationOptions): Notifications {
  for (const c of opts.channels) if (!CHANNEL.test(c)) throw new Error(`invalid channel name ${c}`);
  const syncChannel = `gateway_sync_${randomUUID().replaceAll('-', '')}`;
  const heartbeatMs = opts.heartbeatMs ?? 5_000;
  const reconnectMinMs = opts.reconnectMinMs ?? 100;
  const reconnectMaxMs = opts.reconnectMaxMs ?? 5_000;
  const handlers = new Map<string, ((payload: string, senderPid: number) => void)[]>();
  const pendingSyncs = new Map<string, () => void>();
  let client: pg.Client | null = null;
  let live = false;
  let epoch = 0;
  let closed = false;
  let failures = 0;
  let reconnectTimer: NodeJS.Timeout | null = null;
  let heartbeatTimer: NodeJS.Timeout | null = null;

  const lose = (c: pg.Client, error?: Error) => {
    if (client !== c) return;
    client = null;
    if (live) opts.onLost?.(error);
    live = false;
    epoch++;
    if (heartbeatTimer) clearInterval(heartbeatTimer);
    heartbeatTimer = null;
    c.removeAllListeners('notification');
    c.end().catch(() => {});
    scheduleReconnect();
  };

  const scheduleReconnect = () => {
    if (closed || reconnectTimer) return;
    const delay = Math.min(reconnectMaxMs, reconnectMinMs * 2 ** Math.min(failures, 20));
    failures++;
    reconnectTimer = setTimeout(() => {
      reconnectTimer = null;
      void connect();
    }, delay);
    reconnectTimer.unref();
  };

  const connect = async () => {
    if (closed) return;
    const c = new pg.Client({ connectionString: opts.databaseUrl, keepAlive: true, application_name: `${LISTENER_APPLICATION_NAME}-connecting` });
    client = c;
    c.on('error', (error) => lose(c, error));
    c.on('end', () => lose(c));
    c.on('notification', (n) => {
      if (n.channel === syncChannel) {
        const done = pendingSyncs.get(n.payload ?? '');
        pendingSyncs.delete(n.payload ?? '');
        done?.();
        return;
      }
      for (const h of handlers.get(n.channel) ?? []) {
        try {
          h(n.payload ?? '', n.processId);
        } catch (error) {
          opts.onHandlerError?.(error);
        }
      }
    });
    try {
      await c.connect();
      for (const channel of [...opts.channels, syncChannel]) await c.query(`LISTEN ${channel}`);
      // Named only once listening: a process that looks for the listeners (pg_stat_activity) finds only those that hear.
      await c.query(`SET application_name = '${LISTENER_APPLICATION_NAME}'`);
    } catch (error) {
      lose(c, error as Error);
      return;
    }
    if (client !== c || closed) {
      await c.end().catch(() => {});
      return;
    }
    failures = 0;
    epoch++;
    live = true;
    opts.onLive?.();
    heartbeatTimer = setInterval(() => {
      const beat = c.query('select 1');
      const timer = setTimeout(() => lose(c, new Error('heartbeat timed out')), heartbeatMs);
      timer.unref();
      beat.then(
        () => clearTimeout(timer),
        (error: Error) => {
          clearTimeout(timer);
          lose(c, error);
        },
      );
    }, heartbeatMs);
    heartbeatTimer.unref();
  };

  void connect();

  return {
    get live() {
      return live;
    },
    get epoch() {
      return epoch;
    },
    on(channel, handler) {
      if (!opts.channels.includes(channel)) throw new Error(`not listening on ${channel}`);
      handlers.set(channel, [...(handlers.get(channel) ?? []), handler]);
    },
    send(channel, payload) {
      const c = client;
      if (!c || !live) return;
      c.query('select pg_notify($1, $2)', [channel, payload]).catch(() => {});
    },
    sync(timeoutMs = 5_000) {
      const c = client;
      if (!c || !live) return Promise.reject(new Error('the notification listener is not connected'));
      const token = randomUUID();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          pendingSyncs.delete(token);
          reject(new Error('notification sync timed out'));
        }, timeoutMs);
        pendingSyncs.set(token, () => {
          clearTimeout(timer);
          resolve();
        });
        c.query('select pg_notify($1, $2)', [syncChannel, token]).catch((error: Error) => {
          clearTimeout(timer);
          pendingSyncs.delete(token);
          reject(error);
        });
      });
    },
    async close() {
      closed = true;
      if (reconnectTimer) clearTimeout(reconnectTimer);
      if (heartbeatTimer) clearInterval(heartbeatTimer);
      const c = client;
      client = null;
      live = false;
      epoch++;
      if (c) {
        c.removeAllListeners('end');
        c.on('error', () => {});
        await c.end().catch(() => {});
      }
    },
  };
}

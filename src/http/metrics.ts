// Prometheus metrics (docs/observability.md lists them). Gauges of state are read from PostgreSQL at scrape time,
// so every replica reports the same totals; the process's own counters and histograms (src/observability/metrics.ts)
// count what this process did. Labels carry account names, unit and project ids, never keys or tokens.
// Credit-seconds are the contract's money unit, not a time: such metrics end in `_credits` (a `_seconds` suffix would
// make Prometheus tooling show them as durations).
import { sql } from 'drizzle-orm';
import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { queryRows } from '../db/client.js';
import { IN_FLIGHT_STATUSES } from '../jobs/lifecycle.js';
import type { Services } from '../app.js';

const IN_FLIGHT = sql.join(IN_FLIGHT_STATUSES.map((s) => sql`${s}`), sql`, `);

/** One read shared by the gauges of one scrape (prom-client collects them concurrently). */
function sharedPerScrape<T>(read: () => Promise<T>): () => Promise<T> {
  let inFlight: Promise<T> | null = null;
  return () => (inFlight ??= read().finally(() => { inFlight = null; }));
}

export function createMetrics(services: Services): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  new Gauge({
    name: 'gateway_jobs',
    help: 'Jobs by account and status.',
    labelNames: ['account', 'status'],
    registers: [registry],
    async collect() {
      this.reset();
      const rows = await queryRows<{ account: string; status: string; n: number }>(
        services.db,
        sql`select a.name as account, j.status::text as status, count(*)::int as n from jobs j join accounts a on a.id = j.account_id group by a.name, j.status`,
      );
      for (const row of rows) this.set({ account: row.account, status: row.status }, Number(row.n));
    },
  });
  const holds = sharedPerScrape(() =>
    queryRows<{ account: string; open: number; reserved: string }>(
      services.db,
      sql`select a.name as account, count(j.id)::int as open, (coalesce(sum(j.reserved_micro_cs), 0) / 1000000.0)::text as reserved
          from accounts a left join jobs j on j.account_id = a.id and j.status in (${IN_FLIGHT}) and j.reserved_micro_cs > 0
          group by a.name`,
    ),
  );
  new Gauge({
    name: 'gateway_holds_open',
    help: 'Holds open (jobs in flight holding credit-seconds), per account.',
    labelNames: ['account'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const row of await holds()) this.set({ account: row.account }, Number(row.open));
    },
  });
  new Gauge({
    name: 'gateway_reserved_credits',
    help: 'Credit-seconds (the contract\'s unit of usage, money, not time) held by jobs in flight, per account.',
    labelNames: ['account'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const row of await holds()) this.set({ account: row.account }, Number(row.reserved));
    },
  });
  // The worker's own claim condition (src/jobs/worker.ts): due, in flight, and not read within the status-read interval.
  const due = sharedPerScrape(() => {
    const minIntervalMs = services.jobDeps.follow.statusReadMinIntervalMs;
    return queryRows<{ account: string; due: number; lag: string | number }>(
      services.db,
      sql`select a.name as account, count(j.id)::int as due,
                 coalesce(extract(epoch from now() - min(j.next_check_at)), 0)::float8 as lag
          from accounts a left join jobs j on j.account_id = a.id and j.next_check_at <= now() and j.status in (${IN_FLIGHT})
            and (j.status in ('RESERVED', 'SUBMIT_UNKNOWN') or j.last_checked_at is null
                 or j.last_checked_at <= now() - ${minIntervalMs}::int * interval '1 millisecond')
          group by a.name`,
    );
  });
  new Gauge({
    name: 'gateway_queue_due_jobs',
    help: 'Queue depth: jobs due for the worker now (to forward, or to read), per account.',
    labelNames: ['account'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const row of await due()) this.set({ account: row.account }, Number(row.due));
    },
  });
  new Gauge({
    name: 'gateway_queue_lag_seconds',
    help: 'How long the oldest job due for the worker has been waiting (0 when none is due), per account.',
    labelNames: ['account'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const row of await due()) this.set({ account: row.account }, Math.max(0, Number(row.lag)));
    },
  });
  new Counter({
    name: 'gateway_overrun_credits_total',
    help: 'Credit-seconds HeyGen billed beyond the jobs\' holds (debited at settlement), per account and project.',
    labelNames: ['account', 'project'],
    registers: [registry],
    async collect() {
      this.reset();
      const rows = await queryRows<{ account: string; project: string; overrun: string }>(
        services.db,
        sql`select a.name as account, j.project_id::text as project, (sum(j.overrun_micro_cs) / 1000000.0)::text as overrun
            from jobs j join accounts a on a.id = j.account_id where j.overrun_micro_cs > 0 group by a.name, j.project_id`,
      );
      for (const row of rows) this.inc({ account: row.account, project: row.project }, Number(row.overrun));
    },
  });
  // The outbox, as every replica sees it: what waits, for how long, and what was given up.
  const outbox = sharedPerScrape(() =>
    queryRows<{ topic: string; pending: number; dead: number; lag: string | number }>(
      services.db,
      sql`select topic, count(*) filter (where status = 'PENDING')::int as pending, count(*) filter (where status = 'DEAD')::int as dead,
                 coalesce(extract(epoch from now() - min(created_at) filter (where status = 'PENDING')), 0)::float8 as lag
          from outbox_events where status <> 'DELIVERED' group by topic`,
    ),
  );
  new Gauge({
    name: 'gateway_outbox_pending_events',
    help: 'Outbox events not yet delivered (waiting for their first attempt or a retry), per topic.',
    labelNames: ['topic'],
    registers: [registry],
    async collect() {
      this.reset();
      this.set({ topic: 'app_callback' }, 0);
      for (const row of await outbox()) this.set({ topic: row.topic }, Number(row.pending));
    },
  });
  new Gauge({
    name: 'gateway_outbox_lag_seconds',
    help: 'Outbox lag: how long the oldest undelivered event has waited since it was written (0 when none waits), per topic.',
    labelNames: ['topic'],
    registers: [registry],
    async collect() {
      this.reset();
      this.set({ topic: 'app_callback' }, 0);
      for (const row of await outbox()) this.set({ topic: row.topic }, Math.max(0, Number(row.lag)));
    },
  });
  new Gauge({
    name: 'gateway_outbox_dead_events',
    help: 'Outbox events given up after their last attempt, per topic.',
    labelNames: ['topic'],
    registers: [registry],
    async collect() {
      this.reset();
      this.set({ topic: 'app_callback' }, 0);
      for (const row of await outbox()) this.set({ topic: row.topic }, Number(row.dead));
    },
  });
  // The concurrency queue (src/jobs/queue.ts): jobs admitted with their holds, waiting for a slot of their account.
  const waiting = sharedPerScrape(() =>
    queryRows<{ account: string; queued: number; oldest: string | number }>(
      services.db,
      sql`select a.name as account, count(j.id)::int as queued, coalesce(extract(epoch from now() - min(j.created_at)), 0)::float8 as oldest
          from accounts a left join jobs j on j.account_id = a.id and j.queued_at is not null
          group by a.name`,
    ),
  );
  new Gauge({
    name: 'gateway_concurrency_queue_jobs',
    help: 'Jobs waiting (QUEUED, their holds taken) for a concurrency slot of their account, per account.',
    labelNames: ['account'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const row of await waiting()) this.set({ account: row.account }, Number(row.queued));
    },
  });
  new Gauge({
    name: 'gateway_concurrency_queue_oldest_wait_seconds',
    help: 'How long the oldest job waiting for a concurrency slot has waited since its admission (0 when none waits), per account.',
    labelNames: ['account'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const row of await waiting()) this.set({ account: row.account }, Math.max(0, Number(row.oldest)));
    },
  });
  new Counter({
    name: 'gateway_concurrency_queue_expired_total',
    help: 'Jobs that expired waiting for a concurrency slot (QUEUE_TTL_SECONDS; their holds released), per account.',
    labelNames: ['account'],
    registers: [registry],
    async collect() {
      this.reset();
      const rows = await queryRows<{ account: string; n: number }>(
        services.db,
        sql`select a.name as account, count(j.id)::int as n from accounts a
            left join jobs j on j.account_id = a.id and j.status = 'EXPIRED' and j.failure_code = 'queue_expired' group by a.name`,
      );
      for (const row of rows) this.inc({ account: row.account }, Number(row.n));
    },
  });
  const m = services.metrics;
  const own: Metric[] = [m.admissions, m.admissionRefusals, m.heygenRequestDuration, m.httpRequestDuration, m.httpRequestsInFlight, m.httpRequestsShed, m.webhookVerificationFailures, m.outboxDeliveries, m.queueDispatches, m.memoryTrims, m.mallocFreeBytes];
  for (const metric of own) registry.registerMetric(metric);
  return registry;
}

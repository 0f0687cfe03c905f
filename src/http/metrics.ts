// Prometheus metrics. Figures are read from PostgreSQL at scrape time, so every replica reports the same
// totals; labels carry account names, never keys.
import { sql } from 'drizzle-orm';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { queryRows } from '../db/client.js';
import type { Services } from '../app.js';

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
  new Gauge({
    name: 'gateway_reserved_credit_seconds',
    help: 'Credit-seconds held by jobs in flight, per account.',
    labelNames: ['account'],
    registers: [registry],
    async collect() {
      this.reset();
      const rows = await queryRows<{ account: string; reserved: string }>(
        services.db,
        sql`select a.name as account, (coalesce(sum(j.reserved_micro_cs), 0) / 1000000.0)::text as reserved
            from accounts a left join jobs j on j.account_id = a.id group by a.name`,
      );
      for (const row of rows) this.set({ account: row.account }, Number(row.reserved));
    },
  });
  new Counter({
    name: 'gateway_overrun_credit_seconds_total',
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
  registry.registerMetric(services.admissionRefusals);
  return registry;
}

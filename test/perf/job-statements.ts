// The SQL statements the gateway sends over N jobs' whole lives (submitJob with a service token, forwarding, the
// webhook's hint, the worker's claim and status read, the settlement, the outbox's fan-out of the money event), in
// one harness with webhooks on, counted at the pg client (the listener's excepted), by statement text; the
// background loops' own statements over the same time are included (and listed).
//
//   N=20 npx tsx test/perf/job-statements.ts
import pg from 'pg';
import { sql } from 'drizzle-orm';
import { queryRows } from '../../src/db/client.js';
import { startHarness, waitFor } from '../support/harness.js';
import { createTree, issueServiceToken, SUBMIT, avatarRequest } from '../support/fixtures.js';
import { LISTENER_APPLICATION_NAME } from '../../src/db/notifications.js';
const N = Number(process.env.N ?? 20);
const sent: string[] = [];
let database = '';
const orig = pg.Client.prototype.query;
pg.Client.prototype.query = function (this: any, ...args: any[]) {
  const first = args[0];
  const text = typeof first === 'string' ? first : first?.text ?? first?.name;
  if (database && this.database === database && !String(this.connectionParameters?.application_name).startsWith(LISTENER_APPLICATION_NAME) && typeof text === 'string') sent.push(text);
  return (orig as any).apply(this, args);
} as any;
const h = await startHarness({ callbacks: true, sim: { renderMs: 0 } });
database = new URL(h.database.url).pathname.slice(1);
h.services.logger.level = 'warn';
const tree = await createTree(h, { name: 'Count' });
const svc = await issueServiceToken(h, tree.projectId, 'counted');
await h.gql(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } }, svc.token);
await new Promise((r) => setTimeout(r, 1500));
sent.length = 0;
const ids: string[] = [];
for (let i = 0; i < N; i++) {
  const r = await h.gql(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } }, svc.token);
  ids.push(r.data.submitJob.job.id);
}
await waitFor(async () => {
  const [row] = await queryRows<{ n: number }>(h.services.db, sql`select count(*)::int as n from jobs where status not in ('SUCCEEDED','FAILED','CANCELLED','EXPIRED','REJECTED')`);
  return row!.n === 0;
}, 60_000, 100);
await new Promise((r) => setTimeout(r, 1500));
const counts = new Map<string, number>();
for (const s of sent) {
  const k = s.replace(/\s+/g, ' ').slice(0, 110);
  counts.set(k, (counts.get(k) ?? 0) + 1);
}
console.log(`statements: ${sent.length} for ${N} jobs = ${(sent.length / N).toFixed(2)} per job`);
for (const [k, v] of [...counts].sort((a, b) => b[1] - a[1])) console.log(String(v).padStart(5), k);
await h.close();
process.exit(0);

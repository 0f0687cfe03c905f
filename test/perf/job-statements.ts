// The SQL statements the gateway sends over N jobs' whole lives (submitJob with a service token, forwarding, the
// webhook's hint, the worker's claim and status read, the settlement, the outbox's fan-out of the money event), in
// one harness with webhooks on, counted at the pg client (the listener's excepted), by statement text; the
// background loops' own statements over the same time are included (and listed).
//
//   N=20 npx tsx test/perf/job-statements.ts
//
// SIGNED=1: no per-job callbacks; the account has a webhook secret and this script sends each job, once HeyGen has
// it completed, one signed webhook as a registered endpoint would (the poller's first read a minute away), then waits
// for the job to settle before the next submission. HeyGen's status reads are counted too.
import pg from 'pg';
import { createHmac } from 'node:crypto';
import { decodeGlobalID } from '@pothos/plugin-relay';
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
  if (database && this.database === database && !String(this.connectionParameters?.application_name).startsWith(LISTENER_APPLICATION_NAME) && typeof text === 'string' && !text.includes('/* uncounted */')) sent.push(text);
  return (orig as any).apply(this, args);
} as any;
const SIGNED = process.env.SIGNED === '1';
const SECRET = 'whsec_job_statements';
const h = await startHarness(SIGNED ? { sim: { renderMs: 0 }, env: { POLL_MIN_INTERVAL_MS: '60000', POLL_MAX_INTERVAL_MS: '60000' } } : { callbacks: true, sim: { renderMs: 0 } });
database = new URL(h.database.url).pathname.slice(1);
h.services.logger.level = 'warn';
const tree = await createTree(h, SIGNED ? { name: 'Count', webhookSecret: SECRET } : { name: 'Count' });
const accountId = decodeGlobalID(tree.accountId).id;
const reads = () => {
  const r = h.sim.stats().requests;
  return { bulk: r['GET /v3/videos/statuses'] ?? 0, detail: r['GET /v3/videos/{video_id}'] ?? 0 };
};
async function signedWebhook(jobGlobalId: string, videoId: string): Promise<void> {
  const jobId = decodeGlobalID(jobGlobalId).id;
  const body = JSON.stringify({ event_type: 'avatar_video.success', event_data: { video_id: videoId, callback_id: jobId } });
  const res = await fetch(`${h.url}/webhooks/heygen/${accountId}`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', 'x-heygen-signature': createHmac('sha256', SECRET).update(body).digest('hex') },
  });
  if (res.status !== 202) throw new Error(`webhook answered ${res.status}`);
  await waitFor(async () => {
    const [row] = await queryRows<{ done: boolean }>(h.services.db, sql`select /* uncounted */ status in ('SUCCEEDED', 'FAILED') as done from jobs where id = ${jobId}`);
    return row!.done;
  }, 20_000, 5);
}
const svc = await issueServiceToken(h, tree.projectId, 'counted');
{
  const first = await h.gql(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } }, svc.token);
  if (SIGNED) await signedWebhook(first.data.submitJob.job.id, first.data.submitJob.job.upstreamIds[0]);
}
await new Promise((r) => setTimeout(r, 1500));
const readsBefore = reads();
// This process's CPU over the measured jobs: the gateway's work and this script's own (its GraphQL and webhook calls).
const cpuBefore = process.cpuUsage();
const wallBefore = performance.now();
sent.length = 0;
const ids: string[] = [];
for (let i = 0; i < N; i++) {
  const r = await h.gql(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } }, svc.token);
  ids.push(r.data.submitJob.job.id);
  if (SIGNED) await signedWebhook(r.data.submitJob.job.id, r.data.submitJob.job.upstreamIds[0]);
}
await waitFor(async () => {
  const [row] = await queryRows<{ n: number }>(h.services.db, sql`select count(*)::int as n from jobs where status not in ('SUCCEEDED','FAILED','CANCELLED','EXPIRED','REJECTED')`);
  return row!.n === 0;
}, 60_000, 100);
await new Promise((r) => setTimeout(r, 1500));
const cpu = process.cpuUsage(cpuBefore);
const wallMs = performance.now() - wallBefore;
const counts = new Map<string, number>();
for (const s of sent) {
  const k = s.replace(/\s+/g, ' ').slice(0, 110);
  counts.set(k, (counts.get(k) ?? 0) + 1);
}
console.log(`statements: ${sent.length} for ${N} jobs = ${(sent.length / N).toFixed(2)} per job`);
const readsAfter = reads();
console.log(`process CPU per job ${((cpu.user + cpu.system) / 1000 / N).toFixed(2)} ms (wall ${(wallMs / N).toFixed(1)} ms per job, the waits included)`);
console.log(`HeyGen status reads per job: bulk ${((readsAfter.bulk - readsBefore.bulk) / N).toFixed(2)}, detail ${((readsAfter.detail - readsBefore.detail) / N).toFixed(2)}`);
for (const [k, v] of [...counts].sort((a, b) => b[1] - a[1])) console.log(String(v).padStart(5), k);
await h.close();
process.exit(0);

// One worker pass over 50 finished jobs of one account, with HeyGen's answers LAT ms away (the simulator's latency,
// default 100), by STATUS_READ_CONCURRENCY 1 and 8 alternated: how long the pass takes to read and settle them.
//
//   npx tsx test/perf/status-read-pass.ts          LAT=250 for a farther HeyGen
import { sql } from 'drizzle-orm';
import { startHarness } from '../support/harness.js';
import { createTree, issueServiceToken, SUBMIT, avatarRequest } from '../support/fixtures.js';
import { runWorkerOnce } from '../../src/jobs/worker.js';
const h = await startHarness({ workers: false, sim: { renderMs: 0, latencyMs: Number(process.env.LAT ?? 100) }, env: { POLL_MIN_INTERVAL_MS: '10', STATUS_READ_MIN_INTERVAL_MS: '10' } });
h.services.logger.level = 'warn';
const tree = await createTree(h);
const token = (await issueServiceToken(h, tree.projectId, 'p')).token;
for (const c of [1, 8, 1, 8]) {
  h.services.jobDeps.follow.statusReadConcurrency = c;
  await Promise.all(Array.from({ length: 50 }, () => h.gql(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } }, token)));
  await h.services.db.execute(sql`update jobs set next_check_at = now() where status = 'SUBMITTED'`);
  const t = performance.now();
  const n = await runWorkerOnce(h.services.jobDeps);
  console.log(`concurrency ${c}: a pass of ${n} finished jobs in ${Math.round(performance.now() - t)} ms`);
}
await h.close(); process.exit(0);

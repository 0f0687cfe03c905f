// CALLBACK_READ_WITHIN_MS: a per-job callback (unsigned) that makes its job due brings the receiving process's worker
// pass forward, so the job is read and settled long before the worker's interval would have come round.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { createTree, issueServiceToken, SUBMIT, avatarRequest } from './support/fixtures.js';
import { queryRows } from '../src/db/client.js';
import { expectCountersEqualLedger } from './support/invariants.js';

let h: Harness;

beforeAll(async () => {
  // The worker passes once a minute; polling would read the job a minute after its submission at the soonest.
  h = await startHarness({ callbacks: true, sim: { renderMs: 0 }, env: { WORKER_INTERVAL_MS: '60000', POLL_MIN_INTERVAL_MS: '60000', POLL_MAX_INTERVAL_MS: '60000', CALLBACK_READ_WITHIN_MS: '20' } });
});
afterAll(async () => h?.close());

describe('a per-job callback', () => {
  it("brings the worker's pass forward: the job settles within seconds, not at the next interval", async () => {
    const tree = await createTree(h, { name: 'CallbackSoon' });
    const { token } = await issueServiceToken(h, tree.projectId);
    // The worker's first pass ran at start (before the tree was made): its next one is a minute away.
    const answers = await Promise.all(Array.from({ length: 3 }, () => h.gql(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } }, token)));
    const ids = answers.map((a) => decodeGlobalID(a.data.submitJob.job.id as string).id);
    await waitFor(async () => {
      const rows = await queryRows<{ status: string }>(h.services.db, sql`select status::text from jobs where id = any(${`{${ids.join(',')}}`}::uuid[])`);
      return rows.length === 3 && rows.every((r) => r.status === 'SUCCEEDED');
    }, 10_000);
    await expectCountersEqualLedger(h.services.db);
  });
});

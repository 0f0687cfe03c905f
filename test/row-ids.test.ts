// The rows the gateway creates get time-ordered ids (UUID version 7, src/primitives/ids.ts): a job, its upstream items
// and the accounts and units it runs under. Each table's primary key, and the indexes led by a job's id (its ledger
// entries, items, audit and outbox events), then grow at their right edge instead of at a random page.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { createTree, issueServiceToken, SUBMIT, avatarRequest, type Tree } from './support/fixtures.js';
import { queryRows } from '../src/db/client.js';

let h: Harness;
let tree: Tree;
let service: { token: string; id: string };

beforeAll(async () => {
  h = await startHarness({ callbacks: true, sim: { renderMs: 0 } });
  tree = await createTree(h, { name: 'Ordered' });
  service = await issueServiceToken(h, tree.projectId, 'ordered');
});

afterAll(async () => {
  await h?.close();
});

const uuidOf = (globalId: string) => Buffer.from(globalId, 'base64').toString('utf8').split(':')[1]!;
const VERSION_7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/** Milliseconds since the Unix epoch that a version-7 id carries in its first 48 bits. */
const millisOf = (id: string) => Number.parseInt(id.replaceAll('-', '').slice(0, 12), 16);

it('jobs and their items get version-7 ids, in the order they were made, carrying the time they were made', async () => {
  const started = Date.now();
  const jobs: string[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await h.gql(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } }, service.token);
    jobs.push(uuidOf(r.data.submitJob.job.id));
  }
  const ended = Date.now();
  for (const id of jobs) {
    expect(id).toMatch(VERSION_7);
    expect(millisOf(id)).toBeGreaterThanOrEqual(started);
    expect(millisOf(id)).toBeLessThanOrEqual(ended);
  }
  // Submitted one after the other: each id sorts after the one before (as PostgreSQL compares uuids, bytewise).
  expect([...jobs].sort()).toEqual(jobs);
  await waitFor(async () => {
    const [row] = await queryRows<{ n: number }>(h.services.db, sql`select count(*)::int as n from jobs where project_id = ${uuidOf(tree.projectId)}::uuid and status = 'SUCCEEDED'`);
    return row!.n === jobs.length;
  });
  const items = await queryRows<{ id: string; job_id: string }>(
    h.services.db,
    sql`select i.id::text as id, i.job_id::text as job_id from job_items i join jobs j on j.id = i.job_id
         where j.project_id = ${uuidOf(tree.projectId)}::uuid order by i.created_at, i.id`,
  );
  expect(items.map((i) => i.job_id)).toEqual(jobs);
  for (const item of items) expect(item.id).toMatch(VERSION_7);
  expect(items.map((i) => i.id).sort()).toEqual(items.map((i) => i.id));
  // The account and the units the tree was made with too.
  for (const unit of [tree.accountId, tree.projectId, tree.teamId, tree.deptId]) expect(uuidOf(unit)).toMatch(VERSION_7);
});

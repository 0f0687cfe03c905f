// A migration of a rolling deploy may add a column to a table while gateways that prepared statements on it still
// run. Statements the gateway names (prepared once per pooled connection) must not break: PostgreSQL fixes a prepared
// statement's result columns, and a `*` over a table that gained a column fails with "cached plan must not change
// result type" on every connection that prepared it, until it is recycled.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { sql } from 'drizzle-orm';
import { startHarness, type Harness } from './support/harness.js';
import { createTree, setBudget, type Tree } from './support/fixtures.js';
import { budgetsWithUsage } from '../src/budgets/budgets.js';

let h: Harness;
let tree: Tree;

beforeAll(async () => {
  h = await startHarness({ workers: false });
  tree = await createTree(h);
  await setBudget(h, { orgUnitId: tree.projectId, accountId: tree.accountId, window: 'MONTHLY', limitCreditSeconds: '5000' });
  await setBudget(h, { orgUnitId: tree.projectId, window: 'DAILY', limitCreditSeconds: '900' });
});

afterAll(async () => {
  await h?.close();
});

it('budget reads still answer after a column is added to budgets, on every connection that prepared them', async () => {
  const read = () => budgetsWithUsage(h.services.db, { unitIds: [decodeGlobalID(tree.projectId).id] }, new Date());
  // More reads at once than the pool has connections: every connection prepares the statement.
  const readAll = () => Promise.all(Array.from({ length: 2 * h.config.dbPoolSize }, read));
  const before = await readAll();
  expect(before[0]).toHaveLength(2);
  await h.services.db.execute(sql`alter table budgets add column added_by_a_later_migration int`);
  const after = await readAll();
  expect(after).toEqual(before);
});

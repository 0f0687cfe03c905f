// A migration of a rolling deploy may add a column to a table while gateways that prepared statements on it still
// run. Statements the gateway names (prepared once per pooled connection) must not break: PostgreSQL fixes a prepared
// statement's result columns, and a `*` over a table that gained a column fails with "cached plan must not change
// result type" on every connection that prepared it, until it is recycled.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { sql } from 'drizzle-orm';
import { planningsPerStep } from './support/planning.js';
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
  // Past each connection's fifth execution too, where PostgreSQL keeps the statement's generic plan.
  for (let i = 0; i < 4; i++) await readAll();
  await h.services.db.execute(sql`alter table budgets add column added_by_a_later_migration int`);
  const after = await readAll();
  expect(after).toEqual(before);
});

it("a balance read plans the function's statement once per session, not at every execution", async () => {
  // Left to PostgreSQL, a read of one unit's budgets got a custom plan at every execution: the planner saw how short
  // the id array was, and the custom plan always looked cheaper than the generic one (~1.5 ms of planning against
  // ~0.2 ms of execution). The function plans its statement once per session (a generic plan). The call is a prepared
  // statement, as the gateway's is: PostgreSQL plans it for its first five executions, then keeps its generic plan.
  // The control takes the function's setting away on this file's own database.
  const unit = decodeGlobalID(tree.projectId).id;
  const plannedPerRead = (): Promise<number[]> =>
    planningsPerStep(h.database.url, 10, async (client) => {
      const { rows } = await client.query({ name: 'balance', text: 'select (r.budget).id from gateway_budgets_with_usage($1::timestamptz, $2::uuid[], true) r', values: [new Date().toISOString(), [unit]] });
      expect(rows).toHaveLength(2);
    });
  const FN = 'gateway_budgets_with_usage(timestamptz, uuid[], boolean)';
  const withSetting = await plannedPerRead();
  let withoutSetting: number[];
  await h.services.db.execute(sql.raw(`alter function ${FN} reset plan_cache_mode`));
  try {
    withoutSetting = await plannedPerRead();
  } finally {
    await h.services.db.execute(sql.raw(`alter function ${FN} set plan_cache_mode = force_generic_plan`));
  }
  const shown = `with: ${withSetting.join(', ')}; without: ${withoutSetting.join(', ')}`;
  // Past the call's own five custom plans, nothing is planned any more (the quietest of the last four reads: an
  // autovacuum's statistics refresh re-plans a table's statements once); without the setting, the function's
  // statement still is, at every read.
  expect(Math.min(...withSetting.slice(6)), shown).toBe(0);
  for (const n of withoutSetting.slice(6)) expect(n, shown).toBeGreaterThanOrEqual(1);
});

// Invariant 1 (docs/architecture.md, Invariants): no cap is exceeded by admission, under any number of concurrent requests
// on any number of gateway processes.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { startHarness, type Harness } from './support/harness.js';
import { spawnGateway, type GatewayProcess } from './support/processes.js';
import { createTree, setBudget, SUBMIT, avatarRequest, type Tree } from './support/fixtures.js';
import { expectCountersEqualLedger } from './support/invariants.js';
import { queryRows, toBigInt } from '../src/db/client.js';
import { decodeGlobalID } from '@pothos/plugin-relay';

let h: Harness;
let tree: Tree;
const gateways: GatewayProcess[] = [];

beforeAll(async () => {
  h = await startHarness({ sim: { autoComplete: false, defaultConcurrencyLimit: 1000 }, simAccounts: [{ apiKey: 'sk_test_primary_key_0001', concurrencyLimit: 1000 }] });
  tree = await createTree(h, { concurrencyLimit: 1000 });
  const env = {
    DATABASE_URL: h.config.databaseUrl!,
    GATEWAY_MASTER_KEY: h.config.masterKey!,
    HEYGEN_BASE_URL: h.sim.url,
    WORKER_INTERVAL_MS: '100',
    DB_POOL_SIZE: '10',
  };
  gateways.push(...(await Promise.all([spawnGateway(env), spawnGateway(env), spawnGateway(env)])));
});

afterAll(async () => {
  await Promise.all(gateways.map((g) => g.stop()));
  await h?.close();
});

it('300 concurrent submitJob calls on 3 processes against a HARD budget that fits 37: exactly 37 admitted', async () => {
  const limitMicro = 37n * 52_800_000n; // 37 holds of 52.8 cs
  await setBudget(h, { orgUnitId: tree.teamId, accountId: tree.accountId, window: 'MONTHLY', limitCreditSeconds: '1953.6' });
  const teamId = decodeGlobalID(tree.teamId).id;

  // An observer reads the team's counters throughout the burst.
  let observing = true;
  let observations = 0;
  let worst = 0n;
  const observer = (async () => {
    while (observing) {
      const [row] = await queryRows<{ used: string }>(
        h.services.db,
        sql`select coalesce(sum(reserved_micro_cs + settled_micro_cs), 0)::text as used from usage_rollups where org_unit_id = ${teamId}`,
      );
      const used = toBigInt(row!.used);
      if (used > worst) worst = used;
      observations++;
      await new Promise((r) => setTimeout(r, 2));
    }
  })();

  const results = await Promise.all(
    Array.from({ length: 300 }, async (_, i) => {
      const gateway = gateways[i % 3]!;
      const res = await fetch(`${gateway.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${h.adminToken}` },
        body: JSON.stringify({ query: SUBMIT, variables: { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } } }),
      });
      const body = (await res.json()) as { data: { submitJob: { __typename: string } }; errors?: unknown };
      expect(body.errors).toBeUndefined();
      return body.data.submitJob.__typename;
    }),
  );
  observing = false;
  await observer;

  expect(results.filter((t) => t === 'SubmitJobPayload')).toHaveLength(37);
  expect(results.filter((t) => t === 'BudgetExceededError')).toHaveLength(263);
  expect(observations).toBeGreaterThan(10);
  expect(worst <= limitMicro).toBe(true);

  const [final] = await queryRows<{ reserved: string; settled: string }>(
    h.services.db,
    sql`select coalesce(sum(reserved_micro_cs), 0)::text as reserved, coalesce(sum(settled_micro_cs), 0)::text as settled from usage_rollups where org_unit_id = ${teamId}`,
  );
  expect(toBigInt(final!.reserved) + toBigInt(final!.settled)).toBe(limitMicro);
  const [jobs] = await queryRows<{ n: number }>(h.services.db, sql`select count(*)::int as n from jobs where project_id = ${decodeGlobalID(tree.projectId).id}`);
  expect(Number(jobs!.n)).toBe(37);
  expect(h.sim.stats().jobsCreated['sk_test_primary_key_0001']).toBe(37);
  await expectCountersEqualLedger(h.services.db);
});

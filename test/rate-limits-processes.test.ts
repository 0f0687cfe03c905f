// Rate limits are exact over any number of gateway processes: the counters live in PostgreSQL and are taken in the
// admission transaction, under the lock of the limit's row (docs/governance.md).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startHarness, type Harness } from './support/harness.js';
import { spawnGateway, type GatewayProcess } from './support/processes.js';
import { createTree, mustMutate, SUBMIT, avatarRequest, type Tree } from './support/fixtures.js';
import { expectCountersEqualLedger } from './support/invariants.js';
import { queryRows } from '../src/db/client.js';

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
    RATE_LIMIT_PER_MINUTE: '0',
  };
  // One after the other: three cold starts at once can pass the start-up timeout on a loaded machine.
  for (let i = 0; i < 3; i++) gateways.push(await spawnGateway(env));
});

afterAll(async () => {
  await Promise.all(gateways.map((g) => g.stop()));
  await h?.close();
});

it('200 concurrent submissions on 3 processes against 60 jobs a minute: exactly 60 admitted, the rest told when to retry', async () => {
  // The window slides over the last 60 s: a burst that lasts less than a minute (this one takes a few seconds, on
  // a loaded machine too) meets one window, wherever the minute boundaries fall.
  await mustMutate(h, `mutation($input: SetUnitPolicyInput!) { setUnitPolicy(input: $input) { __typename ... on Error { message } } }`, { input: { orgUnitId: tree.teamId, jobsPerMinute: 60 } }, 'setUnitPolicy');
  const started = Date.now();
  const results = await Promise.all(
    Array.from({ length: 200 }, async (_, i) => {
      const res = await fetch(`${gateways[i % 3]!.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${h.adminToken}` },
        body: JSON.stringify({
          query: SUBMIT.replace('... on Error { message code }', '... on RateLimitedError { retryAfterSeconds }\n    ... on Error { message code }'),
          variables: { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } },
        }),
      });
      const body = (await res.json()) as { data: { submitJob: { __typename: string; retryAfterSeconds?: number } }; errors?: unknown };
      expect(body.errors).toBeUndefined();
      return body.data.submitJob;
    }),
  );
  expect(Date.now() - started).toBeLessThan(55_000);

  expect(results.filter((r) => r.__typename === 'SubmitJobPayload')).toHaveLength(60);
  const limited = results.filter((r) => r.__typename === 'RateLimitedError');
  expect(limited).toHaveLength(140);
  for (const r of limited) {
    expect(r.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(r.retryAfterSeconds).toBeLessThanOrEqual(60);
  }
  const [jobs] = await queryRows<{ n: number }>(h.services.db, sql`select count(*)::int as n from jobs where project_id = ${decodeGlobalID(tree.projectId).id}`);
  expect(Number(jobs!.n)).toBe(60);
  const [counted] = await queryRows<{ n: string }>(h.services.db, sql`select coalesce(sum(amount), 0)::text as n from rate_buckets where scope = ${`unit:${decodeGlobalID(tree.teamId).id}/jobs`}`);
  expect(counted!.n).toBe('60');
  await expectCountersEqualLedger(h.services.db);
});

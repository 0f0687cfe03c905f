// The embedded database: the demo's seeding and a job end to end, on PGlite.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { JOB_QUERY, SUBMIT, avatarRequest } from './support/fixtures.js';
import { expectCountersEqualLedger } from './support/invariants.js';
import { seedDemo } from '../src/demo/seed.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ embedded: true, callbacks: true, sim: { fixedDurationSeconds: 10 } });
});
afterAll(async () => h?.close());

it('runs on PGlite: demo seed, then one job admitted, forwarded, completed and settled', async () => {
  expect(h.services.database.driver).toBe('pglite');
  const seed = await seedDemo(h.services, h.sim.url, 'sk_test_primary_key_0001');
  expect(seed.created).toBe(true);
  expect((await seedDemo(h.services, h.sim.url, 'sk_test_primary_key_0001')).created).toBe(false);

  const projectId = encodeGlobalID('OrgUnit', seed.projects.onboarding.id);
  const res = await h.gql(SUBMIT, { input: { projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } });
  expect(res.data.submitJob.__typename).toBe('SubmitJobPayload');
  const job = await waitFor(async () => {
    const j = (await h.gql(JOB_QUERY, { id: res.data.submitJob.job.id })).data.job;
    return j.status === 'SUCCEEDED' ? j : null;
  });
  expect(job.actualCreditSeconds).toBe('60');

  const budgets = await h.gql(`query($id: ID!) { orgUnit(id: $id) { path { name budgets { settledCreditSeconds } } } }`, { id: projectId });
  const team = budgets.data.orgUnit.path.find((u: { name: string }) => u.name === 'Video');
  expect(team.budgets[0].settledCreditSeconds).toBe('60');
  const account = await h.gql(`{ accounts { period { usedCreditSeconds projectedInvoiceUsd } } }`);
  expect(account.data.accounts[0].period).toEqual({ usedCreditSeconds: '60', projectedInvoiceUsd: '5000.00' });
  await expectCountersEqualLedger(h.services.db);
});

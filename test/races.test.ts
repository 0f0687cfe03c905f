// Concurrent creations that race for the same unique thing get a typed ValidationError, never an internal error.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness.js';
import { TIER_5K } from './support/fixtures.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ workers: false });
});
afterAll(async () => h?.close());

it('ten concurrent creations of the organization: one wins, the others are ValidationError', async () => {
  const results = await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      h.gql(`mutation($input: CreateOrgUnitInput!) { createOrgUnit(input: $input) { __typename ... on Error { code } } }`, {
        input: { kind: 'ORGANIZATION', name: `Org ${i}`, parentId: null },
      }),
    ),
  );
  expect(results.map((r) => r.errors)).toEqual(results.map(() => undefined));
  const kinds = results.map((r) => r.data.createOrgUnit.__typename);
  expect(kinds.filter((k) => k === 'CreateOrgUnitPayload')).toHaveLength(1);
  expect(kinds.filter((k) => k === 'ValidationError')).toHaveLength(9);
});

it('ten concurrent createAccount calls with one name: one wins, the others are ValidationError', async () => {
  const results = await Promise.all(
    Array.from({ length: 10 }, () =>
      h.gql(`mutation($input: CreateAccountInput!) { createAccount(input: $input) { __typename ... on Error { code } } }`, {
        input: { name: 'Same name', billingModel: 'USAGE_BASED', usageBased: TIER_5K, apiKey: 'sk_test_primary_key_0001', baseUrl: h.sim.url },
      }),
    ),
  );
  expect(results.map((r) => r.errors)).toEqual(results.map(() => undefined));
  const kinds = results.map((r) => r.data.createAccount.__typename);
  expect(kinds.filter((k) => k === 'CreateAccountPayload')).toHaveLength(1);
  expect(kinds.filter((k) => k === 'ValidationError')).toHaveLength(9);
});

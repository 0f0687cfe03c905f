import { describe, expect, it, afterAll, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { printedSchema, SCHEMA_FILE } from '../src/cli/print-schema.js';
import { startHarness, type Harness } from './support/harness.js';
import { createAccount, createUnit, setBudget } from './support/fixtures.js';

describe('printed schema', () => {
  it('schema/schema.graphql matches the code', () => {
    expect(readFileSync(SCHEMA_FILE, 'utf8')).toBe(printedSchema());
  });

  it('keeps the binding names of the API contract (docs/architecture.md)', () => {
    const sdl = printedSchema();
    for (const name of [
      'viewer: Viewer!', 'node(', 'accounts: [Account!]!', 'orgUnit(', 'orgUnits(', 'job(', 'jobs(',
      'createAccount(', 'createOrgUnit(', 'setBudget(', 'issueServiceToken(', 'revokeServiceToken(', 'submitJob(', 'cancelJob(',
      'interface Error', 'type BudgetExceededError', 'type ConcurrencyLimitError', 'type ValidationError', 'type NotFoundError',
      'type ForbiddenError', 'type IdempotencyConflictError', 'type UpstreamError', 'scalar CreditSeconds', 'scalar Usd',
    ]) {
      expect(sdl, name).toContain(name);
    }
  });
});

describe('DataLoader batching', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ workers: false });
  });
  afterAll(async () => h?.close());

  async function statementsFor(first: number): Promise<number> {
    const statements: string[] = [];
    h.services.database.onQuery = (text) => statements.push(text);
    const res = await h.gql(
      `query($first: Int) { orgUnits(first: $first, kind: PROJECT) { edges { node { id name parent { name } usage { settledCreditSeconds }
         budgets { account { name } limitCreditSeconds reservedCreditSeconds settledCreditSeconds availableCreditSeconds } } } } }`,
      { first },
    );
    h.services.database.onQuery = undefined;
    expect(res.errors).toBeUndefined();
    expect(res.data.orgUnits.edges).toHaveLength(first);
    for (const edge of res.data.orgUnits.edges) expect(edge.node.budgets).toHaveLength(2);
    return statements.length;
  }

  it('200 units with their budgets cost a constant number of SQL statements', async () => {
    const accountId = await createAccount(h, { name: 'Loader' });
    const org = await createUnit(h, 'ORGANIZATION', 'Acme', null, accountId);
    const team = await createUnit(h, 'TEAM', 'Team', org);
    for (let i = 0; i < 200; i++) {
      const project = await createUnit(h, 'PROJECT', `p${i}`, team);
      await setBudget(h, { orgUnitId: project, accountId, window: 'MONTHLY', limitCreditSeconds: '1000' });
      await setBudget(h, { orgUnitId: project, window: 'LIFETIME', limitCreditSeconds: '5000' });
    }
    const small = await statementsFor(5);
    const large = await statementsFor(200);
    expect(large).toBe(small);
    expect(large).toBeLessThanOrEqual(12);
  });
});

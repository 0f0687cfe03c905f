// A hostile MEMBER or SERVICE caller trying to learn a sibling's usage: OrgUnit.usage refuses units above its own
// subtree, so no other field may give the same number away — not the limit and counters of an ancestor's budget
// (limit − available − own usage = the siblings'), not the account's period totals or HeyGen's balance.
import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness.js';
import { avatarRequest, createTree, issueServiceToken, setBudget, SUBMIT, type Tree } from './support/fixtures.js';

let h: Harness;
let tree: Tree;
let member: string;
let service: string;
const budgets: Record<string, string> = {};

const BUDGET_FIELDS = 'id limitCreditSeconds limitUsd reservedCreditSeconds settledCreditSeconds availableCreditSeconds';
const UNIT_BUDGETS = `query($id: ID!) { orgUnit(id: $id) { budgets { ${BUDGET_FIELDS} } } }`;
const NODE_BUDGET = `query($id: ID!) { node(id: $id) { ... on Budget { ${BUDGET_FIELDS} } } }`;
const ACCOUNT = `query($id: ID!) { node(id: $id) { ... on Account { id period { usedCreditSeconds reservedCreditSeconds overageCreditSeconds projectedInvoiceUsd } wallet { takenAt } } } }`;

beforeAll(async () => {
  h = await startHarness({ workers: false });
  tree = await createTree(h);
  for (const [name, unit, limit] of [
    ['dept', tree.deptId, '100000'],
    ['team', tree.teamId, '50000'],
    ['project', tree.projectId, '20000'],
    ['otherTeam', tree.otherTeamId, '30000'],
  ] as const) {
    budgets[name] = (await setBudget(h, { orgUnitId: unit, accountId: tree.accountId, window: 'MONTHLY', limitCreditSeconds: limit })).budget.id;
  }
  // The sibling's usage: a job in flight on the other team's project holds credit-seconds on the department.
  const sibling = await h.gql(SUBMIT, { input: { projectId: tree.otherProjectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } });
  expect(sibling.data.submitJob.__typename).toBe('SubmitJobPayload');
  member = await h.services.tokens.issueOperatorToken({ name: 'mel', role: 'MEMBER', unitId: decodeGlobalID(tree.teamId).id });
  service = (await issueServiceToken(h, tree.projectId)).token;
}, 60_000);
afterAll(async () => h?.close());

describe.each([
  ['MEMBER of the team', () => member, ['dept'], ['team', 'project']],
  ['SERVICE of the project', () => service, ['dept', 'team'], ['project']],
] as const)('a hostile %s', (_name, token, above, own) => {
  it('sees no limit or counter of a budget above its subtree, only what could still be spent', async () => {
    const admin = (await h.gql(NODE_BUDGET, { id: budgets.dept })).data.node;
    expect(admin.reservedCreditSeconds).not.toBe('0'); // the sibling's hold is there to find
    for (const name of above) {
      const unit = name === 'dept' ? tree.deptId : tree.teamId;
      const listed = (await h.gql(UNIT_BUDGETS, { id: unit }, token())).data.orgUnit.budgets;
      const viaNode = (await h.gql(NODE_BUDGET, { id: budgets[name] }, token())).data.node;
      for (const b of [listed.find((x: { id: string }) => x.id === budgets[name]), viaNode]) {
        expect(b, name).toBeTruthy();
        expect(b.limitCreditSeconds).toBeNull();
        expect(b.limitUsd).toBeNull();
        expect(b.reservedCreditSeconds).toBeNull();
        expect(b.settledCreditSeconds).toBeNull();
        expect(b.availableCreditSeconds).toBe((await h.gql(NODE_BUDGET, { id: budgets[name] })).data.node.availableCreditSeconds);
      }
    }
  });

  it('sees every counter of the budgets of its own subtree, as OrgUnit.usage does', async () => {
    for (const name of own) {
      const b = (await h.gql(NODE_BUDGET, { id: budgets[name] }, token())).data.node;
      const full = (await h.gql(NODE_BUDGET, { id: budgets[name] })).data.node;
      expect(b).toEqual(full);
      expect(b.limitCreditSeconds).not.toBeNull();
    }
  });

  it("cannot read the account's totals (period usage, invoice, HeyGen's balance), nor the usage of a unit above it", async () => {
    const account = (await h.gql(ACCOUNT, { id: tree.accountId }, token())).data.node;
    expect(account.id).toBe(tree.accountId);
    expect(account.period).toBeNull();
    expect(account.wallet).toBeNull();
    const admin = (await h.gql(ACCOUNT, { id: tree.accountId })).data.node;
    expect(admin.period.reservedCreditSeconds).not.toBe('0');
    const usage = await h.gql(`query($id: ID!) { orgUnit(id: $id) { usage { reservedCreditSeconds } } }`, { id: tree.deptId }, token());
    expect(usage.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});

describe('a refusal', () => {
  it("by a budget above the caller's subtree states what is available, not the limit", async () => {
    // The project's own budget is raised out of the way: the team's (an ancestor of the SERVICE token's project) binds.
    await setBudget(h, { orgUnitId: tree.projectId, accountId: tree.accountId, window: 'MONTHLY', limitCreditSeconds: '100000000' });
    const input = { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest(), estimatedSeconds: '10000' };
    const refused = (await h.gql(SUBMIT, { input }, service)).data.submitJob;
    expect(refused.__typename).toBe('BudgetExceededError');
    expect([tree.teamId, tree.deptId]).toContain(refused.orgUnitId);
    expect(refused.limitCreditSeconds).toBeNull();
    expect(refused.availableCreditSeconds).not.toBeNull();
    // ADMIN, who may read every unit's costs, gets the limit.
    const asAdmin = (await h.gql(SUBMIT, { input })).data.submitJob;
    expect(asAdmin.__typename).toBe('BudgetExceededError');
    expect(asAdmin.limitCreditSeconds).not.toBeNull();
  });
});

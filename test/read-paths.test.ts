// The org tree's reads answer the same through a page of units (whose fields are resolved from what the page's
// statements read, without a promise per field) and one unit at a time (every field through its loader), for every
// caller's visibility: budgets of every window kind, a rollover, an approved temporary raise, tag budgets, holds.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startHarness, type Harness } from './support/harness.js';
import { avatarRequest, createTree, issueServiceToken, mustMutate, setBudget, SUBMIT, type Tree } from './support/fixtures.js';

const raw = (globalId: string) => decodeGlobalID(globalId).id;

const BUDGET_FIELDS = `id window enforcement allowOverage alertThresholds account { id name } orgUnit { id }
  limitCreditSeconds reservedCreditSeconds settledCreditSeconds temporaryCreditSeconds availableCreditSeconds
  windowFrom windowTo rolloverCapCreditSeconds carriedOverCreditSeconds effectiveLimitCreditSeconds`;
const UNIT_FIELDS = `id kind name parent { id name } path { id } account { id }
  budgets { ${BUDGET_FIELDS} }
  groupBudgets { id tagKey tagValue person limitCreditSeconds usedCreditSeconds }`;
const USAGE = `usage { period reservedCreditSeconds settledCreditSeconds }`;

let h: Harness;
let tree: Tree;
const callers = {} as Record<'ADMIN' | 'FINANCE' | 'MANAGER' | 'MEMBER' | 'SERVICE', string>;

beforeAll(async () => {
  h = await startHarness({ workers: false });
  tree = await createTree(h, { concurrencyLimit: 200 });
  const issue = h.services.tokens.issueOperatorToken;
  callers.ADMIN = h.adminToken;
  callers.FINANCE = await issue({ name: 'fiona', role: 'FINANCE' });
  callers.MANAGER = await issue({ name: 'maya', role: 'MANAGER', unitId: raw(tree.teamId) });
  callers.MEMBER = await issue({ name: 'mel', role: 'MEMBER', unitId: raw(tree.teamId) });
  callers.SERVICE = (await issueServiceToken(h, tree.projectId, 'poller')).token;

  // Every window kind, on the account and over all accounts, on the project and on units above it.
  const { accountId, projectId, teamId, deptId, otherProjectId } = tree;
  for (const window of ['DAILY', 'WEEKLY', 'MONTHLY', 'QUARTERLY', 'CONTRACT_TERM', 'LIFETIME']) {
    await setBudget(h, { orgUnitId: projectId, accountId, window, limitCreditSeconds: '5000' });
    await setBudget(h, { orgUnitId: teamId, window, enforcement: 'SOFT', limitCreditSeconds: '9000' });
  }
  await setBudget(h, { orgUnitId: projectId, accountId, window: 'CUSTOM', windowFrom: '2020-01-01', windowTo: '2099-01-01', limitCreditSeconds: '7000' });
  await setBudget(h, { orgUnitId: deptId, accountId, window: 'MONTHLY', limitCreditSeconds: '20000', rolloverCapCreditSeconds: '100' });
  await setBudget(h, { orgUnitId: otherProjectId, accountId, window: 'MONTHLY', limitCreditSeconds: '300' });
  // An approved temporary raise on the project's MONTHLY budget.
  const budgets = (await h.gql(`query($id: ID!) { orgUnit(id: $id) { budgets { id window account { id } } } }`, { id: projectId })).data.orgUnit.budgets;
  const monthly = budgets.find((b: any) => b.window === 'MONTHLY' && b.account);
  const request = await mustMutate(
    h,
    `mutation($input: RequestBudgetIncreaseInput!) { requestBudgetIncrease(input: $input) { __typename ... on RequestBudgetIncreasePayload { request { id } } ... on Error { message code } } }`,
    { input: { budgetId: monthly.id, amountCreditSeconds: '250', until: new Date(Date.now() + 86_400_000).toISOString(), reason: 'launch week' } },
    'requestBudgetIncrease',
    callers.SERVICE,
  );
  await mustMutate(
    h,
    `mutation($input: ApproveBudgetRequestInput!) { approveBudgetRequest(input: $input) { __typename ... on Error { message code } } }`,
    { input: { requestId: request.request.id } },
    'approveBudgetRequest',
  );
  // Tag budgets.
  await mustMutate(h, `mutation($input: SetTagKeysInput!) { setTagKeys(input: $input) { __typename ... on Error { message code } } }`, { input: { keys: ['campaign'] } }, 'setTagKeys');
  for (const [orgUnitId, tagValue] of [[projectId, 'spring'], [teamId, 'autumn']] as const) {
    await mustMutate(
      h,
      `mutation($input: SetGroupBudgetInput!) { setGroupBudget(input: $input) { __typename ... on Error { message code } } }`,
      { input: { orgUnitId, accountId, window: 'MONTHLY', tagKey: 'campaign', tagValue, limitCreditSeconds: '800' } },
      'setGroupBudget',
    );
  }
  // Holds in flight (workers are off: they stay reserved).
  for (const projectId of [tree.projectId, tree.projectId, tree.otherProjectId]) {
    await mustMutate(h, SUBMIT, { input: { projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } }, 'submitJob');
  }
});
afterAll(async () => h?.close());

async function read(token: string, query: string, variables: Record<string, unknown> = {}): Promise<any> {
  const res = await h.gql(query, variables, token);
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data;
}

describe('a page of units answers as each unit read alone', () => {
  for (const role of ['ADMIN', 'FINANCE', 'MANAGER', 'MEMBER', 'SERVICE'] as const) {
    it(`for a ${role} caller`, async () => {
      const token = callers[role];
      const page = (await read(token, `{ orgUnits(first: 10) { edges { node { ${UNIT_FIELDS} } } } }`)).orgUnits.edges.map((e: any) => e.node);
      expect(page.length).toBeGreaterThan(0);
      let budgets = 0;
      for (const unit of page) {
        const alone = (await read(token, `query($id: ID!) { node(id: $id) { ... on OrgUnit { ${UNIT_FIELDS} } } }`, { id: unit.id })).node;
        expect(unit).toEqual(alone);
        // Each budget read by its own id answers the same too.
        for (const b of unit.budgets) {
          expect((await read(token, `query($id: ID!) { node(id: $id) { ... on Budget { ${BUDGET_FIELDS} } } }`, { id: b.id })).node).toEqual(b);
          budgets++;
        }
      }
      // The project's budgets are seen by every caller (the SERVICE token's own project among them).
      expect(budgets).toBeGreaterThanOrEqual(7);
    });
  }

  it('usage in the page equals usage read alone, for the callers that may read it', async () => {
    for (const role of ['ADMIN', 'MANAGER', 'SERVICE'] as const) {
      const token = callers[role];
      const ids = role === 'SERVICE' ? [tree.projectId] : role === 'MANAGER' ? [tree.teamId, tree.projectId] : [tree.orgId, tree.deptId, tree.teamId, tree.projectId];
      const page = (await read(token, `{ orgUnits(first: 100, kind: PROJECT) { edges { node { id ${USAGE} } } } }`)).orgUnits.edges.map((e: any) => e.node);
      for (const id of ids) {
        const alone = (await read(token, `query($id: ID!) { orgUnit(id: $id) { id ${USAGE} } }`, { id })).orgUnit;
        const inPage = page.find((u: any) => u.id === id);
        if (inPage) expect(inPage).toEqual(alone);
        expect(alone.usage.reservedCreditSeconds).toBe(id === tree.teamId || id === tree.projectId ? '105.6' : '158.4');
      }
    }
  });

  it('pages of units (first and after, last and before, by kind) list exactly the units each caller may read', async () => {
    const { orgId, deptId, teamId, projectId, otherTeamId, otherProjectId } = tree;
    // canReadUnit: the units above the caller's own and its subtree (a SERVICE token: its project's path only).
    const readable = {
      ADMIN: [orgId, deptId, teamId, projectId, otherTeamId, otherProjectId],
      MANAGER: [orgId, deptId, teamId, projectId],
      MEMBER: [orgId, deptId, teamId, projectId],
      SERVICE: [orgId, deptId, teamId, projectId],
    };
    const kinds: Record<string, string> = {
      [orgId]: 'ORGANIZATION', [deptId]: 'DEPARTMENT', [teamId]: 'TEAM', [projectId]: 'PROJECT', [otherTeamId]: 'TEAM', [otherProjectId]: 'PROJECT',
    };
    for (const role of ['ADMIN', 'MANAGER', 'MEMBER', 'SERVICE'] as const) {
      const token = callers[role];
      for (const kind of [null, 'PROJECT', 'TEAM']) {
        const filter = kind ? `, kind: ${kind}` : '';
        const nodes = (await read(token, `{ orgUnits(first: 100${filter}) { edges { node { id kind parent { id } } } } }`)).orgUnits.edges.map((e: any) => e.node);
        const all: string[] = nodes.map((u: any) => u.id);
        const expected = readable[role].filter((id) => !kind || kinds[id] === kind);
        expect(new Set(all), `${role} ${kind}`).toEqual(new Set(expected));
        // In key order (uuids compare as their text).
        const keys = all.map(raw);
        expect(keys).toEqual([...keys].sort());
        // Each unit's parent, read with the page, is the one it was created under (null for the organization).
        for (const u of nodes) if (u.id !== orgId) expect(u.parent, u.id).not.toBeNull();

        const forward: string[] = [];
        for (let after: string | null = null; ; ) {
          const page: any = (await read(token, `query($after: String) { orgUnits(first: 2, after: $after${filter}) { edges { node { id } } pageInfo { hasNextPage endCursor } } }`, { after })).orgUnits;
          forward.push(...page.edges.map((e: any) => e.node.id));
          if (!page.pageInfo.hasNextPage) break;
          after = page.pageInfo.endCursor;
        }
        expect(forward, `${role} ${kind} forward`).toEqual(all);
        const backward: string[] = [];
        for (let before: string | null = null; ; ) {
          const page: any = (await read(token, `query($before: String) { orgUnits(last: 2, before: $before${filter}) { edges { node { id } } pageInfo { hasPreviousPage startCursor } } }`, { before })).orgUnits;
          backward.unshift(...page.edges.map((e: any) => e.node.id));
          if (!page.pageInfo.hasPreviousPage) break;
          before = page.pageInfo.startCursor;
        }
        expect(backward, `${role} ${kind} backward`).toEqual(all);
      }
    }
  });

  it("the project's budgets as its SERVICE token sees them: every window, the raise, the holds", async () => {
    const unit = (await read(callers.SERVICE, `query($id: ID!) { orgUnit(id: $id) { budgets { window account { id } reservedCreditSeconds temporaryCreditSeconds availableCreditSeconds effectiveLimitCreditSeconds } } }`, { id: tree.projectId })).orgUnit;
    const own = unit.budgets.filter((b: any) => b.account);
    expect(own.map((b: any) => b.window).sort()).toEqual(['CONTRACT_TERM', 'CUSTOM', 'DAILY', 'LIFETIME', 'MONTHLY', 'QUARTERLY', 'WEEKLY']);
    for (const b of own) {
      expect(b.reservedCreditSeconds, b.window).toBe('105.6');
      const limit = b.window === 'CUSTOM' ? 7000 : 5000;
      const temporary = b.window === 'MONTHLY' ? 250 : 0;
      expect(b.temporaryCreditSeconds, b.window).toBe(String(temporary));
      expect(b.effectiveLimitCreditSeconds, b.window).toBe(String(limit + temporary));
      expect(b.availableCreditSeconds, b.window).toBe(String(limit + temporary - 105.6));
    }
  });
});

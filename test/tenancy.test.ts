// Tenancy: a caller sees its own subtree (and, read-only, the units above it), and nothing else. Ids of another
// team's units, budgets, jobs, tokens and accounts read exactly like ids that do not exist — through `node`,
// `orgUnit`, `job`, the `jobs` and `serviceTokens` filters, nested fields and mutations — and no list, page or
// total lets their existence show.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { startHarness, type Harness } from './support/harness.js';
import { TIER_5K, avatarRequest, createUnit, issueServiceToken, mustMutate, setBudget } from './support/fixtures.js';
import { admitJob } from '../src/jobs/admission.js';
import type { Actor } from '../src/auth/actor.js';
import { SCHEMA_FILE } from '../src/cli/print-schema.js';

let h: Harness;
const PERIOD_NOW = new Date().toISOString().slice(0, 7);
const rawId = (globalId: string) => decodeGlobalID(globalId).id;

/** Ours: department A → team Video → project Onboarding. Theirs: the sibling team Social, and department B. */
const o = {} as {
  accountA: string;
  accountB: string;
  accountRoot: string;
  org: string;
  deptA: string;
  team: string;
  project: string;
  siblingTeam: string;
  siblingProject: string;
  deptB: string;
  teamB: string;
  projectB: string;
  ownJob: string;
  ownToken: string;
  ownBudget: string;
  rootBudget: string;
  rootAllAccountsBudget: string;
};
/** Objects of other teams, by kind, with the GraphQL type their global id names. */
const theirs = {} as { units: string[]; budgets: string[]; jobs: string[]; tokens: string[]; accounts: string[] };
const callers = {} as { member: string; manager: string; service: string };

async function createAccount(name: string, apiKey: string): Promise<string> {
  const p = await mustMutate(
    h,
    `mutation($input: CreateAccountInput!) { createAccount(input: $input) { __typename ... on CreateAccountPayload { account { id } } ... on Error { message } } }`,
    { input: { name, billingModel: 'USAGE_BASED', usageBased: TIER_5K, apiKey, baseUrl: h.sim.url, concurrencyLimit: 100, effectiveFrom: '2020-01' } },
    'createAccount',
  );
  return p.account.id;
}

/** A RESERVED job of a project, admitted directly (workers are off, so it stays as it is). */
async function job(projectId: string): Promise<string> {
  const admin: Actor = { subject: 'admin:fixture', role: 'ADMIN', unitId: null, unitPath: [], tokenId: null };
  const { job: row } = await admitJob(
    h.services.db,
    admin,
    { projectId: rawId(projectId), kind: 'AVATAR_VIDEO', request: avatarRequest(), estimatedSeconds: null, idempotencyKey: null },
    h.services.admission,
  );
  return encodeGlobalID('Job', row.id);
}

beforeAll(async () => {
  h = await startHarness({ workers: false, env: { RATE_LIMIT_PER_MINUTE: '0' } });
  o.accountA = await createAccount('Account A', 'sk_test_primary_key_0001');
  o.accountB = await createAccount('Account B', 'sk_test_account_b_0002');
  o.accountRoot = await createAccount('Root account', 'sk_test_account_root_03');
  o.org = await createUnit(h, 'ORGANIZATION', 'Acme', null, o.accountRoot);
  o.deptA = await createUnit(h, 'DEPARTMENT', 'Department A', o.org, o.accountA);
  o.team = await createUnit(h, 'TEAM', 'Video', o.deptA);
  o.project = await createUnit(h, 'PROJECT', 'Onboarding', o.team);
  o.siblingTeam = await createUnit(h, 'TEAM', 'Social', o.deptA);
  o.siblingProject = await createUnit(h, 'PROJECT', 'Shorts', o.siblingTeam);
  o.deptB = await createUnit(h, 'DEPARTMENT', 'Department B', o.org, o.accountB);
  o.teamB = await createUnit(h, 'TEAM', 'Research', o.deptB);
  o.projectB = await createUnit(h, 'PROJECT', 'Lab', o.teamB);

  const budget = (orgUnitId: string, accountId: string | null) =>
    setBudget(h, { orgUnitId, accountId, window: 'MONTHLY', limitCreditSeconds: '100000' }).then((p) => p.budget.id as string);
  o.ownBudget = await budget(o.project, o.accountA);
  o.rootBudget = await budget(o.org, o.accountRoot);
  o.rootAllAccountsBudget = await budget(o.org, null);
  await budget(o.deptA, o.accountA);
  theirs.budgets = [await budget(o.siblingProject, o.accountA), await budget(o.siblingTeam, o.accountA), await budget(o.deptB, o.accountB), await budget(o.projectB, o.accountB)];

  o.ownJob = await job(o.project);
  theirs.jobs = [await job(o.siblingProject), await job(o.projectB)];
  o.ownToken = (await issueServiceToken(h, o.project, 'own-app')).id;
  theirs.tokens = [(await issueServiceToken(h, o.siblingProject, 'sibling-app')).id, (await issueServiceToken(h, o.projectB, 'lab-app')).id];
  theirs.units = [o.siblingTeam, o.siblingProject, o.deptB, o.teamB, o.projectB];
  theirs.accounts = [o.accountB, o.accountRoot];

  // Committed shares and adjustments on both teams, so that reports and shares have lines of theirs to hide.
  await mustMutate(
    h,
    `mutation($input: SetCommittedSharesInput!) { setCommittedShares(input: $input) { __typename ... on Error { message } } }`,
    { input: { accountId: o.accountA, effectiveFrom: PERIOD_NOW, shares: [{ orgUnitId: o.team, share: '0.6' }, { orgUnitId: o.siblingTeam, share: '0.4' }] } },
    'setCommittedShares',
  );
  for (const unit of [o.project, o.siblingProject]) {
    await mustMutate(
      h,
      `mutation($input: RecordUsageAdjustmentInput!) { recordUsageAdjustment(input: $input) { __typename ... on Error { message } } }`,
      { input: { orgUnitId: unit, accountId: o.accountA, period: PERIOD_NOW, creditSeconds: '1000', reason: 'import' } },
      'recordUsageAdjustment',
    );
  }

  const issue = h.services.tokens.issueOperatorToken;
  callers.member = await issue({ name: 'mel', role: 'MEMBER', unitId: rawId(o.team) });
  callers.manager = await issue({ name: 'maya', role: 'MANAGER', unitId: rawId(o.team) });
  callers.service = (await issueServiceToken(h, o.project, 'caller-app')).token;
});
afterAll(async () => h?.close());

const CALLERS = ['member', 'manager', 'service'] as const;

/** A global id of the same type that names nothing. */
const ghostOf = (globalId: string) => encodeGlobalID(decodeGlobalID(globalId).typename, randomUUID());

/** The response with `id` written as a placeholder, so that a foreign id's answer compares with a ghost id's. */
async function answer(query: string, variables: Record<string, unknown>, id: string, token: string): Promise<string> {
  const res = await h.gql(query, variables, token);
  return JSON.stringify({ status: res.status, data: res.data, errors: res.errors }).split(id).join('<id>');
}

/** Asserts that a foreign id is answered exactly like an id that does not exist, and returns that answer. */
async function likeGhost(query: string, vars: (id: string) => Record<string, unknown>, foreignId: string, token: string): Promise<any> {
  const ghost = ghostOf(foreignId);
  const foreign = await answer(query, vars(foreignId), foreignId, token);
  expect(foreign, `${foreignId} must read like a missing id`).toBe(await answer(query, vars(ghost), ghost, token));
  return JSON.parse(foreign);
}

describe.each(CALLERS)('a %s of team Video', (who) => {
  const token = () => callers[who];

  it("another team's units, budgets, jobs, tokens and accounts: node is null, like ids that do not exist", async () => {
    for (const id of [...theirs.units, ...theirs.budgets, ...theirs.jobs, ...theirs.tokens, ...theirs.accounts]) {
      const r = await likeGhost(`query($id: ID!) { node(id: $id) { id } }`, (x) => ({ id: x }), id, token());
      expect(r).toEqual({ status: 200, data: { node: null } });
    }
    for (const id of theirs.units) {
      const r = await likeGhost(`query($id: ID!) { orgUnit(id: $id) { id name } }`, (x) => ({ id: x }), id, token());
      expect(r.data).toEqual({ orgUnit: null });
    }
    for (const id of theirs.jobs) {
      const r = await likeGhost(`query($id: ID!) { job(id: $id) { id } }`, (x) => ({ id: x }), id, token());
      expect(r.data).toEqual({ job: null });
    }
  });

  it('jobs filtered by their project or account are empty, with no next page; unfiltered, only our jobs', async () => {
    const JOBS = `query($p: ID, $a: ID) { jobs(first: 10, filter: { projectId: $p, accountId: $a }) { edges { node { id } } pageInfo { hasNextPage hasPreviousPage } } }`;
    for (const id of theirs.units) {
      const r = await likeGhost(JOBS, (x) => ({ p: x }), id, token());
      expect(r.data.jobs).toEqual({ edges: [], pageInfo: { hasNextPage: false, hasPreviousPage: false } });
    }
    for (const id of theirs.accounts) {
      const r = await likeGhost(JOBS, (x) => ({ a: x }), id, token());
      expect(r.data.jobs.edges).toEqual([]);
    }
    // Exactly one job is ours: a page of one has no next page (a hidden job would make one).
    const all = await h.gql(`{ jobs(first: 1) { edges { node { id project { id } } } pageInfo { hasNextPage } } }`, {}, token());
    expect(all.data.jobs).toEqual({ edges: [{ node: { id: o.ownJob, project: { id: o.project } } }], pageInfo: { hasNextPage: false } });
  });

  it('orgUnits lists our subtree and the units above it, and a page of exactly that size has no next page', async () => {
    const ours = [o.org, o.deptA, o.team, o.project];
    const r = await h.gql(`query($n: Int) { orgUnits(first: $n) { edges { node { id } } pageInfo { hasNextPage } } }`, { n: ours.length }, token());
    expect(r.errors).toBeUndefined();
    expect(r.data.orgUnits.edges.map((e: any) => e.node.id).sort()).toEqual([...ours].sort());
    expect(r.data.orgUnits.pageInfo.hasNextPage).toBe(false);
    const teams = await h.gql(`{ orgUnits(first: 50, kind: TEAM) { edges { node { id } } } }`, {}, token());
    expect(teams.data.orgUnits.edges).toEqual([{ node: { id: o.team } }]);
  });

  it('nested fields: paths, budgets and accounts above us show only what is ours to see', async () => {
    const r = await h.gql(
      `query($id: ID!) { orgUnit(id: $id) { path { id name account { id } budgets { id account { id } } } } }`,
      { id: o.project },
      token(),
    );
    expect(r.errors).toBeUndefined();
    const [org, dept, team, project] = r.data.orgUnit.path;
    expect([org.id, dept.id, team.id, project.id]).toEqual([o.org, o.deptA, o.team, o.project]);
    // The organization draws on an account we may not see: it reads as none, and so does its budget on that account.
    expect(org.account).toBeNull();
    expect(org.budgets).toEqual([{ id: o.rootAllAccountsBudget, account: null }]);
    expect(dept.account).toEqual({ id: o.accountA });
    expect(project.budgets).toEqual([{ id: o.ownBudget, account: { id: o.accountA } }]);
    // The hidden root budget reads as missing by id too.
    const rb = await likeGhost(`query($id: ID!) { node(id: $id) { id } }`, (x) => ({ id: x }), o.rootBudget, token());
    expect(rb.data).toEqual({ node: null });
    // Usage on an account we may not see: NOT_FOUND, exactly like an account that does not exist.
    for (const id of theirs.accounts) {
      const u = await likeGhost(
        `query($u: ID!, $a: ID!) { orgUnit(id: $u) { usage(accountId: $a) { settledCreditSeconds } } }`,
        (x) => ({ u: o.project, a: x }),
        id,
        token(),
      );
      expect(u.errors[0].extensions.code).toBe('NOT_FOUND');
    }
  });

  it('accounts, reports and committed shares hold nothing of theirs', async () => {
    const accounts = await h.gql(`{ accounts { id committedShares { orgUnit { id } share } } }`, {}, token());
    expect(accounts.errors).toBeUndefined();
    // Only our account; and of its shares only ours (a row per hidden unit would count them).
    expect(accounts.data.accounts).toEqual([{ id: o.accountA, committedShares: [{ orgUnit: { id: o.team }, share: '0.6' }] }]);
    const REPORT = `query($a: ID!) { chargebackReport(accountId: $a, period: "${PERIOD_NOW}") { lines { orgUnit { id } } adjustments { orgUnit { id } } } }`;
    const report = await h.gql(REPORT, { a: o.accountA }, token());
    expect(report.errors).toBeUndefined();
    const lineUnits = report.data.chargebackReport.lines.map((l: any) => l.orgUnit.id).sort();
    expect(lineUnits).toEqual((who === 'service' ? [o.project] : [o.team, o.project]).sort());
    expect(report.data.chargebackReport.adjustments).toEqual([{ orgUnit: { id: o.project } }]);
    for (const id of theirs.accounts) {
      const r = await likeGhost(REPORT, (x) => ({ a: x }), id, token());
      expect(r.errors[0].extensions.code).toBe('NOT_FOUND');
      expect(r.data).toBeNull();
    }
  });

  it('mutations naming their objects get NotFoundError, word for word the error for ids that do not exist', async () => {
    const m = (field: string, type: string) =>
      `mutation($input: ${type}!) { ${field}(input: $input) { __typename ... on Error { code message } ... on NotFoundError { entity } } }`;
    const cases: [query: string, field: string, input: (id: string) => Record<string, unknown>, ids: string[]][] = [
      [m('submitJob', 'SubmitJobInput'), 'submitJob', (id) => ({ projectId: id, kind: 'AVATAR_VIDEO', request: avatarRequest() }), theirs.units],
      [m('createOrgUnit', 'CreateOrgUnitInput'), 'createOrgUnit', (id) => ({ parentId: id, kind: 'PROJECT', name: 'Intruder' }), theirs.units],
      [m('setBudget', 'SetBudgetInput'), 'setBudget', (id) => ({ orgUnitId: id, window: 'MONTHLY', limitCreditSeconds: '1' }), theirs.units],
      [m('issueServiceToken', 'IssueServiceTokenInput'), 'issueServiceToken', (id) => ({ orgUnitId: id, name: 'stolen' }), theirs.units],
      [m('cancelJob', 'CancelJobInput'), 'cancelJob', (id) => ({ jobId: id }), theirs.jobs],
      [m('revokeServiceToken', 'RevokeServiceTokenInput'), 'revokeServiceToken', (id) => ({ serviceTokenId: id }), theirs.tokens],
    ];
    for (const [query, field, input, ids] of cases) {
      for (const id of ids) {
        const r = await likeGhost(query, (x) => ({ input: input(x) }), id, token());
        expect(r.errors, `${field} ${id}`).toBeUndefined();
        expect(r.data[field].__typename, `${field} ${id}`).toBe('NotFoundError');
      }
    }
  });

  it('their tokens are not listed, and a list filtered by their unit is empty', async () => {
    const LIST = `query($u: ID) { serviceTokens(first: 10, orgUnitId: $u) { edges { node { id } } pageInfo { hasNextPage } } }`;
    if (who !== 'manager') {
      // Only ADMIN, FINANCE and MANAGER callers list tokens at all.
      const r = await h.gql(LIST, { u: null }, token());
      expect(r.errors![0].extensions.code).toBe('FORBIDDEN');
      return;
    }
    for (const id of theirs.units) {
      const r = await likeGhost(LIST, (x) => ({ u: x }), id, token());
      expect(r.data.serviceTokens).toEqual({ edges: [], pageInfo: { hasNextPage: false } });
    }
    const mine = await h.gql(LIST, { u: null }, token());
    const ids = mine.data.serviceTokens.edges.map((e: any) => e.node.id);
    expect(ids).toContain(o.ownToken);
    for (const id of theirs.tokens) expect(ids).not.toContain(id);
    const nested = await h.gql(`query($id: ID!) { orgUnit(id: $id) { serviceTokens { id } } }`, { id: o.project }, token());
    expect(nested.data.orgUnit.serviceTokens.map((t: any) => t.id)).toContain(o.ownToken);
  });
});

describe('usage totals', () => {
  it("usage is shown for the caller's own subtree only, and only for the accounts it can see", async () => {
    const q = `query($id: ID!) { orgUnit(id: $id) { usage { settledCreditSeconds } } }`;
    for (const who of CALLERS) {
      // The department (and the organization) would reveal the sibling team's 1000 cs by subtraction.
      for (const above of [o.deptA, o.org]) {
        const r = await h.gql(q, { id: above }, callers[who]);
        expect(r.errors?.[0]?.extensions?.code, `${who} on a unit above`).toBe('FORBIDDEN');
      }
    }
    const own = await h.gql(q, { id: o.team }, callers.member);
    expect(own.data.orgUnit.usage.settledCreditSeconds).toBe('1000');
    const finance = await h.services.tokens.issueOperatorToken({ name: 'fin', role: 'FINANCE' });
    const dept = await h.gql(q, { id: o.deptA }, finance);
    expect(dept.data.orgUnit.usage.settledCreditSeconds).toBe('2000');
  });
});

describe('no count or total', () => {
  it('the schema has no totalCount on any connection', () => {
    expect(readFileSync(SCHEMA_FILE, 'utf8')).not.toMatch(/totalCount/);
  });

  it('a MANAGER of department B sees nothing of department A, and FINANCE sees both (the objects do exist)', async () => {
    const otto = await h.services.tokens.issueOperatorToken({ name: 'otto', role: 'MANAGER', unitId: rawId(o.deptB) });
    const finance = await h.services.tokens.issueOperatorToken({ name: 'fiona', role: 'FINANCE' });
    for (const id of [o.deptA, o.team, o.project, o.ownBudget, o.ownJob, o.ownToken, o.accountA]) {
      const hidden = await likeGhost(`query($id: ID!) { node(id: $id) { id } }`, (x) => ({ id: x }), id, otto);
      expect(hidden.data).toEqual({ node: null });
      const seen = await h.gql(`query($id: ID!) { node(id: $id) { id } }`, { id }, finance);
      expect(seen.data).toEqual({ node: { id } });
    }
  });
});

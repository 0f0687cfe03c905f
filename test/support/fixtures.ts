// Typed fixture factories through the public GraphQL API.
import type { Harness } from './harness.js';

export const TIER_5K = { mmcUsd: '5000', includedCreditSeconds: '600000', contractRateUsd: '0.0075', overageRateUsd: '0.00833' };

export async function mustMutate<T = any>(h: Harness, query: string, variables: Record<string, unknown>, field: string, token?: string): Promise<T> {
  const res = await h.gql(query, variables, token);
  if (res.errors) throw new Error(`${field}: ${JSON.stringify(res.errors)}`);
  const payload = res.data[field];
  if (payload.__typename && payload.__typename.endsWith('Error')) throw new Error(`${field}: ${JSON.stringify(payload)}`);
  return payload;
}

export async function createAccount(
  h: Harness,
  opts: { name?: string; apiKey?: string; concurrencyLimit?: number; timezone?: string; webhookSecret?: string; creditPackage?: Record<string, string> } = {},
): Promise<string> {
  const input: Record<string, unknown> = {
    name: opts.name ?? 'Primary',
    billingModel: opts.creditPackage ? 'CREDIT_PACKAGE' : 'USAGE_BASED',
    apiKey: opts.apiKey ?? 'sk_test_primary_key_0001',
    baseUrl: h.sim.url,
    concurrencyLimit: opts.concurrencyLimit ?? 50,
    timezone: opts.timezone ?? 'UTC',
  };
  if (opts.creditPackage) input.creditPackage = opts.creditPackage;
  else input.usageBased = TIER_5K;
  if (opts.webhookSecret) input.webhookSecret = opts.webhookSecret;
  const p = await mustMutate(
    h,
    `mutation($input: CreateAccountInput!) { createAccount(input: $input) { __typename ... on CreateAccountPayload { account { id } } ... on Error { message code } } }`,
    { input },
    'createAccount',
  );
  return p.account.id;
}

export async function createUnit(h: Harness, kind: string, name: string, parentId: string | null, accountId?: string): Promise<string> {
  const p = await mustMutate(
    h,
    `mutation($input: CreateOrgUnitInput!) { createOrgUnit(input: $input) { __typename ... on CreateOrgUnitPayload { orgUnit { id } } ... on Error { message code } } }`,
    { input: { kind, name, parentId, accountId } },
    'createOrgUnit',
  );
  return p.orgUnit.id;
}

const roots = new WeakMap<Harness, string>();

export interface Tree {
  accountId: string;
  orgId: string;
  deptId: string;
  teamId: string;
  projectId: string;
  otherTeamId: string;
  otherProjectId: string;
}

export async function createTree(h: Harness, accountOpts: Parameters<typeof createAccount>[1] = {}): Promise<Tree> {
  const accountId = await createAccount(h, accountOpts);
  // One organization per gateway; each tree is a department of its own that draws on its own account.
  let orgId = roots.get(h);
  if (!orgId) {
    orgId = await createUnit(h, 'ORGANIZATION', 'Acme', null);
    roots.set(h, orgId);
  }
  const deptId = await createUnit(h, 'DEPARTMENT', `Marketing ${accountOpts.name ?? 'Primary'}`, orgId, accountId);
  const teamId = await createUnit(h, 'TEAM', 'Video', deptId);
  const projectId = await createUnit(h, 'PROJECT', 'Onboarding', teamId);
  const otherTeamId = await createUnit(h, 'TEAM', 'Social', deptId);
  const otherProjectId = await createUnit(h, 'PROJECT', 'Shorts', otherTeamId);
  return { accountId, orgId, deptId, teamId, projectId, otherTeamId, otherProjectId };
}

export async function setBudget(h: Harness, input: Record<string, unknown>): Promise<any> {
  return mustMutate(
    h,
    `mutation($input: SetBudgetInput!) { setBudget(input: $input) { __typename ... on SetBudgetPayload { budget { id limitCreditSeconds } } ... on Error { message code } } }`,
    { input },
    'setBudget',
  );
}

export async function issueServiceToken(h: Harness, orgUnitId: string, name = 'app'): Promise<{ token: string; id: string }> {
  const p = await mustMutate(
    h,
    `mutation($input: IssueServiceTokenInput!) { issueServiceToken(input: $input) { __typename ... on IssueServiceTokenPayload { token serviceToken { id } } ... on Error { message code } } }`,
    { input: { orgUnitId, name } },
    'issueServiceToken',
  );
  return { token: p.token, id: p.serviceToken.id };
}

export const SUBMIT = `mutation($input: SubmitJobInput!) {
  submitJob(input: $input) {
    __typename
    ... on SubmitJobPayload { replayed job { id status estimatedCreditSeconds reservedCreditSeconds upstreamIds } }
    ... on BudgetExceededError { message code orgUnitId limitCreditSeconds availableCreditSeconds requestedCreditSeconds }
    ... on ConcurrencyLimitError { message code retryAfterSeconds }
    ... on ValidationError { message code field }
    ... on Error { message code }
  }
}`;

/** 20 words: 8 s at 150 wpm → hold 8 × 6 cs × 1.10 = 52.8 cs on the default price book. */
export const SCRIPT_20_WORDS = Array.from({ length: 20 }, (_, i) => `word${i}`).join(' ');

export function avatarRequest(script = SCRIPT_20_WORDS): Record<string, unknown> {
  return { type: 'avatar', avatar_id: 'a1', voice_id: 'v1', script };
}

export const JOB_QUERY = `query($id: ID!) { job(id: $id) { id status estimatedCreditSeconds reservedCreditSeconds actualSeconds actualCreditSeconds upstreamIds failureCode failureMessage upstreamItems { upstreamId language status durationSeconds } } }`;

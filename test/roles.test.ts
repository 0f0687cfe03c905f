// Roles (docs/architecture.md, Identity and roles): every top-level query and mutation, for every kind of caller, against one table.
// "this" subtree is team Video (department A); "other" callers belong to department B, which draws on its own
// account. A mutation cell also checks the audit trail: an allowed mutation writes exactly one event, a refused
// one (and every query) none.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { startHarness, type Harness } from './support/harness.js';
import { spawnGateway, type GatewayProcess } from './support/processes.js';
import { TIER_5K, avatarRequest, createUnit, issueServiceToken, mustMutate } from './support/fixtures.js';
import { queryRows } from '../src/db/client.js';
import { schema } from '../src/graphql/schema.js';
import { admitJob } from '../src/jobs/admission.js';
import { recordMoneyEvent } from '../src/notifications/events.js';
import type { Actor } from '../src/auth/actor.js';

const ROLES = ['ADMIN', 'FINANCE', 'MANAGER_OTHER', 'MANAGER_THIS', 'MEMBER', 'SERVICE_OTHER', 'SERVICE_THIS', 'ANONYMOUS'] as const;
type RoleColumn = (typeof ROLES)[number];
/**
 * ok: allowed (a payload; a query that returns the object).
 * hidden: a query answers as if the object did not exist (null, or absent from the list), without an error.
 * notfound: NotFoundError (in a mutation's union, or NOT_FOUND on a query whose result cannot be null).
 * forbidden: ForbiddenError / FORBIDDEN. 401: refused before any resolver runs.
 */
type Outcome = 'ok' | 'hidden' | 'notfound' | 'forbidden' | '401';

// prettier-ignore
const MATRIX: [operation: string, ...cells: Outcome[]][] = [
  //                                       ADMIN        FINANCE      MGR other    MGR this     MEMBER       SVC other    SVC this     anonymous
  ['query viewer',                         'ok',        'ok',        'ok',        'ok',        'ok',        'ok',        'ok',        '401'],
  ['query node (project)',                 'ok',        'ok',        'hidden',    'ok',        'ok',        'hidden',    'ok',        '401'],
  ['query accounts',                       'ok',        'ok',        'hidden',    'ok',        'ok',        'hidden',    'ok',        '401'],
  ['query orgUnit (team)',                 'ok',        'ok',        'hidden',    'ok',        'ok',        'hidden',    'ok',        '401'],
  ['query orgUnits',                       'ok',        'ok',        'hidden',    'ok',        'ok',        'hidden',    'ok',        '401'],
  ['query job',                            'ok',        'ok',        'hidden',    'ok',        'ok',        'hidden',    'ok',        '401'],
  ['query jobs',                           'ok',        'ok',        'hidden',    'ok',        'ok',        'hidden',    'ok',        '401'],
  ['query usageSeries (team)',             'ok',        'ok',        'notfound',  'ok',        'ok',        'notfound',  'forbidden', '401'],
  ['query chargebackReport',               'ok',        'ok',        'notfound',  'ok',        'ok',        'notfound',  'ok',        '401'],
  ['query serviceTokens',                  'ok',        'ok',        'hidden',    'ok',        'forbidden', 'forbidden', 'forbidden', '401'],
  ['query auditEvents',                    'ok',        'ok',        'forbidden', 'forbidden', 'forbidden', 'forbidden', 'forbidden', '401'],
  ['query roleMappings',                   'ok',        'forbidden', 'forbidden', 'forbidden', 'forbidden', 'forbidden', 'forbidden', '401'],
  ['query overrunFlags',                   'ok',        'ok',        'forbidden', 'forbidden', 'forbidden', 'forbidden', 'forbidden', '401'],
  ['query moneyEvents (team)',             'ok',        'ok',        'notfound',  'ok',        'ok',        'notfound',  'ok',        '401'],
  ['query driftNotes',                     'ok',        'ok',        'forbidden', 'forbidden', 'forbidden', 'forbidden', 'forbidden', '401'],
  ['mutation createAccount',               'ok',        'forbidden', 'forbidden', 'forbidden', 'forbidden', 'forbidden', 'forbidden', '401'],
  ['mutation createOrgUnit (under team)',  'ok',        'forbidden', 'notfound',  'ok',        'forbidden', 'notfound',  'forbidden', '401'],
  ['mutation setBudget (project)',         'ok',        'ok',        'notfound',  'ok',        'forbidden', 'notfound',  'forbidden', '401'],
  ['mutation setBudget (manager\'s unit)', 'ok',        'ok',        'notfound',  'forbidden', 'forbidden', 'notfound',  'forbidden', '401'],
  ['mutation setUnitPolicy (project)',    'ok',        'ok',        'notfound',  'ok',        'forbidden', 'notfound',  'forbidden', '401'],
  ['mutation setUnitPolicy (manager\'s unit)', 'ok',     'ok',        'notfound',  'forbidden', 'forbidden', 'notfound',  'forbidden', '401'],
  ['mutation clearUnitPolicy (project)',  'ok',        'ok',        'notfound',  'ok',        'forbidden', 'notfound',  'forbidden', '401'],
  ['mutation setServiceTokenRateLimit',    'ok',        'forbidden', 'notfound',  'ok',        'forbidden', 'notfound',  'forbidden', '401'],
  ['mutation issueServiceToken',           'ok',        'forbidden', 'notfound',  'ok',        'forbidden', 'notfound',  'forbidden', '401'],
  ['mutation revokeServiceToken',          'ok',        'forbidden', 'notfound',  'ok',        'forbidden', 'notfound',  'forbidden', '401'],
  ['mutation rotateCallbackSecret (SVC this)', 'ok',      'forbidden', 'notfound',  'ok',        'forbidden', 'notfound',  'ok',        '401'],
  ['mutation submitJob',                   'ok',        'forbidden', 'notfound',  'ok',        'ok',        'notfound',  'ok',        '401'],
  ['mutation cancelJob',                   'ok',        'forbidden', 'notfound',  'ok',        'ok',        'notfound',  'ok',        '401'],
  ['mutation setAccountTerms',             'ok',        'ok',        'forbidden', 'forbidden', 'forbidden', 'forbidden', 'forbidden', '401'],
  ['mutation setCommittedShares',          'ok',        'ok',        'forbidden', 'forbidden', 'forbidden', 'forbidden', 'forbidden', '401'],
  ['mutation setConcurrencyShares',        'ok',        'ok',        'forbidden', 'forbidden', 'forbidden', 'forbidden', 'forbidden', '401'],
  ['mutation recordUsageAdjustment',       'ok',        'ok',        'forbidden', 'forbidden', 'forbidden', 'forbidden', 'forbidden', '401'],
  ['mutation closePeriod',                 'ok',        'ok',        'forbidden', 'forbidden', 'forbidden', 'forbidden', 'forbidden', '401'],
  ['mutation syncWallet',                  'ok',        'ok',        'forbidden', 'forbidden', 'forbidden', 'forbidden', 'forbidden', '401'],
  ['mutation rotateAccountApiKey',         'ok',        'forbidden', 'forbidden', 'forbidden', 'forbidden', 'forbidden', 'forbidden', '401'],
  ['mutation createRoleMapping',           'ok',        'forbidden', 'forbidden', 'forbidden', 'forbidden', 'forbidden', 'forbidden', '401'],
  ['mutation deleteRoleMapping',           'ok',        'forbidden', 'forbidden', 'forbidden', 'forbidden', 'forbidden', 'forbidden', '401'],
  ['query notificationChannels',           'ok',        'ok',        'hidden',    'ok',        'hidden',    'hidden',    'hidden',    '401'],
  ['query notificationRules',              'ok',        'ok',        'hidden',    'ok',        'hidden',    'hidden',    'hidden',    '401'],
  ['query notificationDeliveries',         'ok',        'ok',        'notfound',  'ok',        'notfound',  'notfound',  'notfound',  '401'],
  ['mutation createNotificationChannel',   'ok',        'ok',        'notfound',  'ok',        'forbidden', 'notfound',  'forbidden', '401'],
  ['mutation updateNotificationChannel',   'ok',        'ok',        'notfound',  'ok',        'notfound',  'notfound',  'notfound',  '401'],
  ['mutation deleteNotificationChannel',   'ok',        'ok',        'notfound',  'ok',        'notfound',  'notfound',  'notfound',  '401'],
  ['mutation createNotificationRule',      'ok',        'ok',        'notfound',  'ok',        'forbidden', 'notfound',  'forbidden', '401'],
  ['mutation deleteNotificationRule',      'ok',        'ok',        'notfound',  'ok',        'notfound',  'notfound',  'notfound',  '401'],
  // Budget requests on the project's budget, asked by SVC this (docs/budgets.md, Requests and transfers): a caller the
  // budget binds asks, who may set the budget decides (never the requester), who may set both budgets transfers.
  ['query budgetRequests',                 'ok',        'ok',        'hidden',    'ok',        'hidden',    'hidden',    'ok',        '401'],
  ['mutation requestBudgetIncrease',       'forbidden', 'forbidden', 'notfound',  'forbidden', 'ok',        'notfound',  'ok',        '401'],
  ['mutation approveBudgetRequest',        'ok',        'ok',        'notfound',  'ok',        'notfound',  'notfound',  'forbidden', '401'],
  ['mutation rejectBudgetRequest',         'ok',        'ok',        'notfound',  'ok',        'notfound',  'notfound',  'forbidden', '401'],
  ['mutation transferBudget (projects)',   'ok',        'ok',        'notfound',  'ok',        'forbidden', 'notfound',  'notfound',  '401'],
  ['query tagKeys',                        'ok',        'ok',        'ok',        'ok',        'ok',        'ok',        'ok',        '401'],
  ['mutation setTagKeys',                  'ok',        'ok',        'forbidden', 'forbidden', 'forbidden', 'forbidden', 'forbidden', '401'],
  ['mutation setGroupBudget (project)',    'ok',        'ok',        'notfound',  'ok',        'forbidden', 'notfound',  'forbidden', '401'],
];

const SIM_KEY = 'sk_test_primary_key_0001';
const PERIOD_NOW = new Date().toISOString().slice(0, 7);

let h: Harness;
const tokens = {} as Record<RoleColumn, string | null>;
const ids = {} as {
  accountA: string;
  accountB: string;
  org: string;
  deptA: string;
  team: string;
  project: string;
  deptB: string;
  projectB: string;
  job: string;
  serviceToken: string;
  moneyEvent: string;
};

const rawId = (globalId: string) => decodeGlobalID(globalId).id;

async function post(query: string, variables: Record<string, unknown>, token: string | null, requestId: string) {
  const res = await fetch(`${h.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': requestId, ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return { status: res.status, body: (await res.json()) as { data?: any; errors?: any[] } };
}

async function auditEventsOf(requestId: string): Promise<number> {
  const [row] = await queryRows<{ n: number }>(h.services.db, sql`select count(*)::int as n from audit_events where request_id = ${requestId}`);
  return Number(row!.n);
}

/** Runs a query and reads its outcome; `visible` says whether the answer contains the object asked about. */
async function queryOutcome(query: string, variables: Record<string, unknown>, token: string | null, visible: (data: any) => boolean): Promise<string> {
  const requestId = `matrix-${randomUUID()}`;
  const r = await post(query, variables, token, requestId);
  const writes = await auditEventsOf(requestId);
  const suffix = writes === 0 ? '' : ` (+${writes} audit events)`;
  if (r.status === 401) return `401${suffix}`;
  if (r.body.errors?.length) {
    const code = r.body.errors[0].extensions?.code;
    return `${code === 'FORBIDDEN' ? 'forbidden' : code === 'NOT_FOUND' ? 'notfound' : `error ${code}: ${r.body.errors[0].message}`}${suffix}`;
  }
  return `${visible(r.body.data) ? 'ok' : 'hidden'}${suffix}`;
}

/** Runs a mutation and reads its outcome; an allowed one must leave exactly one audit event, a refused one none. */
async function mutationOutcome(field: string, inputType: string, input: Record<string, unknown>, token: string | null): Promise<string> {
  const requestId = `matrix-${randomUUID()}`;
  const r = await post(
    `mutation($input: ${inputType}!) { ${field}(input: $input) { __typename ... on Error { message code } } }`,
    { input },
    token,
    requestId,
  );
  const writes = await auditEventsOf(requestId);
  let outcome: string;
  if (r.status === 401) outcome = '401';
  else if (r.body.errors?.length) outcome = `error ${r.body.errors[0].extensions?.code}: ${r.body.errors[0].message}`;
  else {
    const typename: string = r.body.data[field].__typename;
    outcome = typename.endsWith('Payload')
      ? 'ok'
      : typename === 'ForbiddenError'
        ? 'forbidden'
        : typename === 'NotFoundError'
          ? 'notfound'
          : `${typename}: ${r.body.data[field].message}`;
  }
  const expectedWrites = outcome === 'ok' ? 1 : 0;
  return writes === expectedWrites ? outcome : `${outcome} (${writes} audit events)`;
}

const edgesOf = (connection: any): string[] => connection.edges.map((e: any) => e.node.id);

let counter = 0;
const unique = (prefix: string) => `${prefix}-${++counter}`;
const closable = ['2021-01', '2021-02', '2021-03', '2021-04', '2021-05', '2021-06', '2021-07', '2021-08'];

/** Fresh RESERVED job of the project, never forwarded (workers are off), so that it can be cancelled. */
async function reservedJob(): Promise<string> {
  const admin: Actor = { subject: 'admin:fixture', role: 'ADMIN', unitId: null, unitPath: [], tokenId: null };
  const { job } = await admitJob(
    h.services.db,
    admin,
    { projectId: rawId(ids.project), kind: 'AVATAR_VIDEO', request: avatarRequest(), estimatedSeconds: null, idempotencyKey: null },
    h.services.admission,
  );
  return encodeGlobalID('Job', job.id);
}

/** A money event of the project (the team's subtree), written as its cause would write it. */
async function projectMoneyEvent(): Promise<string> {
  const data = { jobId: rawId(ids.job), projectId: rawId(ids.project), accountId: rawId(ids.accountA) };
  await h.services.db.transaction((tx) => recordMoneyEvent(tx, { kind: 'job.finished', dedupeKey: 'matrix', orgUnitId: rawId(ids.project), data }));
  const [row] = await queryRows<{ id: string }>(h.services.db, sql`select id from outbox_events where topic = 'money_event' and dedupe_key = 'job.finished:matrix'`);
  return row!.id;
}

const teamChannels = new Map<string, string>();
/** A webhook channel on the team (made once per name, by the ADMIN). */
async function teamChannel(name = 'team-hook'): Promise<string> {
  if (!teamChannels.has(name)) {
    const p = await mustMutate(
      h,
      `mutation($input: CreateNotificationChannelInput!) { createNotificationChannel(input: $input) { __typename ... on NotificationChannelPayload { channel { id } } ... on Error { message } } }`,
      { input: { orgUnitId: ids.team, kind: 'WEBHOOK', name, config: { url: 'https://hooks.example.com/gateway' } } },
      'createNotificationChannel',
    );
    teamChannels.set(name, p.channel.id);
  }
  return teamChannels.get(name)!;
}
let sharedRule: string | null = null;
/** A rule on the team to the team's channel (a fresh one when `fresh`). */
async function teamRule(fresh = false): Promise<string> {
  if (sharedRule && !fresh) return sharedRule;
  const p = await mustMutate(
    h,
    `mutation($input: CreateNotificationRuleInput!) { createNotificationRule(input: $input) { __typename ... on CreateNotificationRulePayload { rule { id } } ... on Error { message } } }`,
    { input: { orgUnitId: ids.team, channelId: await teamChannel(), eventKinds: ['JOB_FINISHED'] } },
    'createNotificationRule',
  );
  if (!fresh) sharedRule = p.rule.id;
  return p.rule.id;
}

const setBudgetMutation = `mutation($input: SetBudgetInput!) { setBudget(input: $input) { __typename ... on SetBudgetPayload { budget { id } } ... on Error { message } } }`;
let projectBudgetId: string | null = null;
/** The project's MONTHLY budget on account A (the setBudget rows set the same one). */
async function projectBudget(): Promise<string> {
  if (!projectBudgetId) {
    const input = { orgUnitId: ids.project, accountId: ids.accountA, window: 'MONTHLY', limitCreditSeconds: '1000000' };
    projectBudgetId = (await mustMutate(h, setBudgetMutation, { input }, 'setBudget')).budget.id;
  }
  return projectBudgetId!;
}
let siblingBudgetId: string | null = null;
/** A MONTHLY budget on account A of a second project of the team. */
async function siblingProjectBudget(): Promise<string> {
  if (!siblingBudgetId) {
    const sibling = await createUnit(h, 'PROJECT', 'Onboarding 2', ids.team);
    const input = { orgUnitId: sibling, accountId: ids.accountA, window: 'MONTHLY', limitCreditSeconds: '1000' };
    siblingBudgetId = (await mustMutate(h, setBudgetMutation, { input }, 'setBudget')).budget.id;
  }
  return siblingBudgetId!;
}
let sharedRequest: string | null = null;
/** A PENDING request of SVC this for the project's budget (a fresh one when `fresh`). */
async function budgetRequestOfServiceThis(fresh = false): Promise<string> {
  if (sharedRequest && !fresh) return sharedRequest;
  const p = await mustMutate(
    h,
    `mutation($input: RequestBudgetIncreaseInput!) { requestBudgetIncrease(input: $input) { __typename ... on RequestBudgetIncreasePayload { request { id } } ... on Error { message } } }`,
    { input: { budgetId: await projectBudget(), amountCreditSeconds: '10', reason: 'refused at the launch' } },
    'requestBudgetIncrease',
    tokens.SERVICE_THIS!,
  );
  if (!fresh) sharedRequest = p.request.id;
  return p.request.id;
}

type Run = (token: string | null) => Promise<string>;
const OPERATIONS: Record<string, { field: string; run: Run }> = {
  'query viewer': { field: 'viewer', run: (t) => queryOutcome(`{ viewer { role } }`, {}, t, (d) => d.viewer !== null) },
  'query node (project)': {
    field: 'node',
    run: (t) => queryOutcome(`query($id: ID!) { node(id: $id) { id } }`, { id: ids.project }, t, (d) => d.node?.id === ids.project),
  },
  'query accounts': { field: 'accounts', run: (t) => queryOutcome(`{ accounts { id } }`, {}, t, (d) => d.accounts.some((a: any) => a.id === ids.accountA)) },
  'query orgUnit (team)': {
    field: 'orgUnit',
    run: (t) => queryOutcome(`query($id: ID!) { orgUnit(id: $id) { id } }`, { id: ids.team }, t, (d) => d.orgUnit?.id === ids.team),
  },
  'query orgUnits': {
    field: 'orgUnits',
    run: (t) => queryOutcome(`{ orgUnits(first: 500) { edges { node { id } } } }`, {}, t, (d) => edgesOf(d.orgUnits).includes(ids.project)),
  },
  'query job': { field: 'job', run: (t) => queryOutcome(`query($id: ID!) { job(id: $id) { id } }`, { id: ids.job }, t, (d) => d.job?.id === ids.job) },
  'query jobs': {
    field: 'jobs',
    run: (t) => queryOutcome(`{ jobs(first: 500) { edges { node { id } } } }`, {}, t, (d) => edgesOf(d.jobs).includes(ids.job)),
  },
  'query usageSeries (team)': {
    field: 'usageSeries',
    run: (t) =>
      queryOutcome(
        `query($u: ID!) { usageSeries(orgUnitId: $u, from: "2026-01-01", to: "2026-01-31", granularity: DAY) { day } }`,
        { u: ids.team },
        t,
        (d) => d.usageSeries.length === 31,
      ),
  },
  'query chargebackReport': {
    field: 'chargebackReport',
    run: (t) =>
      queryOutcome(
        `query($a: ID!, $p: String!) { chargebackReport(accountId: $a, period: $p) { invoiceTotalUsd } }`,
        { a: ids.accountA, p: PERIOD_NOW },
        t,
        (d) => d.chargebackReport !== null,
      ),
  },
  'query serviceTokens': {
    field: 'serviceTokens',
    run: (t) =>
      queryOutcome(
        `query($u: ID!) { serviceTokens(first: 100, orgUnitId: $u) { edges { node { id } } } }`,
        { u: ids.project },
        t,
        (d) => edgesOf(d.serviceTokens).includes(ids.serviceToken),
      ),
  },
  'query auditEvents': { field: 'auditEvents', run: (t) => queryOutcome(`{ auditEvents(first: 5) { edges { node { id action } } } }`, {}, t, (d) => d.auditEvents.edges.length > 0) },
  'query roleMappings': { field: 'roleMappings', run: (t) => queryOutcome(`{ roleMappings { id } }`, {}, t, (d) => Array.isArray(d.roleMappings)) },
  'query overrunFlags': { field: 'overrunFlags', run: (t) => queryOutcome(`query($p: Period!) { overrunFlags(period: $p) { jobsWithOverrun } }`, { p: PERIOD_NOW }, t, (d) => Array.isArray(d.overrunFlags)) },
  'query moneyEvents (team)': {
    field: 'moneyEvents',
    run: (t) =>
      queryOutcome(
        `query($u: ID!) { moneyEvents(orgUnitId: $u, first: 100) { edges { node { id } } } }`,
        { u: ids.team },
        t,
        (d) => edgesOf(d.moneyEvents).includes(ids.moneyEvent),
      ),
  },
  'query driftNotes': {
    field: 'driftNotes',
    run: (t) => queryOutcome(`query($a: ID!, $p: Period!) { driftNotes(accountId: $a, period: $p) { reason } }`, { a: ids.accountA, p: PERIOD_NOW }, t, (d) => Array.isArray(d.driftNotes)),
  },

  'mutation createAccount': {
    field: 'createAccount',
    run: (t) =>
      mutationOutcome(
        'createAccount',
        'CreateAccountInput',
        { name: unique('Matrix account'), billingModel: 'USAGE_BASED', usageBased: TIER_5K, apiKey: `sk_test_matrix_${randomUUID()}`, baseUrl: h.sim.url },
        t,
      ),
  },
  'mutation createOrgUnit (under team)': {
    field: 'createOrgUnit',
    run: (t) => mutationOutcome('createOrgUnit', 'CreateOrgUnitInput', { parentId: ids.team, kind: 'PROJECT', name: unique('Matrix project') }, t),
  },
  'query tagKeys': { field: 'tagKeys', run: (t) => queryOutcome(`{ tagKeys }`, {}, t, (d) => Array.isArray(d.tagKeys)) },
  'mutation setTagKeys': { field: 'setTagKeys', run: (t) => mutationOutcome('setTagKeys', 'SetTagKeysInput', { keys: ['campaign'] }, t) },
  'mutation setGroupBudget (project)': {
    field: 'setGroupBudget',
    run: (t) => mutationOutcome('setGroupBudget', 'SetGroupBudgetInput', { orgUnitId: ids.project, window: 'MONTHLY', person: 'member:mel', limitCreditSeconds: '1000' }, t),
  },
  'mutation setBudget (project)': {
    field: 'setBudget',
    run: (t) =>
      mutationOutcome('setBudget', 'SetBudgetInput', { orgUnitId: ids.project, accountId: ids.accountA, window: 'MONTHLY', limitCreditSeconds: '1000000' }, t),
  },
  "mutation setBudget (manager's unit)": {
    field: 'setBudget',
    run: (t) => mutationOutcome('setBudget', 'SetBudgetInput', { orgUnitId: ids.team, accountId: ids.accountA, window: 'MONTHLY', limitCreditSeconds: '2000000' }, t),
  },
  'mutation setUnitPolicy (project)': {
    field: 'setUnitPolicy',
    run: (t) => mutationOutcome('setUnitPolicy', 'SetUnitPolicyInput', { orgUnitId: ids.project, maxLengthSeconds: 3600 }, t),
  },
  "mutation setUnitPolicy (manager's unit)": {
    field: 'setUnitPolicy',
    run: (t) => mutationOutcome('setUnitPolicy', 'SetUnitPolicyInput', { orgUnitId: ids.team, maxLengthSeconds: 7200 }, t),
  },
  'mutation clearUnitPolicy (project)': {
    field: 'clearUnitPolicy',
    run: async (t) => {
      // A policy to clear (set outside the cell's request: its audit event is not the cell's).
      const set = await post(`mutation($input: SetUnitPolicyInput!) { setUnitPolicy(input: $input) { __typename } }`, { input: { orgUnitId: ids.project, maxLengthSeconds: 3600 } }, h.adminToken, `matrix-${randomUUID()}`);
      expect(set.body.data.setUnitPolicy.__typename).toBe('SetUnitPolicyPayload');
      return mutationOutcome('clearUnitPolicy', 'ClearUnitPolicyInput', { orgUnitId: ids.project }, t);
    },
  },
  'mutation setServiceTokenRateLimit': {
    field: 'setServiceTokenRateLimit',
    run: async (t) => {
      const { id } = await issueServiceToken(h, ids.project, unique('rate limited'));
      return mutationOutcome('setServiceTokenRateLimit', 'SetServiceTokenRateLimitInput', { serviceTokenId: id, jobsPerMinute: 100 }, t);
    },
  },
  'mutation issueServiceToken': {
    field: 'issueServiceToken',
    run: (t) => mutationOutcome('issueServiceToken', 'IssueServiceTokenInput', { orgUnitId: ids.project, name: unique('matrix') }, t),
  },
  'mutation revokeServiceToken': {
    field: 'revokeServiceToken',
    run: async (t) => {
      const { id } = await issueServiceToken(h, ids.project, unique('to revoke'));
      return mutationOutcome('revokeServiceToken', 'RevokeServiceTokenInput', { serviceTokenId: id }, t);
    },
  },
  'mutation rotateCallbackSecret (SVC this)': {
    field: 'rotateCallbackSecret',
    run: (t) => mutationOutcome('rotateCallbackSecret', 'RotateCallbackSecretInput', { serviceTokenId: ids.serviceToken }, t),
  },
  'mutation submitJob': {
    field: 'submitJob',
    run: (t) => mutationOutcome('submitJob', 'SubmitJobInput', { projectId: ids.project, kind: 'AVATAR_VIDEO', request: avatarRequest() }, t),
  },
  'mutation cancelJob': {
    field: 'cancelJob',
    run: async (t) => mutationOutcome('cancelJob', 'CancelJobInput', { jobId: await reservedJob() }, t),
  },
  'mutation setAccountTerms': {
    field: 'setAccountTerms',
    run: (t) => mutationOutcome('setAccountTerms', 'SetAccountTermsInput', { accountId: ids.accountA, effectiveFrom: PERIOD_NOW, preset: 'MMC_5000' }, t),
  },
  'mutation setCommittedShares': {
    field: 'setCommittedShares',
    run: (t) =>
      mutationOutcome('setCommittedShares', 'SetCommittedSharesInput', { accountId: ids.accountA, effectiveFrom: PERIOD_NOW, shares: [{ orgUnitId: ids.org, share: '1' }] }, t),
  },
  'mutation setConcurrencyShares': {
    field: 'setConcurrencyShares',
    run: (t) => mutationOutcome('setConcurrencyShares', 'SetConcurrencySharesInput', { accountId: ids.accountA, shares: [{ orgUnitId: ids.team, weight: 2 }] }, t),
  },
  'mutation recordUsageAdjustment': {
    field: 'recordUsageAdjustment',
    run: (t) =>
      mutationOutcome(
        'recordUsageAdjustment',
        'RecordUsageAdjustmentInput',
        { orgUnitId: ids.project, accountId: ids.accountA, period: PERIOD_NOW, creditSeconds: '1', reason: 'matrix' },
        t,
      ),
  },
  'mutation closePeriod': {
    field: 'closePeriod',
    // Each allowed call closes another month (a month closes once).
    run: (t) => mutationOutcome('closePeriod', 'ClosePeriodInput', { accountId: ids.accountA, period: t === tokens.ADMIN || t === tokens.FINANCE ? closable.shift()! : '2021-12' }, t),
  },
  'mutation syncWallet': { field: 'syncWallet', run: (t) => mutationOutcome('syncWallet', 'SyncWalletInput', { accountId: ids.accountA }, t) },
  'mutation rotateAccountApiKey': {
    field: 'rotateAccountApiKey',
    // Department B's account: account A's key must keep matching the simulator.
    run: (t) => mutationOutcome('rotateAccountApiKey', 'RotateAccountApiKeyInput', { accountId: ids.accountB, apiKey: `sk_test_rotated_${randomUUID()}` }, t),
  },
  'mutation createRoleMapping': {
    field: 'createRoleMapping',
    run: (t) => mutationOutcome('createRoleMapping', 'CreateRoleMappingInput', { claim: 'groups', value: unique('matrix-group'), role: 'FINANCE' }, t),
  },
  'query notificationChannels': {
    field: 'notificationChannels',
    run: async (t) => {
      const channel = await teamChannel();
      return queryOutcome(`{ notificationChannels { id display } }`, {}, t, (d) => d.notificationChannels.some((c: any) => c.id === channel));
    },
  },
  'query notificationRules': {
    field: 'notificationRules',
    run: async (t) => {
      const rule = await teamRule();
      return queryOutcome(`{ notificationRules { id } }`, {}, t, (d) => d.notificationRules.some((r: any) => r.id === rule));
    },
  },
  'query notificationDeliveries': {
    field: 'notificationDeliveries',
    run: async (t) => queryOutcome(`query($c: ID!) { notificationDeliveries(channelId: $c) { deliveryId } }`, { c: await teamChannel() }, t, (d) => Array.isArray(d.notificationDeliveries)),
  },
  'mutation createNotificationChannel': {
    field: 'createNotificationChannel',
    run: (t) =>
      mutationOutcome('createNotificationChannel', 'CreateNotificationChannelInput', { orgUnitId: ids.team, kind: 'SLACK', name: unique('slack'), config: { url: 'https://hooks.example.com/services/T0/B0/x' } }, t),
  },
  'mutation updateNotificationChannel': {
    field: 'updateNotificationChannel',
    run: async (t) => mutationOutcome('updateNotificationChannel', 'UpdateNotificationChannelInput', { id: await teamChannel(), enabled: true }, t),
  },
  'mutation deleteNotificationChannel': {
    field: 'deleteNotificationChannel',
    run: async (t) => mutationOutcome('deleteNotificationChannel', 'DeleteNotificationChannelInput', { id: await teamChannel(unique('doomed')) }, t),
  },
  'mutation createNotificationRule': {
    field: 'createNotificationRule',
    run: async (t) =>
      mutationOutcome('createNotificationRule', 'CreateNotificationRuleInput', { orgUnitId: ids.team, channelId: await teamChannel(), eventKinds: ['BUDGET_THRESHOLD_CROSSED'] }, t),
  },
  'mutation deleteNotificationRule': {
    field: 'deleteNotificationRule',
    run: async (t) => mutationOutcome('deleteNotificationRule', 'DeleteNotificationRuleInput', { id: await teamRule(true) }, t),
  },
  'query budgetRequests': {
    field: 'budgetRequests',
    run: async (t) => {
      const request = await budgetRequestOfServiceThis();
      return queryOutcome(`{ budgetRequests(first: 500) { id } }`, {}, t, (d) => d.budgetRequests.some((r: any) => r.id === request));
    },
  },
  'mutation requestBudgetIncrease': {
    field: 'requestBudgetIncrease',
    run: async (t) =>
      mutationOutcome('requestBudgetIncrease', 'RequestBudgetIncreaseInput', { budgetId: await projectBudget(), amountCreditSeconds: '100', reason: 'matrix' }, t),
  },
  'mutation approveBudgetRequest': {
    field: 'approveBudgetRequest',
    run: async (t) => mutationOutcome('approveBudgetRequest', 'ApproveBudgetRequestInput', { requestId: await budgetRequestOfServiceThis(true) }, t),
  },
  'mutation rejectBudgetRequest': {
    field: 'rejectBudgetRequest',
    run: async (t) => mutationOutcome('rejectBudgetRequest', 'RejectBudgetRequestInput', { requestId: await budgetRequestOfServiceThis(true), note: 'matrix' }, t),
  },
  'mutation transferBudget (projects)': {
    field: 'transferBudget',
    run: async (t) =>
      mutationOutcome(
        'transferBudget',
        'TransferBudgetInput',
        { fromBudgetId: await projectBudget(), toBudgetId: await siblingProjectBudget(), amountCreditSeconds: '1', reason: 'matrix' },
        t,
      ),
  },
  'mutation deleteRoleMapping': {
    field: 'deleteRoleMapping',
    run: async (t) => {
      const created = await mustMutate(
        h,
        `mutation($input: CreateRoleMappingInput!) { createRoleMapping(input: $input) { __typename ... on CreateRoleMappingPayload { roleMapping { id } } ... on Error { message } } }`,
        { input: { claim: 'groups', value: unique('doomed-group'), role: 'FINANCE' } },
        'createRoleMapping',
      );
      return mutationOutcome('deleteRoleMapping', 'DeleteRoleMappingInput', { roleMappingId: created.roleMapping.id }, t);
    },
  },
};

async function createAccount(name: string, apiKey: string): Promise<string> {
  const p = await mustMutate(
    h,
    `mutation($input: CreateAccountInput!) { createAccount(input: $input) { __typename ... on CreateAccountPayload { account { id } } ... on Error { message } } }`,
    { input: { name, billingModel: 'USAGE_BASED', usageBased: TIER_5K, apiKey, baseUrl: h.sim.url, concurrencyLimit: 100, effectiveFrom: '2020-01' } },
    'createAccount',
  );
  return p.account.id;
}

beforeAll(async () => {
  h = await startHarness({ workers: false, env: { RATE_LIMIT_PER_MINUTE: '0' } });
  ids.accountA = await createAccount('Account A', SIM_KEY);
  ids.accountB = await createAccount('Account B', 'sk_test_account_b_0002');
  ids.org = await createUnit(h, 'ORGANIZATION', 'Acme', null);
  ids.deptA = await createUnit(h, 'DEPARTMENT', 'Department A', ids.org, ids.accountA);
  ids.team = await createUnit(h, 'TEAM', 'Video', ids.deptA);
  ids.project = await createUnit(h, 'PROJECT', 'Onboarding', ids.team);
  ids.deptB = await createUnit(h, 'DEPARTMENT', 'Department B', ids.org, ids.accountB);
  const teamB = await createUnit(h, 'TEAM', 'Research', ids.deptB);
  ids.projectB = await createUnit(h, 'PROJECT', 'Lab', teamB);

  const issue = h.services.tokens.issueOperatorToken;
  tokens.ADMIN = h.adminToken;
  tokens.FINANCE = await issue({ name: 'fiona', role: 'FINANCE' });
  tokens.MANAGER_OTHER = await issue({ name: 'otto', role: 'MANAGER', unitId: rawId(ids.deptB) });
  tokens.MANAGER_THIS = await issue({ name: 'maya', role: 'MANAGER', unitId: rawId(ids.team) });
  tokens.MEMBER = await issue({ name: 'mel', role: 'MEMBER', unitId: rawId(ids.team) });
  tokens.SERVICE_OTHER = (await issueServiceToken(h, ids.projectB, 'lab-app')).token;
  const own = await issueServiceToken(h, ids.project, 'onboarding-app');
  tokens.SERVICE_THIS = own.token;
  tokens.ANONYMOUS = null;
  ids.serviceToken = own.id;
  ids.job = await reservedJob();
  ids.moneyEvent = await projectMoneyEvent();
});
afterAll(async () => h?.close());

describe('the role matrix', () => {
  it('covers every top-level query and mutation of the schema, and names only fields that exist', () => {
    const fields = [
      ...Object.keys(schema.getQueryType()!.getFields()).map((f) => `query ${f}`),
      ...Object.keys(schema.getMutationType()!.getFields()).map((f) => `mutation ${f}`),
    ].sort();
    const covered = [...new Set(MATRIX.map(([op]) => `${op.split(' ')[0]} ${OPERATIONS[op]!.field}`))].sort();
    expect(covered).toEqual(fields);
    for (const [op, ...cells] of MATRIX) {
      expect(OPERATIONS[op], op).toBeDefined();
      expect(cells, op).toHaveLength(ROLES.length);
    }
  });

  it.each(MATRIX.map(([op, ...cells]) => [op, cells] as const))('%s', async (op, expected) => {
    const actual: string[] = [];
    // One caller after another: a cell's preparation (a token to revoke, a job to cancel) is its own.
    for (const role of ROLES) actual.push(await OPERATIONS[op]!.run(tokens[role]));
    expect(Object.fromEntries(ROLES.map((r, i) => [r, actual[i]]))).toEqual(Object.fromEntries(ROLES.map((r, i) => [r, expected[i]])));
  });
});

describe('service tokens', () => {
  it('serviceTokens shows name, expiry, last use and revocation; a MANAGER sees its subtree only, FINANCE everything', async () => {
    const { id, token } = await issueServiceToken(h, ids.project, 'listed-app');
    // Its first use records lastUsedAt.
    expect((await post(`{ viewer { role } }`, {}, token, 'use-1')).status).toBe(200);
    const LIST = `query($u: ID) { serviceTokens(first: 100, orgUnitId: $u) { edges { cursor node { id name expiresAt lastUsedAt revokedAt active createdBy orgUnit { id } } } pageInfo { hasNextPage } } }`;
    const mine = await post(LIST, { u: null }, tokens.MANAGER_THIS, 'list-1');
    expect(mine.body.errors).toBeUndefined();
    const nodes = mine.body.data.serviceTokens.edges.map((e: any) => e.node);
    const listed = nodes.find((n: any) => n.id === id);
    expect(listed).toMatchObject({ name: 'listed-app', revokedAt: null, active: true, createdBy: 'admin:test', orgUnit: { id: ids.project } });
    expect(Date.parse(listed.expiresAt)).toBeGreaterThan(Date.now());
    expect(typeof listed.lastUsedAt).toBe('string');
    // Only tokens of projects in the manager's subtree; department B's token is not among them.
    expect(new Set(nodes.map((n: any) => n.orgUnit.id))).toEqual(new Set([ids.project]));
    const all = await post(LIST, { u: null }, tokens.FINANCE, 'list-2');
    expect(new Set(all.body.data.serviceTokens.edges.map((e: any) => e.node.orgUnit.id))).toEqual(new Set([ids.project, ids.projectB]));
    // Newest first, and the cursor pages through without repeats.
    const first = await post(`query { serviceTokens(first: 1) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }`, {}, tokens.FINANCE, 'list-3');
    const second = await post(
      `query($after: String) { serviceTokens(first: 1, after: $after) { edges { node { id } } } }`,
      { after: first.body.data.serviceTokens.pageInfo.endCursor },
      tokens.FINANCE,
      'list-4',
    );
    const order = all.body.data.serviceTokens.edges.map((e: any) => e.node.id);
    expect([first.body.data.serviceTokens.edges[0].node.id, second.body.data.serviceTokens.edges[0].node.id]).toEqual(order.slice(0, 2));

    const revoke = await post(
      `mutation($id: ID!) { revokeServiceToken(input: { serviceTokenId: $id }) { __typename ... on RevokeServiceTokenPayload { serviceToken { revokedAt active } } } }`,
      { id },
      tokens.MANAGER_THIS,
      'revoke-listed',
    );
    expect(revoke.body.data.revokeServiceToken).toMatchObject({ __typename: 'RevokeServiceTokenPayload', serviceToken: { active: false } });
    const after = await post(LIST, { u: ids.project }, tokens.MANAGER_THIS, 'list-5');
    expect(after.body.data.serviceTokens.edges.find((e: any) => e.node.id === id).node).toMatchObject({ active: false, revokedAt: expect.any(String) });
    // Revoking again changes nothing (the first revocation time stays) and writes no second audit event.
    const again = await post(
      `mutation($id: ID!) { revokeServiceToken(input: { serviceTokenId: $id }) { __typename ... on RevokeServiceTokenPayload { serviceToken { revokedAt } } } }`,
      { id },
      tokens.MANAGER_THIS,
      'revoke-listed-again',
    );
    expect(again.body.data.revokeServiceToken.serviceToken.revokedAt).toBe(revoke.body.data.revokeServiceToken.serviceToken.revokedAt);
    expect(await auditEventsOf('revoke-listed-again')).toBe(0);
  });

  it('only the jti is stored: the token string is nowhere in the database, and its jti is the record id', async () => {
    const { id, token } = await issueServiceToken(h, ids.project, 'never-stored');
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString());
    expect(claims.jti).toBe(rawId(id));
    const [row] = await queryRows<{ t: string }>(h.services.db, sql`select row_to_json(s)::text as t from service_tokens s where id = ${claims.jti}`);
    // Besides the record, only the callback signing secret's ciphertext (src/auth/callback-secrets.ts) and its time.
    expect(Object.keys(JSON.parse(row!.t)).sort()).toEqual([
      'callback_secret_ciphertext',
      'callback_secret_rotated_at',
      'created_at',
      'created_by',
      'expires_at',
      'id',
      'last_used_at',
      'name',
      'org_unit_id',
      'revoked_at',
    ]);
    const signature = token.split('.')[2]!;
    const dump = await queryRows<{ t: string }>(
      h.services.db,
      sql`select row_to_json(s)::text as t from service_tokens s union all select row_to_json(a)::text from audit_events a`,
    );
    for (const { t } of dump) {
      expect(t).not.toContain(token);
      expect(t).not.toContain(signature);
    }
  });

  describe('revocation across gateway processes', () => {
    let second: GatewayProcess;
    beforeAll(async () => {
      second = await spawnGateway({
        DATABASE_URL: h.config.databaseUrl!,
        GATEWAY_MASTER_KEY: h.config.masterKey!,
        HEYGEN_BASE_URL: h.sim.url,
        WORKERS_ENABLED: 'false',
      });
    });
    afterAll(async () => second?.stop());

    const viewerOn = async (url: string, token: string) => {
      const res = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: '{ viewer { role } }' }),
      });
      return { status: res.status, body: (await res.json()) as any };
    };

    it('a token revoked on one process is refused by the other on its very next request', async () => {
      const { id, token } = await issueServiceToken(h, ids.project, 'two-process-app');
      // In use on the second process (which has answered for it before the revocation).
      for (let i = 0; i < 3; i++) {
        const ok = await viewerOn(second.url, token);
        expect(ok.status).toBe(200);
        expect(ok.body.data.viewer.role).toBe('SERVICE');
      }
      const revoke = await post(
        `mutation($id: ID!) { revokeServiceToken(input: { serviceTokenId: $id }) { __typename } }`,
        { id },
        tokens.MANAGER_THIS,
        'revoke-two-process',
      );
      expect(revoke.body.data.revokeServiceToken.__typename).toBe('RevokeServiceTokenPayload');
      // The first request after the revocation committed, on each process: refused.
      const refused = await viewerOn(second.url, token);
      expect(refused.status).toBe(401);
      expect(refused.body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
      expect((await viewerOn(h.url, token)).status).toBe(401);
      // A token issued (and revoked) through the second process behaves the same on the first.
      const other = await issueServiceToken(h, ids.project, 'control-app');
      expect((await viewerOn(second.url, other.token)).status).toBe(200);
      const res = await fetch(`${second.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${h.adminToken}` },
        body: JSON.stringify({ query: `mutation($id: ID!) { revokeServiceToken(input: { serviceTokenId: $id }) { __typename } }`, variables: { id: other.id } }),
      });
      expect(((await res.json()) as any).data.revokeServiceToken.__typename).toBe('RevokeServiceTokenPayload');
      expect((await viewerOn(h.url, other.token)).status).toBe(401);
    });
  });
});

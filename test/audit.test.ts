// The audit trail (docs/architecture.md, Identity and roles): every mutation that changes something writes exactly one event, in the same
// transaction, naming who (subject, role, token id), what, on what, before and after, when, and the request;
// a refused mutation writes none; secrets never appear; the table refuses UPDATE, DELETE and TRUNCATE.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { startHarness, type Harness } from './support/harness.js';
import { TIER_5K, avatarRequest, createUnit, mustMutate } from './support/fixtures.js';
import { queryRows } from '../src/db/client.js';
import { schema } from '../src/graphql/schema.js';
import { admitJob } from '../src/jobs/admission.js';
import { auditPayload, REDACTED } from '../src/audit/audit.js';
import type { Actor } from '../src/auth/actor.js';

const SECRET_KEY = 'sk_live_audit_SECRET_0123456789';
const ROTATED_KEY = 'sk_live_rotated_SECRET_999999';
const WEBHOOK_SECRET = 'whsec_audit_SECRET_abcdef';
const PERIOD_NOW = new Date().toISOString().slice(0, 7);

let h: Harness;
const o = {} as { account: string; org: string; team: string; project: string };
const callers = {} as Record<'admin' | 'finance' | 'manager' | 'member' | 'service', { token: string; subject: string; role: string; jti: string }>;
/** Everything that must never reach the audit trail. */
const secrets: string[] = [SECRET_KEY, ROTATED_KEY, WEBHOOK_SECRET];

const rawId = (globalId: string) => decodeGlobalID(globalId).id;
const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { sub: string; jti: string; role: string };

interface AuditRow {
  id: string;
  actor_subject: string;
  actor_role: string;
  actor_token_id: string | null;
  request_id: string | null;
  action: string;
  entity_type: string;
  entity_id: string;
  before: any;
  after: any;
  created_at: string;
}

async function auditRows(requestId: string): Promise<AuditRow[]> {
  return queryRows<AuditRow>(h.services.db, sql`select * from audit_events where request_id = ${requestId} order by id`);
}

async function mutate(field: string, inputType: string, input: Record<string, unknown>, caller: keyof typeof callers, select = '') {
  const requestId = `audit-${field}-${randomUUID()}`;
  const res = await fetch(`${h.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${callers[caller].token}`, 'x-request-id': requestId },
    body: JSON.stringify({
      query: `mutation($input: ${inputType}!) { ${field}(input: $input) { __typename ${select} ... on Error { message code } } }`,
      variables: { input },
    }),
  });
  const body = (await res.json()) as any;
  expect(body.errors, field).toBeUndefined();
  return { payload: body.data[field], requestId };
}

async function reservedJob(): Promise<string> {
  const admin: Actor = { subject: 'admin:fixture', role: 'ADMIN', unitId: null, unitPath: [], tokenId: null };
  const { job } = await admitJob(
    h.services.db,
    admin,
    { projectId: rawId(o.project), kind: 'AVATAR_VIDEO', request: avatarRequest(), estimatedSeconds: null, idempotencyKey: null },
    h.services.admission,
  );
  return encodeGlobalID('Job', job.id);
}

beforeAll(async () => {
  h = await startHarness({ workers: false, env: { RATE_LIMIT_PER_MINUTE: '0' } });
  const account = await mustMutate(
    h,
    `mutation($input: CreateAccountInput!) { createAccount(input: $input) { __typename ... on CreateAccountPayload { account { id } } ... on Error { message } } }`,
    { input: { name: 'Working', billingModel: 'USAGE_BASED', usageBased: TIER_5K, apiKey: 'sk_test_primary_key_0001', baseUrl: h.sim.url, effectiveFrom: '2020-01' } },
    'createAccount',
  );
  o.account = account.account.id;
  o.org = await createUnit(h, 'ORGANIZATION', 'Acme', null, o.account);
  o.team = await createUnit(h, 'TEAM', 'Video', o.org);
  o.project = await createUnit(h, 'PROJECT', 'Onboarding', o.team);
  const issue = h.services.tokens.issueOperatorToken;
  const service = await mustMutate(
    h,
    `mutation($input: IssueServiceTokenInput!) { issueServiceToken(input: $input) { __typename ... on IssueServiceTokenPayload { token } ... on Error { message } } }`,
    { input: { orgUnitId: o.project, name: 'caller' } },
    'issueServiceToken',
  );
  const tokens = {
    admin: h.adminToken,
    finance: await issue({ name: 'fiona', role: 'FINANCE' }),
    manager: await issue({ name: 'maya', role: 'MANAGER', unitId: rawId(o.team) }),
    member: await issue({ name: 'mel', role: 'MEMBER', unitId: rawId(o.team) }),
    service: service.token as string,
  };
  for (const [name, token] of Object.entries(tokens)) {
    const c = claimsOf(token);
    callers[name as keyof typeof callers] = { token, subject: c.sub, role: c.role, jti: c.jti };
  }
  secrets.push(...Object.values(tokens));
});
afterAll(async () => h?.close());

describe('every mutation writes exactly one audit event, with the caller and the request', () => {
  /** State passed from one mutation to the next. */
  const s = {} as Record<string, string>;
  type Step = {
    field: string;
    inputType: string;
    caller: keyof typeof callers;
    input: () => Promise<Record<string, unknown>> | Record<string, unknown>;
    select: string;
    action: string;
    /** The entity the event names (a global id), read from the payload. */
    entity: (payload: any) => string;
    check?: (row: AuditRow, payload: any) => void;
  };
  const STEPS: Step[] = [
    {
      field: 'createAccount',
      inputType: 'CreateAccountInput',
      caller: 'admin',
      input: () => ({ name: 'Secret-bearing', billingModel: 'USAGE_BASED', usageBased: TIER_5K, apiKey: SECRET_KEY, webhookSecret: WEBHOOK_SECRET, baseUrl: h.sim.url }),
      select: '... on CreateAccountPayload { account { id } }',
      action: 'account.create',
      entity: (p) => (s.secretAccount = p.account.id),
      check: (row) => {
        expect(row.before).toBeNull();
        expect(row.after).toMatchObject({ name: 'Secret-bearing', apiKeyHint: '…6789', webhookSecretHint: '…cdef' });
      },
    },
    {
      field: 'createOrgUnit',
      inputType: 'CreateOrgUnitInput',
      caller: 'manager',
      input: () => ({ parentId: o.team, kind: 'PROJECT', name: 'Audited' }),
      select: '... on CreateOrgUnitPayload { orgUnit { id } }',
      action: 'orgUnit.create',
      entity: (p) => (s.unit = p.orgUnit.id),
      check: (row) => expect(row.after).toMatchObject({ name: 'Audited', kind: 'PROJECT', parentId: rawId(o.team) }),
    },
    {
      field: 'setBudget',
      inputType: 'SetBudgetInput',
      caller: 'manager',
      input: () => ({ orgUnitId: s.unit, accountId: o.account, window: 'MONTHLY', limitCreditSeconds: '1000' }),
      select: '... on SetBudgetPayload { budget { id } }',
      action: 'budget.set',
      entity: (p) => (s.budget = p.budget.id),
      check: (row) => {
        expect(row.before).toBeNull();
        expect(row.after).toMatchObject({ limitMicroCs: '1000000000', enforcement: 'HARD' });
      },
    },
    {
      field: 'setBudget',
      inputType: 'SetBudgetInput',
      caller: 'finance',
      input: () => ({ orgUnitId: s.unit, accountId: o.account, window: 'MONTHLY', limitCreditSeconds: '2500', enforcement: 'SOFT' }),
      select: '... on SetBudgetPayload { budget { id } }',
      action: 'budget.set',
      entity: (p) => p.budget.id,
      check: (row, p) => {
        expect(p.budget.id).toBe(s.budget);
        expect(row.before).toMatchObject({ limitMicroCs: '1000000000', enforcement: 'HARD' });
        expect(row.after).toMatchObject({ limitMicroCs: '2500000000', enforcement: 'SOFT' });
      },
    },
    {
      field: 'setTagKeys',
      inputType: 'SetTagKeysInput',
      caller: 'finance',
      input: () => ({ keys: ['client', 'campaign'] }),
      select: '... on SetTagKeysPayload { keys }',
      action: 'tagKeys.set',
      entity: () => o.org,
      check: (row) => {
        expect(row.before).toEqual({ keys: [] });
        expect(row.after).toEqual({ keys: ['campaign', 'client'] });
      },
    },
    {
      field: 'setGroupBudget',
      inputType: 'SetGroupBudgetInput',
      caller: 'manager',
      input: () => ({ orgUnitId: s.unit, accountId: o.account, window: 'MONTHLY', tagKey: 'campaign', tagValue: 'spring', limitCreditSeconds: '500' }),
      select: '... on SetGroupBudgetPayload { budget { id } }',
      action: 'groupBudget.set',
      entity: (p) => p.budget.id,
      check: (row) => {
        expect(row.before).toBeNull();
        expect(row.after).toMatchObject({ tagKey: 'campaign', tagValue: 'spring', limitMicroCs: '500000000' });
      },
    },
    {
      field: 'setUnitPolicy',
      inputType: 'SetUnitPolicyInput',
      caller: 'manager',
      input: () => ({ orgUnitId: s.unit, maxLengthSeconds: 3600, jobsPerMinute: 30 }),
      select: '... on SetUnitPolicyPayload { orgUnit { id } }',
      action: 'unitPolicy.set',
      entity: (p) => p.orgUnit.id,
      check: (row) => {
        expect(row.before).toBeNull();
        expect(row.after).toMatchObject({ maxLengthSeconds: 3600, jobsPerMinute: 30 });
      },
    },
    {
      field: 'clearUnitPolicy',
      inputType: 'ClearUnitPolicyInput',
      caller: 'finance',
      input: () => ({ orgUnitId: s.unit }),
      select: '... on ClearUnitPolicyPayload { orgUnit { id } }',
      action: 'unitPolicy.clear',
      entity: (p) => p.orgUnit.id,
      check: (row) => {
        expect(row.before).toMatchObject({ maxLengthSeconds: 3600 });
        expect(row.after).toBeNull();
      },
    },
    {
      field: 'issueServiceToken',
      inputType: 'IssueServiceTokenInput',
      caller: 'manager',
      input: () => ({ orgUnitId: o.project, name: 'audited-app' }),
      select: '... on IssueServiceTokenPayload { token callbackSigningSecret serviceToken { id } }',
      action: 'serviceToken.issue',
      entity: (p) => {
        secrets.push(p.token, p.callbackSigningSecret);
        return (s.token = p.serviceToken.id);
      },
      check: (row) => expect(row.after).toMatchObject({ name: 'audited-app', revokedAt: null }),
    },
    {
      field: 'rotateCallbackSecret',
      inputType: 'RotateCallbackSecretInput',
      caller: 'manager',
      input: () => ({ serviceTokenId: s.token }),
      select: '... on RotateCallbackSecretPayload { callbackSigningSecret serviceToken { id } }',
      action: 'serviceToken.rotateCallbackSecret',
      entity: (p) => {
        secrets.push(p.callbackSigningSecret);
        return p.serviceToken.id;
      },
      check: (row) => {
        expect(typeof row.before.callbackSecretRotatedAt).toBe('string');
        expect(row.after.callbackSecretRotatedAt > row.before.callbackSecretRotatedAt).toBe(true);
      },
    },
    {
      field: 'setServiceTokenRateLimit',
      inputType: 'SetServiceTokenRateLimitInput',
      caller: 'manager',
      input: () => ({ serviceTokenId: s.token, jobsPerMinute: 30 }),
      select: '... on SetServiceTokenRateLimitPayload { serviceToken { id } }',
      action: 'serviceToken.rateLimit',
      entity: (p) => p.serviceToken.id,
      check: (row) => {
        expect(row.before).toBeNull();
        expect(row.after).toMatchObject({ jobsPerMinute: 30 });
      },
    },
    {
      field: 'revokeServiceToken',
      inputType: 'RevokeServiceTokenInput',
      caller: 'manager',
      input: () => ({ serviceTokenId: s.token }),
      select: '... on RevokeServiceTokenPayload { serviceToken { id } }',
      action: 'serviceToken.revoke',
      entity: (p) => p.serviceToken.id,
      check: (row) => {
        expect(row.before.revokedAt).toBeNull();
        expect(typeof row.after.revokedAt).toBe('string');
      },
    },
    {
      field: 'submitJob',
      inputType: 'SubmitJobInput',
      caller: 'service',
      input: () => ({ projectId: o.project, kind: 'AVATAR_VIDEO', request: avatarRequest(), idempotencyKey: 'audited-1' }),
      select: '... on SubmitJobPayload { job { id } }',
      action: 'job.submit',
      entity: (p) => (s.job = p.job.id),
      check: (row) => expect(row.after).toMatchObject({ status: 'RESERVED', estimatedMicroCs: '52800000', idempotencyKey: 'audited-1' }),
    },
    {
      field: 'cancelJob',
      inputType: 'CancelJobInput',
      caller: 'member',
      input: async () => ({ jobId: (s.reserved = await reservedJob()) }),
      select: '... on CancelJobPayload { job { id status } }',
      action: 'job.cancel',
      entity: (p) => p.job.id,
      check: (row, p) => {
        expect(p.job.status).toBe('CANCELLED');
        expect(row.before).toMatchObject({ status: 'RESERVED', reservedMicroCs: '52800000' });
        expect(row.after).toMatchObject({ status: 'CANCELLED', reservedMicroCs: '0', releasedMicroCs: '52800000' });
      },
    },
    {
      field: 'setAccountTerms',
      inputType: 'SetAccountTermsInput',
      caller: 'finance',
      input: () => ({ accountId: o.account, effectiveFrom: PERIOD_NOW, preset: 'MMC_20000', timezone: 'Europe/Paris' }),
      select: '... on SetAccountTermsPayload { account { id } }',
      action: 'account.terms.set',
      entity: (p) => p.account.id,
      // The time zone moved in the same change: still one event.
      check: (row) => expect([row.before.timezone, row.after.timezone, row.after.preset]).toEqual(['UTC', 'Europe/Paris', 'MMC_20000']),
    },
    {
      field: 'setCommittedShares',
      inputType: 'SetCommittedSharesInput',
      caller: 'finance',
      input: () => ({ accountId: o.account, effectiveFrom: PERIOD_NOW, shares: [{ orgUnitId: o.team, share: '1' }] }),
      select: '... on SetCommittedSharesPayload { account { id } }',
      action: 'account.committed_shares.set',
      entity: (p) => p.account.id,
    },
    {
      field: 'setConcurrencyShares',
      inputType: 'SetConcurrencySharesInput',
      caller: 'finance',
      input: () => ({ accountId: o.account, shares: [{ orgUnitId: o.team, weight: 2, minSlots: 1 }] }),
      select: '... on SetConcurrencySharesPayload { account { id } }',
      action: 'account.concurrency_shares.set',
      entity: (p) => p.account.id,
      check: (row) => expect(row.after.shares).toEqual([{ orgUnitId: rawId(o.team), weight: 2, minSlots: 1, maxSlots: null }]),
    },
    {
      field: 'recordUsageAdjustment',
      inputType: 'RecordUsageAdjustmentInput',
      caller: 'finance',
      input: () => ({ orgUnitId: o.project, accountId: o.account, period: PERIOD_NOW, creditSeconds: '10', reason: 'import' }),
      select: '... on RecordUsageAdjustmentPayload { adjustment { id } }',
      action: 'billing.usage.adjust',
      entity: (p) => p.adjustment.id,
    },
    {
      field: 'closePeriod',
      inputType: 'ClosePeriodInput',
      caller: 'finance',
      input: () => ({ accountId: o.account, period: '2021-03' }),
      select: '... on ClosePeriodPayload { report { closed } }',
      action: 'billing.period.close',
      entity: () => o.account,
    },
    {
      field: 'syncWallet',
      inputType: 'SyncWalletInput',
      caller: 'admin',
      input: () => ({ accountId: o.account }),
      select: '... on SyncWalletPayload { account { id } }',
      action: 'account.syncWallet',
      entity: (p) => p.account.id,
    },
    {
      field: 'rotateAccountApiKey',
      inputType: 'RotateAccountApiKeyInput',
      caller: 'admin',
      input: () => ({ accountId: s.secretAccount, apiKey: ROTATED_KEY }),
      select: '... on RotateAccountApiKeyPayload { account { id } }',
      action: 'account.rotateApiKey',
      entity: (p) => p.account.id,
      check: (row) => expect([row.before.apiKeyHint, row.after.apiKeyHint]).toEqual(['…6789', '…9999']),
    },
    {
      field: 'createNotificationChannel',
      inputType: 'CreateNotificationChannelInput',
      caller: 'manager',
      input: () => ({ orgUnitId: o.team, kind: 'SLACK', name: 'audited slack', config: { url: 'https://hooks.example.com/services/T0SECRETPATH/B0/audited' } }),
      select: '... on NotificationChannelPayload { signingSecret channel { id } }',
      action: 'notificationChannel.create',
      entity: (p) => {
        secrets.push('T0SECRETPATH');
        return (s.channel = p.channel.id);
      },
      check: (row) => expect(row.after).toMatchObject({ kind: 'SLACK', name: 'audited slack', display: expect.stringMatching(/^Slack webhook at /), enabled: true }),
    },
    {
      field: 'updateNotificationChannel',
      inputType: 'UpdateNotificationChannelInput',
      caller: 'manager',
      input: () => ({ id: s.channel, enabled: false }),
      select: '... on NotificationChannelPayload { channel { id } }',
      action: 'notificationChannel.update',
      entity: (p) => p.channel.id,
      check: (row) => {
        expect(row.before).toMatchObject({ enabled: true });
        expect(row.after).toMatchObject({ enabled: false });
      },
    },
    {
      field: 'createNotificationRule',
      inputType: 'CreateNotificationRuleInput',
      caller: 'manager',
      input: () => ({ orgUnitId: o.team, channelId: s.channel, eventKinds: ['BUDGET_THRESHOLD_CROSSED'] }),
      select: '... on CreateNotificationRulePayload { rule { id } }',
      action: 'notificationRule.create',
      entity: (p) => (s.rule = p.rule.id),
      check: (row) => expect(row.after).toMatchObject({ orgUnitId: rawId(o.team), eventKinds: ['budget.threshold_crossed'] }),
    },
    {
      field: 'deleteNotificationRule',
      inputType: 'DeleteNotificationRuleInput',
      caller: 'manager',
      input: () => ({ id: s.rule }),
      select: '... on DeleteNotificationRulePayload { deletedId }',
      action: 'notificationRule.delete',
      entity: (p) => p.deletedId,
    },
    {
      field: 'deleteNotificationChannel',
      inputType: 'DeleteNotificationChannelInput',
      caller: 'manager',
      input: () => ({ id: s.channel }),
      select: '... on DeleteNotificationChannelPayload { deletedId }',
      action: 'notificationChannel.delete',
      entity: (p) => p.deletedId,
    },
    {
      field: 'requestBudgetIncrease',
      inputType: 'RequestBudgetIncreaseInput',
      caller: 'member',
      input: () => ({ budgetId: s.budget, amountCreditSeconds: '100', reason: 'audited raise' }),
      select: '... on RequestBudgetIncreasePayload { request { id } }',
      action: 'budgetRequest.create',
      entity: (p) => (s.request = p.request.id),
      check: (row) => {
        expect(row.before).toBeNull();
        expect(row.after).toMatchObject({ amountMicroCs: '100000000', status: 'PENDING', reason: 'audited raise', requestedBySubject: callers.member.subject });
      },
    },
    {
      field: 'approveBudgetRequest',
      inputType: 'ApproveBudgetRequestInput',
      caller: 'manager',
      input: () => ({ requestId: s.request, note: 'granted' }),
      select: '... on BudgetRequestDecisionPayload { request { id } }',
      action: 'budgetRequest.approve',
      entity: (p) => p.request.id,
      check: (row) => {
        // The budget's change is in the same event: before and after.
        expect(row.before).toMatchObject({ request: { status: 'PENDING' }, budget: { limitMicroCs: '2500000000' } });
        expect(row.after).toMatchObject({ request: { status: 'APPROVED', decisionNote: 'granted' }, budget: { limitMicroCs: '2600000000' }, grant: null });
      },
    },
    {
      field: 'requestBudgetIncrease',
      inputType: 'RequestBudgetIncreaseInput',
      caller: 'member',
      input: () => ({ budgetId: s.budget, amountCreditSeconds: '5', until: new Date(Date.now() + 3_600_000).toISOString(), reason: 'for a day' }),
      select: '... on RequestBudgetIncreasePayload { request { id } }',
      action: 'budgetRequest.create',
      entity: (p) => (s.request = p.request.id),
    },
    {
      field: 'rejectBudgetRequest',
      inputType: 'RejectBudgetRequestInput',
      caller: 'finance',
      input: () => ({ requestId: s.request }),
      select: '... on BudgetRequestDecisionPayload { request { id } }',
      action: 'budgetRequest.reject',
      entity: (p) => p.request.id,
      check: (row) => expect(row.after).toMatchObject({ request: { status: 'REJECTED' }, budget: { limitMicroCs: '2600000000' }, grant: null }),
    },
    {
      field: 'transferBudget',
      inputType: 'TransferBudgetInput',
      caller: 'finance',
      input: async () => {
        const sibling = await mustMutate(
          h,
          `mutation($input: SetBudgetInput!) { setBudget(input: $input) { __typename ... on SetBudgetPayload { budget { id } } ... on Error { message } } }`,
          // SOFT: the project's jobs below are not to be refused by it.
          { input: { orgUnitId: o.project, accountId: o.account, window: 'MONTHLY', limitCreditSeconds: '10', enforcement: 'SOFT' } },
          'setBudget',
        );
        return { fromBudgetId: s.budget, toBudgetId: sibling.budget.id, amountCreditSeconds: '100', reason: 'audited move' };
      },
      select: '... on TransferBudgetPayload { from { id } }',
      action: 'budget.transfer',
      entity: (p) => p.from.id,
      check: (row) => {
        expect(row.before).toMatchObject({ from: { limitMicroCs: '2600000000' }, to: { limitMicroCs: '10000000' }, amountMicroCs: '100000000', reason: 'audited move' });
        expect(row.after).toMatchObject({ from: { limitMicroCs: '2500000000' }, to: { limitMicroCs: '110000000' } });
      },
    },
    {
      field: 'createRoleMapping',
      inputType: 'CreateRoleMappingInput',
      caller: 'admin',
      input: () => ({ claim: 'groups', value: 'finance-team', role: 'FINANCE' }),
      select: '... on CreateRoleMappingPayload { roleMapping { id } }',
      action: 'roleMapping.create',
      entity: (p) => (s.mapping = p.roleMapping.id),
    },
    {
      field: 'deleteRoleMapping',
      inputType: 'DeleteRoleMappingInput',
      caller: 'admin',
      input: () => ({ roleMappingId: s.mapping }),
      select: '... on DeleteRoleMappingPayload { roleMappingId }',
      action: 'roleMapping.delete',
      entity: (p) => p.roleMappingId,
    },
  ];

  it('the suite covers every mutation of the schema', () => {
    expect([...new Set(STEPS.map((step) => step.field))].sort()).toEqual(Object.keys(schema.getMutationType()!.getFields()).sort());
  });

  it.each(STEPS.map((step, i) => [`${step.field} by ${step.caller}`, i] as const))('%s', async (_name, i) => {
    const step = STEPS[i]!;
    const started = Date.now();
    const { payload, requestId } = await mutate(step.field, step.inputType, await step.input(), step.caller, step.select);
    expect(payload.__typename, JSON.stringify(payload)).toMatch(/Payload$/);
    const rows = await auditRows(requestId);
    expect(rows).toHaveLength(1);
    const row = rows[0]!;
    const caller = callers[step.caller];
    const entity = decodeGlobalID(step.entity(payload));
    expect({
      subject: row.actor_subject,
      role: row.actor_role,
      tokenId: row.actor_token_id,
      requestId: row.request_id,
      action: row.action,
      entityType: row.entity_type,
      entityId: row.entity_id,
    }).toEqual({
      subject: caller.subject,
      role: caller.role,
      tokenId: caller.jti,
      requestId,
      action: step.action,
      entityType: entity.typename,
      entityId: entity.id,
    });
    // When: inside the request (the database clock and ours are the same machine's; a second of slack).
    expect(Date.parse(row.created_at)).toBeGreaterThanOrEqual(started - 1000);
    expect(Date.parse(row.created_at)).toBeLessThanOrEqual(Date.now() + 1000);
    step.check?.(row, payload);
  });
});

describe('refused and no-op mutations write nothing', () => {
  it('typed errors (forbidden, not found, validation, budget, idempotency conflict) and replays leave no event', async () => {
    const budget = await mustMutate(
      h,
      `mutation($input: SetBudgetInput!) { setBudget(input: $input) { __typename ... on SetBudgetPayload { budget { id } } ... on Error { message } } }`,
      // Room for three holds of 52.8 cs (one already open), not for a 400-word script.
      { input: { orgUnitId: o.project, accountId: o.account, window: 'LIFETIME', limitCreditSeconds: '200' } },
      'setBudget',
    );
    expect(budget.budget.id).toBeTruthy();
    const first = await mutate('submitJob', 'SubmitJobInput', { projectId: o.project, kind: 'AVATAR_VIDEO', request: avatarRequest(), idempotencyKey: 'once' }, 'member', '... on SubmitJobPayload { job { id } }');
    expect(first.payload.__typename).toBe('SubmitJobPayload');
    expect(await auditRows(first.requestId)).toHaveLength(1);

    const refused: [field: string, type: string, input: Record<string, unknown>, caller: keyof typeof callers, typename: string][] = [
      ['setBudget', 'SetBudgetInput', { orgUnitId: o.project, window: 'MONTHLY', limitCreditSeconds: '1' }, 'member', 'ForbiddenError'],
      ['setBudget', 'SetBudgetInput', { orgUnitId: o.team, window: 'MONTHLY', limitCreditSeconds: '1' }, 'manager', 'ForbiddenError'],
      ['setBudget', 'SetBudgetInput', { orgUnitId: o.project, window: 'MONTHLY', limitCreditSeconds: '1', limitUsd: '1' }, 'finance', 'ValidationError'],
      ['createAccount', 'CreateAccountInput', { name: 'Nope', billingModel: 'USAGE_BASED', usageBased: TIER_5K, apiKey: 'sk_test_refused_0000' }, 'finance', 'ForbiddenError'],
      ['createOrgUnit', 'CreateOrgUnitInput', { parentId: o.team, kind: 'PROJECT', name: 'Onboarding' }, 'manager', 'ValidationError'],
      ['createOrgUnit', 'CreateOrgUnitInput', { parentId: encodeGlobalID('OrgUnit', randomUUID()), kind: 'PROJECT', name: 'Ghost' }, 'admin', 'NotFoundError'],
      ['issueServiceToken', 'IssueServiceTokenInput', { orgUnitId: o.team, name: 'team-token' }, 'manager', 'ValidationError'],
      ['submitJob', 'SubmitJobInput', { projectId: o.project, kind: 'AVATAR_VIDEO', request: avatarRequest(`${'word '.repeat(400)}`) }, 'member', 'BudgetExceededError'],
      ['submitJob', 'SubmitJobInput', { projectId: o.project, kind: 'AVATAR_VIDEO', request: avatarRequest('other words'), idempotencyKey: 'once' }, 'member', 'IdempotencyConflictError'],
      ['submitJob', 'SubmitJobInput', { projectId: o.project, kind: 'AVATAR_VIDEO', request: avatarRequest() }, 'finance', 'ForbiddenError'],
      ['cancelJob', 'CancelJobInput', { jobId: first.payload.job.id }, 'member', 'ValidationError'],
      ['closePeriod', 'ClosePeriodInput', { accountId: o.account, period: '2099-01' }, 'finance', 'ValidationError'],
      ['recordUsageAdjustment', 'RecordUsageAdjustmentInput', { orgUnitId: o.project, accountId: o.account, period: PERIOD_NOW, creditSeconds: '1', reason: 'x' }, 'manager', 'ForbiddenError'],
      ['deleteRoleMapping', 'DeleteRoleMappingInput', { roleMappingId: encodeGlobalID('RoleMapping', randomUUID()) }, 'admin', 'NotFoundError'],
      ['requestBudgetIncrease', 'RequestBudgetIncreaseInput', { budgetId: budget.budget.id, amountCreditSeconds: '0', reason: 'x' }, 'member', 'ValidationError'],
      ['requestBudgetIncrease', 'RequestBudgetIncreaseInput', { budgetId: budget.budget.id, amountCreditSeconds: '1', reason: 'x' }, 'finance', 'ForbiddenError'],
      ['transferBudget', 'TransferBudgetInput', { fromBudgetId: budget.budget.id, toBudgetId: budget.budget.id, amountCreditSeconds: '1', reason: 'x' }, 'admin', 'ValidationError'],
      ['approveBudgetRequest', 'ApproveBudgetRequestInput', { requestId: encodeGlobalID('BudgetRequest', randomUUID()) }, 'admin', 'NotFoundError'],
    ];
    for (const [field, type, input, caller, typename] of refused) {
      const r = await mutate(field, type, input, caller);
      expect(r.payload.__typename, `${field} by ${caller}: ${JSON.stringify(r.payload)}`).toBe(typename);
      expect(await auditRows(r.requestId), `${field} by ${caller}`).toEqual([]);
    }

    // A replay of an idempotency key, a second revocation, a second cancellation: nothing changes, nothing is written.
    const replay = await mutate('submitJob', 'SubmitJobInput', { projectId: o.project, kind: 'AVATAR_VIDEO', request: avatarRequest(), idempotencyKey: 'once' }, 'member', '... on SubmitJobPayload { replayed }');
    expect(replay.payload).toEqual({ __typename: 'SubmitJobPayload', replayed: true });
    expect(await auditRows(replay.requestId)).toEqual([]);
    const jobId = await reservedJob();
    const cancel = await mutate('cancelJob', 'CancelJobInput', { jobId }, 'member');
    expect(await auditRows(cancel.requestId)).toHaveLength(1);
    const again = await mutate('cancelJob', 'CancelJobInput', { jobId }, 'member');
    expect(again.payload.__typename).toBe('CancelJobPayload');
    expect(await auditRows(again.requestId)).toEqual([]);
  });
});

describe('the audit table is append-only, in the database itself', () => {
  it('UPDATE, DELETE and TRUNCATE of audit_events fail, and the row is unchanged', async () => {
    const [row] = await queryRows<{ id: string; action: string }>(h.services.db, sql`select id::text, action from audit_events order by id limit 1`);
    /** The database's own refusal (drizzle wraps the driver's error as its cause). */
    const refusal = async (statement: ReturnType<typeof sql>) => {
      const error = await h.services.db.execute(statement).then(
        () => null,
        (e: any) => e,
      );
      expect(error, 'the statement must fail').not.toBeNull();
      return `${error.cause?.message ?? error.message}`;
    };
    expect(await refusal(sql`update audit_events set action = 'forged' where id = ${row!.id}::bigint`)).toMatch(/audit_events is append-only \(UPDATE refused\)/);
    expect(await refusal(sql`update audit_events set after = '{}'::jsonb`)).toMatch(/append-only \(UPDATE refused\)/);
    expect(await refusal(sql`delete from audit_events where id = ${row!.id}::bigint`)).toMatch(/append-only \(DELETE refused\)/);
    expect(await refusal(sql`truncate audit_events`)).toMatch(/append-only \(TRUNCATE refused\)/);
    const [still] = await queryRows<{ action: string }>(h.services.db, sql`select action from audit_events where id = ${row!.id}::bigint`);
    expect(still!.action).toBe(row!.action);
  });
});

describe('secrets never reach the audit trail', () => {
  it('no API key, webhook secret, ciphertext or bearer token appears in any audit row', async () => {
    const dump = await queryRows<{ t: string }>(h.services.db, sql`select row_to_json(a)::text as t from audit_events a`);
    expect(dump.length).toBeGreaterThan(20);
    const ciphertexts = await queryRows<{ k: string; w: string | null }>(h.services.db, sql`select api_key_ciphertext as k, webhook_secret_ciphertext as w from accounts`);
    const forbidden = [...secrets, ...secrets.filter((x) => x.split('.').length === 3).map((t) => t.split('.')[2]!), ...ciphertexts.flatMap((c) => [c.k, c.w ?? ''].filter(Boolean))];
    expect(forbidden.length).toBeGreaterThan(8);
    for (const { t } of dump) for (const secret of forbidden) expect(t).not.toContain(secret);
  });

  it('a payload that carries secret-named fields anyway is redacted by recordAudit itself', () => {
    expect(
      auditPayload({
        apiKey: 'sk_live_x',
        apiKeyHint: '…abcd',
        limitMicroCs: 5n,
        nested: { webhookSecret: 'whsec', apiKeyCiphertext: 'v1.x', token: 'eyJ', privateKey: 'k', name: 'kept' },
        list: [{ webhook_secret_ciphertext: 'c' }],
      }),
    ).toEqual({
      apiKey: REDACTED,
      apiKeyHint: '…abcd',
      limitMicroCs: '5',
      nested: { webhookSecret: REDACTED, apiKeyCiphertext: REDACTED, token: REDACTED, privateKey: REDACTED, name: 'kept' },
      list: [{ webhook_secret_ciphertext: REDACTED }],
    });
  });
});

describe('auditEvents', () => {
  const FIELDS = `id actorSubject actorRole actorTokenId requestId action entityType entityId before after createdAt`;
  const TYPES: Record<string, string> = { after: 'String', before: 'String', filter: 'AuditEventFilter' };
  const list = async (args: string, variables: Record<string, unknown> = {}, token = callers.finance.token) => {
    const declared = Object.keys(TYPES).filter((v) => args.includes(`$${v}`)).map((v) => `$${v}: ${TYPES[v]}`);
    return h.gql(
      `query${declared.length ? `(${declared.join(', ')})` : ''} { auditEvents(${args}) { edges { cursor node { ${FIELDS} } } pageInfo { hasNextPage hasPreviousPage endCursor } } }`,
      variables,
      token,
    );
  };

  it('newest first, by (createdAt, id); pages by cursor without gaps or repeats', async () => {
    const all = await list('first: 100');
    expect(all.errors).toBeUndefined();
    const ids = all.data.auditEvents.edges.map((e: any) => e.node.id);
    const db = await queryRows<{ id: string }>(h.services.db, sql`select id::text from audit_events order by created_at desc, id desc`);
    expect(ids).toEqual(db.map((r) => encodeGlobalID('AuditEvent', r.id)));
    expect(all.data.auditEvents.pageInfo.hasNextPage).toBe(false);

    const paged: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page: any = await list('first: 7, after: $after', { after });
      paged.push(...page.data.auditEvents.edges.map((e: any) => e.node.id));
      if (!page.data.auditEvents.pageInfo.hasNextPage) break;
      after = page.data.auditEvents.pageInfo.endCursor;
    }
    expect(paged).toEqual(ids);
    // Backwards from the fifth event: the four newer ones.
    const fifth = all.data.auditEvents.edges[4].cursor;
    const back = await list('last: 4, before: $before', { before: fifth });
    expect(back.data.auditEvents.edges.map((e: any) => e.node.id)).toEqual(ids.slice(0, 4));
    const bad = await list('first: 1, after: $after', { after: 'not-a-cursor' });
    expect(bad.errors![0].extensions.code).toBe('VALIDATION_FAILED');
  });

  it('filters by actor, action, entity type, entity and time', async () => {
    const all = (await list('first: 100')).data.auditEvents.edges.map((e: any) => e.node);
    const expectFilter = async (filter: Record<string, unknown>, predicate: (n: any) => boolean) => {
      const r = await list('first: 100, filter: $filter', { filter });
      expect(r.errors).toBeUndefined();
      const got = r.data.auditEvents.edges.map((e: any) => e.node.id);
      const expected = all.filter(predicate).map((n: any) => n.id);
      expect(expected.length, JSON.stringify(filter)).toBeGreaterThan(0);
      expect(got).toEqual(expected);
    };
    await expectFilter({ actorSubject: callers.manager.subject }, (n) => n.actorSubject === callers.manager.subject);
    await expectFilter({ action: 'budget.set' }, (n) => n.action === 'budget.set');
    await expectFilter({ entityType: 'Job' }, (n) => n.entityType === 'Job');
    const budgetId = all.find((n: any) => n.action === 'budget.set' && n.actorSubject === callers.finance.subject).entityId;
    await expectFilter({ entityId: budgetId }, (n) => n.entityId === budgetId);
    await expectFilter({ entityId: budgetId, actorSubject: callers.finance.subject }, (n) => n.entityId === budgetId && n.actorSubject === callers.finance.subject);
    const middle = all[Math.floor(all.length / 2)].createdAt;
    await expectFilter({ from: middle }, (n) => Date.parse(n.createdAt) >= Date.parse(middle));
    await expectFilter({ to: middle }, (n) => Date.parse(n.createdAt) < Date.parse(middle));
    const none = await list('first: 5, filter: $filter', { filter: { entityId: encodeGlobalID('Budget', randomUUID()) } });
    expect(none.data.auditEvents.edges).toEqual([]);
  });

  it('an event reads as who, what, on what, before and after', async () => {
    const r = await list('first: 1, filter: $filter', { filter: { action: 'serviceToken.revoke' } });
    const node = r.data.auditEvents.edges[0].node;
    expect(node).toMatchObject({ actorSubject: callers.manager.subject, actorRole: 'MANAGER', actorTokenId: callers.manager.jti, action: 'serviceToken.revoke', entityType: 'ServiceToken' });
    expect(decodeGlobalID(node.entityId).typename).toBe('ServiceToken');
    expect(node.before.revokedAt).toBeNull();
    expect(node.requestId).toMatch(/^audit-revokeServiceToken-/);
    // The same id reads the token through node (for those allowed to see it).
    const token = await h.gql(`query($id: ID!) { node(id: $id) { ... on ServiceToken { name revokedAt } } }`, { id: node.entityId }, callers.finance.token);
    expect(token.data.node.name).toBe('audited-app');
  });

  it('is for ADMIN and FINANCE only', async () => {
    for (const who of ['manager', 'member', 'service'] as const) {
      const r = await list('first: 1', {}, callers[who].token);
      expect(r.errors![0].extensions.code).toBe('FORBIDDEN');
      expect(r.data).toBeNull();
    }
    expect((await list('first: 1', {}, callers.admin.token)).errors).toBeUndefined();
  });
});

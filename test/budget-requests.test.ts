// Budget requests, approvals and transfers (docs/budgets.md, Requests and transfers), against real PostgreSQL: a
// refused app asks for more with the refusal's hint, a manager above approves once, a temporary raise ends by itself,
// transfers never leave the source below its usage, even racing admissions into it. Who may do what is in the role
// matrix (test/roles.test.ts); here: the behaviour, the audit trail and the money events.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startHarness, type Harness } from './support/harness.js';
import { avatarRequest, createTree, issueServiceToken, setBudget, SUBMIT, type Tree } from './support/fixtures.js';
import { expectCountersEqualLedger } from './support/invariants.js';
import { queryRows } from '../src/db/client.js';
import { admitJob } from '../src/jobs/admission.js';
import { budgetsWithUsage } from '../src/budgets/budgets.js';
import { decideBudgetRequest } from '../src/budgets/requests.js';
import { describeEvent, moneyEventFanOut } from '../src/notifications/delivery.js';
import { BudgetExceededError, ForbiddenError } from '../src/errors.js';
import type { Actor } from '../src/auth/actor.js';

const HOLD = 52_800_000n; // one 20-word avatar job: 52.8 cs
const raw = (globalId: string) => decodeGlobalID(globalId).id;

let h: Harness;
let tree: Tree;
const tokens = {} as Record<'svc' | 'shortsSvc' | 'member' | 'managerTeam' | 'managerDept' | 'finance' | 'finance2', string>;

const REQUEST = `mutation($input: RequestBudgetIncreaseInput!) { requestBudgetIncrease(input: $input) {
  __typename ... on RequestBudgetIncreasePayload { request { id status amountCreditSeconds until reason requestedBy requestedByRole } } ... on ValidationError { field } ... on Error { message code } } }`;
const APPROVE = `mutation($input: ApproveBudgetRequestInput!) { approveBudgetRequest(input: $input) {
  __typename ... on BudgetRequestDecisionPayload { request { id status decidedBy decisionNote } budget { id limitCreditSeconds temporaryCreditSeconds availableCreditSeconds } } ... on Error { message code } } }`;
const REJECT = `mutation($input: RejectBudgetRequestInput!) { rejectBudgetRequest(input: $input) {
  __typename ... on BudgetRequestDecisionPayload { request { id status } } ... on Error { message code } } }`;
const TRANSFER = `mutation($input: TransferBudgetInput!) { transferBudget(input: $input) {
  __typename ... on TransferBudgetPayload { from { id limitCreditSeconds } to { id limitCreditSeconds } } ... on ValidationError { message field } ... on Error { message code } } }`;
const CHANNEL = `mutation($input: CreateNotificationChannelInput!) { createNotificationChannel(input: $input) { __typename ... on NotificationChannelPayload { channel { id } } ... on Error { message } } }`;
const RULE = `mutation($input: CreateNotificationRuleInput!) { createNotificationRule(input: $input) { __typename ... on Error { message } } }`;
const BUDGET = `query($id: ID!) { node(id: $id) { ... on Budget { limitCreditSeconds temporaryCreditSeconds reservedCreditSeconds settledCreditSeconds availableCreditSeconds } } }`;

async function call(token: string, query: string, variables: Record<string, unknown>) {
  const r = await h.gql(query, variables, token);
  expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
  return r.data;
}

async function auditActions(entityId: string): Promise<{ action: string; actor_role: string }[]> {
  return queryRows(h.services.db, sql`select action, actor_role from audit_events where entity_id = ${entityId} order by id`);
}

async function moneyEvents(kind: string, requestId: string): Promise<{ org_unit_id: string; payload: any }[]> {
  return queryRows(
    h.services.db,
    sql`select org_unit_id, payload from outbox_events where topic = 'money_event' and kind = ${kind} and payload->'data'->>'requestId' = ${requestId}`,
  );
}

beforeAll(async () => {
  h = await startHarness({ workers: false });
  tree = await createTree(h, { concurrencyLimit: 200 });
  const issue = h.services.tokens.issueOperatorToken;
  tokens.svc = (await issueServiceToken(h, tree.projectId, 'onboarding-app')).token;
  tokens.shortsSvc = (await issueServiceToken(h, tree.otherProjectId, 'shorts-app')).token;
  tokens.member = await issue({ name: 'mel', role: 'MEMBER', unitId: raw(tree.teamId) });
  tokens.managerTeam = await issue({ name: 'maya', role: 'MANAGER', unitId: raw(tree.teamId) });
  tokens.managerDept = await issue({ name: 'dora', role: 'MANAGER', unitId: raw(tree.deptId) });
  tokens.finance = await issue({ name: 'fiona', role: 'FINANCE' });
  tokens.finance2 = await issue({ name: 'frank', role: 'FINANCE' });
});
afterAll(async () => h?.close());

describe('requests', () => {
  it("a refused app asks for more with the refusal's hint; a manager above approves once; the job then fits; audited and notified", async () => {
    const budget = (await setBudget(h, { orgUnitId: tree.projectId, accountId: tree.accountId, window: 'MONTHLY', limitCreditSeconds: '100' })).budget;
    const submit = () => call(tokens.svc, SUBMIT.replace('... on BudgetExceededError {', '... on BudgetExceededError { budgetId'), { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } });
    expect((await submit()).submitJob.__typename).toBe('SubmitJobPayload');
    const refused = (await submit()).submitJob;
    expect(refused.__typename).toBe('BudgetExceededError');
    expect(refused.budgetId).toBe(budget.id);
    // The message says how to ask for more: the mutation and the budget's global id.
    expect(refused.message).toContain(`ask for more with requestBudgetIncrease(budgetId: "${budget.id}")`);

    const asked = (await call(tokens.svc, REQUEST, { input: { budgetId: budget.id, amountCreditSeconds: '52.8', reason: 'the launch video needs one more render' } })).requestBudgetIncrease;
    expect(asked).toMatchObject({ __typename: 'RequestBudgetIncreasePayload', request: { status: 'PENDING', amountCreditSeconds: '52.8', until: null, requestedByRole: 'SERVICE' } });
    const requestId: string = asked.request.id;

    // Listed for the approvers above the unit and for the requester; not for a member who neither asked nor decides.
    const pending = async (token: string, mine = false) =>
      (await call(token, `query($m: Boolean) { budgetRequests(status: PENDING, mine: $m) { id } }`, { m: mine })).budgetRequests.map((r: any) => r.id);
    expect(await pending(tokens.managerTeam)).toContain(requestId);
    expect(await pending(tokens.finance)).toContain(requestId);
    expect(await pending(tokens.svc, true)).toContain(requestId);
    expect(await pending(tokens.member)).not.toContain(requestId);
    expect(await pending(tokens.managerTeam, true)).not.toContain(requestId);

    // The money event is written with the request, on the budget's unit; a rule of the approvers' department routes it.
    const [requested] = await moneyEvents('budget.increase_requested', raw(requestId));
    expect(requested!.org_unit_id).toBe(raw(tree.projectId));
    expect(requested!.payload.data).toMatchObject({ amountMicroCs: '52800000', reason: 'the launch video needs one more render', status: 'PENDING' });
    const channel = (await call(tokens.managerDept, CHANNEL, { input: { orgUnitId: tree.deptId, kind: 'WEBHOOK', name: 'approvers', config: { url: 'https://hooks.example.com/approvers' } } })).createNotificationChannel.channel.id;
    const rule = (await call(tokens.managerDept, RULE, { input: { orgUnitId: tree.deptId, channelId: channel, eventKinds: ['BUDGET_INCREASE_REQUESTED', 'BUDGET_INCREASE_DECIDED'] } })).createNotificationRule;
    expect(rule.__typename).toBe('CreateNotificationRulePayload');
    const [event] = await queryRows<{ id: string; payload: unknown }>(h.services.db, sql`select id, payload from outbox_events where topic = 'money_event' and kind = 'budget.increase_requested' and payload->'data'->>'requestId' = ${raw(requestId)}`);
    await moneyEventFanOut(h.services.db, { maxAttempts: 3 })(
      { id: event!.id, topic: 'money_event', kind: 'budget.increase_requested', payload: event!.payload, destination: {}, jobId: null, orgUnitId: raw(tree.projectId), attempt: 1, maxAttempts: 3, createdAt: new Date() },
      new Date(),
    );
    const routed = await queryRows<{ payload: any }>(h.services.db, sql`select payload from outbox_events where topic = 'notify.webhook' and destination->>'channelId' = ${raw(channel)}`);
    expect(routed.map((r) => r.payload.kind)).toEqual(['budget.increase_requested']);
    expect(describeEvent(routed[0]!.payload).title).toMatch(/^Onboarding: service:\S+ asks for 52\.8 credit-seconds more$/);

    const approved = (await call(tokens.managerTeam, APPROVE, { input: { requestId, note: 'go' } })).approveBudgetRequest;
    expect(approved).toMatchObject({ __typename: 'BudgetRequestDecisionPayload', request: { status: 'APPROVED', decisionNote: 'go' }, budget: { limitCreditSeconds: '152.8', temporaryCreditSeconds: '0' } });
    // Once only.
    const again = (await call(tokens.finance, APPROVE, { input: { requestId } })).approveBudgetRequest;
    expect(again).toMatchObject({ __typename: 'ValidationError', message: 'the request was already approved' });
    const rejectLate = (await call(tokens.finance, REJECT, { input: { requestId } })).rejectBudgetRequest;
    expect(rejectLate.__typename).toBe('ValidationError');

    expect((await submit()).submitJob.__typename).toBe('SubmitJobPayload');
    expect(await auditActions(raw(requestId))).toEqual([
      { action: 'budgetRequest.create', actor_role: 'SERVICE' },
      { action: 'budgetRequest.approve', actor_role: 'MANAGER' },
    ]);
    const decided = await moneyEvents('budget.increase_decided', raw(requestId));
    expect(decided).toHaveLength(1);
    expect(decided[0]!.payload.data).toMatchObject({ status: 'APPROVED', limitMicroCs: '152800000', decisionNote: 'go' });
    await expectCountersEqualLedger(h.services.db);
  });

  it('a temporary raise counts until its end, then stops counting: nothing resets it', async () => {
    const budget = (await setBudget(h, { orgUnitId: tree.otherProjectId, accountId: tree.accountId, window: 'LIFETIME', limitCreditSeconds: '50' })).budget;
    const until = new Date(Date.now() + 60_000);
    const asked = (await call(tokens.shortsSvc, REQUEST, { input: { budgetId: budget.id, amountCreditSeconds: '60', until: until.toISOString(), reason: 'one demo this week' } })).requestBudgetIncrease;
    expect(asked.request.until).toBe(until.toISOString());
    const approved = (await call(tokens.managerDept, APPROVE, { input: { requestId: asked.request.id } })).approveBudgetRequest;
    // The standing limit stays; the raise is shown apart and counts in what is available.
    expect(approved.budget).toMatchObject({ limitCreditSeconds: '50', temporaryCreditSeconds: '60', availableCreditSeconds: '110' });

    const submitted = (await call(tokens.shortsSvc, SUBMIT, { input: { projectId: tree.otherProjectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } })).submitJob;
    expect(submitted.__typename).toBe('SubmitJobPayload');
    expect((await call(h.adminToken, BUDGET, { id: budget.id })).node).toMatchObject({ temporaryCreditSeconds: '60', reservedCreditSeconds: '52.8', availableCreditSeconds: '57.2' });

    // After `until`, the same admission function sees the standing limit only (its clock is the gateway's).
    const after = new Date(until.getTime() + 1);
    const admin: Actor = { subject: 'admin:test', role: 'ADMIN', unitId: null, unitPath: [], tokenId: null };
    const refusal = await admitJob(
      h.services.db,
      admin,
      { projectId: raw(tree.otherProjectId), kind: 'AVATAR_VIDEO', request: avatarRequest(), estimatedSeconds: null, idempotencyKey: null },
      h.services.admission,
      after,
    ).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(BudgetExceededError);
    expect((refusal as BudgetExceededError).limitMicroCs).toBe(50_000_000n);
    const [read] = await budgetsWithUsage(h.services.db, { budgetIds: [raw(budget.id)] }, after);
    expect(read!.usage.grantedMicroCs).toBe(0n);
    // Before it, a second job still fits (57.2 cs were left), and the next refusal names the raised limit.
    const now = () =>
      admitJob(
        h.services.db,
        admin,
        { projectId: raw(tree.otherProjectId), kind: 'AVATAR_VIDEO', request: avatarRequest(), estimatedSeconds: null, idempotencyKey: null },
        h.services.admission,
      ).catch((e: unknown) => e);
    expect(await now()).not.toBeInstanceOf(Error);
    expect(((await now()) as BudgetExceededError).limitMicroCs).toBe(110_000_000n);
    // A raise asked until an instant that has passed is refused.
    const past = (await call(tokens.shortsSvc, REQUEST, { input: { budgetId: budget.id, amountCreditSeconds: '1', until: new Date(Date.now() - 1000).toISOString(), reason: 'late' } })).requestBudgetIncrease;
    expect(past).toMatchObject({ __typename: 'ValidationError', field: 'until' });
  });

  it('concurrent decisions: exactly one wins, the budget changes once, one audit event and one money event', async () => {
    const budget = (await setBudget(h, { orgUnitId: tree.projectId, accountId: tree.accountId, window: 'LIFETIME', limitCreditSeconds: '1000' })).budget;
    const requestId = (await call(tokens.svc, REQUEST, { input: { budgetId: budget.id, amountCreditSeconds: '250', reason: 'race' } })).requestBudgetIncrease.request.id;
    const deciders = [h.adminToken, tokens.finance, tokens.finance2, tokens.managerTeam, tokens.managerDept];
    const answers = await Promise.all(
      deciders.flatMap((token) => [
        h.gql(APPROVE, { input: { requestId } }, token).then((r) => r.data.approveBudgetRequest),
        h.gql(REJECT, { input: { requestId } }, token).then((r) => r.data.rejectBudgetRequest),
      ]),
    );
    const winners = answers.filter((a) => a.__typename === 'BudgetRequestDecisionPayload');
    expect(winners).toHaveLength(1);
    expect(answers.filter((a) => a.__typename === 'ValidationError')).toHaveLength(answers.length - 1);
    const limit = (await call(h.adminToken, BUDGET, { id: budget.id })).node.limitCreditSeconds;
    expect(limit).toBe(winners[0].request.status === 'APPROVED' ? '1250' : '1000');
    const actions = (await auditActions(raw(requestId))).map((a) => a.action);
    expect(actions).toHaveLength(2);
    expect(actions[0]).toBe('budgetRequest.create');
    expect(await moneyEvents('budget.increase_decided', raw(requestId))).toHaveLength(1);
  });

  it('the requester never decides its own request, whatever its role', async () => {
    const budget = (await setBudget(h, { orgUnitId: tree.teamId, accountId: tree.accountId, window: 'LIFETIME', limitCreditSeconds: '1000' })).budget;
    const asked = (await call(tokens.member, REQUEST, { input: { budgetId: budget.id, amountCreditSeconds: '5', reason: 'mine' } })).requestBudgetIncrease;
    expect(asked.request.requestedByRole).toBe('MEMBER');
    // Even an ADMIN identity with the requester's subject (the rule is the subject's, not the role's).
    const self: Actor = { subject: asked.request.requestedBy, role: 'ADMIN', unitId: null, unitPath: [], tokenId: null };
    await expect(h.services.db.transaction((tx) => decideBudgetRequest(tx, self, raw(asked.request.id), 'APPROVED', null, new Date()))).rejects.toBeInstanceOf(ForbiddenError);
    // A manager of the budget's own unit cannot decide it (its cap is set from above), nor can the member.
    expect((await call(tokens.managerTeam, APPROVE, { input: { requestId: asked.request.id } })).approveBudgetRequest.__typename).toBe('NotFoundError');
    expect((await call(tokens.member, APPROVE, { input: { requestId: asked.request.id } })).approveBudgetRequest.__typename).toBe('ForbiddenError');
    expect((await call(tokens.managerDept, REJECT, { input: { requestId: asked.request.id, note: 'not this quarter' } })).rejectBudgetRequest.request.status).toBe('REJECTED');
    expect((await call(h.adminToken, BUDGET, { id: budget.id })).node.limitCreditSeconds).toBe('1000');
  });
});

describe('transfers', () => {
  it('move limit between two teams under the department, in one transaction, audited; never below the source usage', async () => {
    const video = (await setBudget(h, { orgUnitId: tree.teamId, accountId: tree.accountId, window: 'MONTHLY', limitCreditSeconds: '400' })).budget;
    const social = (await setBudget(h, { orgUnitId: tree.otherTeamId, accountId: tree.accountId, window: 'MONTHLY', limitCreditSeconds: '100' })).budget;
    const input = (amount: string) => ({ fromBudgetId: video.id, toBudgetId: social.id, amountCreditSeconds: amount, reason: 'rebalance' });

    // The team's own manager may not: the other team is outside its reach (and its own cap is set from above). The
    // department's manager may.
    expect((await call(tokens.managerTeam, TRANSFER, { input: input('50') })).transferBudget.__typename).toBe('NotFoundError');
    const moved = (await call(tokens.managerDept, TRANSFER, { input: input('50') })).transferBudget;
    expect(moved).toMatchObject({ __typename: 'TransferBudgetPayload', from: { limitCreditSeconds: '350' }, to: { limitCreditSeconds: '150' } });
    const [audit] = await queryRows<{ action: string; before: any; after: any }>(h.services.db, sql`select action, before, after from audit_events where entity_id = ${raw(video.id)} and action = 'budget.transfer'`);
    expect(audit!.before).toMatchObject({ amountMicroCs: '50000000', reason: 'rebalance', from: { limitMicroCs: '400000000' }, to: { limitMicroCs: '100000000' } });
    expect(audit!.after).toMatchObject({ from: { limitMicroCs: '350000000' }, to: { limitMicroCs: '150000000' } });

    // What the source used in its window (the jobs admitted above, held or settled) stays covered.
    const usage = (await call(h.adminToken, BUDGET, { id: video.id })).node;
    const usedMicro = BigInt(Math.round(Number(usage.reservedCreditSeconds) * 1e6)) + BigInt(Math.round(Number(usage.settledCreditSeconds) * 1e6));
    expect(usedMicro).toBeGreaterThan(0n);
    const movable = 350_000_000n - usedMicro;
    const cs = (micro: bigint) => (Number(micro) / 1e6).toFixed(6);
    const tooMuch = (await call(tokens.finance, TRANSFER, { input: input(cs(movable + 1n)) })).transferBudget;
    expect(tooMuch).toMatchObject({ __typename: 'ValidationError', field: 'amountCreditSeconds' });
    expect(tooMuch.message).toContain('below its usage');
    expect((await call(h.adminToken, BUDGET, { id: video.id })).node.limitCreditSeconds).toBe('350');
    expect((await call(h.adminToken, BUDGET, { id: social.id })).node.limitCreditSeconds).toBe('150');
    // Exactly down to the usage is allowed.
    const exact = (await call(tokens.finance, TRANSFER, { input: input(cs(movable)) })).transferBudget;
    expect(exact.__typename).toBe('TransferBudgetPayload');
    expect(BigInt(Math.round(Number(exact.from.limitCreditSeconds) * 1e6))).toBe(usedMicro);
    expect((await queryRows(h.services.db, sql`select 1 from audit_events where entity_id = ${raw(video.id)} and action = 'budget.transfer'`)).length).toBe(2);
  });

  it('refuses budgets of different windows or accounts, nested units, and the same budget', async () => {
    const team = (await setBudget(h, { orgUnitId: tree.teamId, accountId: tree.accountId, window: 'CONTRACT_TERM', limitCreditSeconds: '100' })).budget;
    const otherWindow = (await setBudget(h, { orgUnitId: tree.otherTeamId, accountId: tree.accountId, window: 'LIFETIME', limitCreditSeconds: '100' })).budget;
    const allAccounts = (await setBudget(h, { orgUnitId: tree.otherTeamId, window: 'CONTRACT_TERM', limitCreditSeconds: '100' })).budget;
    const nested = (await setBudget(h, { orgUnitId: tree.projectId, accountId: tree.accountId, window: 'CONTRACT_TERM', limitCreditSeconds: '100' })).budget;
    for (const [to, field] of [
      [otherWindow.id, 'toBudgetId'],
      [allAccounts.id, 'toBudgetId'],
      [nested.id, 'toBudgetId'],
      [team.id, 'toBudgetId'],
    ] as const) {
      const r = (await call(h.adminToken, TRANSFER, { input: { fromBudgetId: team.id, toBudgetId: to, amountCreditSeconds: '1', reason: 'no' } })).transferBudget;
      expect(r, to).toMatchObject({ __typename: 'ValidationError', field });
    }
    const zero = (await call(h.adminToken, TRANSFER, { input: { fromBudgetId: team.id, toBudgetId: team.id, amountCreditSeconds: '0', reason: 'no' } })).transferBudget;
    expect(zero.__typename).toBe('ValidationError');
  });

  it('transfers racing admissions into the source never break its cap', async () => {
    const race = await createTree(h, { name: 'Race', concurrencyLimit: 200 });
    const source = (await setBudget(h, { orgUnitId: race.projectId, accountId: race.accountId, window: 'MONTHLY', limitCreditSeconds: '2112' })).budget; // 40 holds
    const target = (await setBudget(h, { orgUnitId: race.otherProjectId, accountId: race.accountId, window: 'MONTHLY', limitCreditSeconds: '0' })).budget;
    const app = (await issueServiceToken(h, race.projectId, 'race-app')).token;
    const manager = await h.services.tokens.issueOperatorToken({ name: 'rita', role: 'MANAGER', unitId: raw(race.deptId) });

    // 60 submissions and 30 transfers of one hold each, interleaved, for 40 holds of limit.
    const submit = () =>
      h.gql(SUBMIT, { input: { projectId: race.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } }, app).then((r) => ({ op: 'admit', outcome: r.data.submitJob.__typename as string }));
    const transfer = () =>
      h.gql(TRANSFER, { input: { fromBudgetId: source.id, toBudgetId: target.id, amountCreditSeconds: '52.8', reason: 'race' } }, manager).then((r) => ({ op: 'transfer', outcome: r.data.transferBudget.__typename as string }));
    const results = await Promise.all(Array.from({ length: 90 }, (_, i) => (i % 3 === 1 ? transfer() : submit())));
    const a = results.filter((r) => r.op === 'admit' && r.outcome === 'SubmitJobPayload').length;
    const t = results.filter((r) => r.op === 'transfer' && r.outcome === 'TransferBudgetPayload').length;
    const refusals = new Set(results.filter((r) => !r.outcome.endsWith('Payload')).map((r) => `${r.op} ${r.outcome}`));
    expect([...refusals].every((r) => r === 'admit BudgetExceededError' || r === 'transfer ValidationError'), [...refusals].join()).toBe(true);
    // Every hold's worth of limit went exactly once: to a job or to the other project, never to both.
    expect(a + t).toBe(40);

    const [row] = await queryRows<{ limit: string; used: string; target: string }>(
      h.services.db,
      sql`select b.limit_micro_cs::text as limit,
            (select coalesce(sum(reserved_micro_cs + settled_micro_cs), 0) from usage_rollups where org_unit_id = b.org_unit_id)::text as used,
            (select limit_micro_cs from budgets where id = ${raw(target.id)})::text as target
          from budgets b where b.id = ${raw(source.id)}`,
    );
    expect(BigInt(row!.limit)).toBe(2112_000_000n - BigInt(t) * HOLD);
    expect(BigInt(row!.used)).toBe(BigInt(a) * HOLD);
    expect(BigInt(row!.used)).toBeLessThanOrEqual(BigInt(row!.limit));
    expect(BigInt(row!.target)).toBe(BigInt(t) * HOLD);
    const [audits] = await queryRows<{ n: number }>(h.services.db, sql`select count(*)::int as n from audit_events where entity_id = ${raw(source.id)} and action = 'budget.transfer'`);
    expect(Number(audits!.n)).toBe(t);
    await expectCountersEqualLedger(h.services.db);
  });
});

describe('with budget windows', () => {
  it('the limit in force is limit + rollover + temporary raises, in reads and in the admission; raises and transfers keep the rollover and CUSTOM dates', async () => {
    const own = await createTree(h, { name: 'Windows', concurrencyLimit: 200 });
    const svc = (await issueServiceToken(h, own.projectId, 'windows-app')).token;
    const budget = (await setBudget(h, { orgUnitId: own.projectId, accountId: own.accountId, window: 'MONTHLY', limitCreditSeconds: '50', rolloverCapCreditSeconds: '20' })).budget;
    // The rollover starts the month after it is set: start it long ago, when nothing settled, so 20 carries now.
    await h.services.db.execute(sql`update budgets set rollover_from = '2000-01' where id = ${raw(budget.id)}`);
    const READ = `query($id: ID!) { node(id: $id) { ... on Budget { limitCreditSeconds rolloverCapCreditSeconds carriedOverCreditSeconds temporaryCreditSeconds effectiveLimitCreditSeconds availableCreditSeconds } } }`;
    const ask = async (amount: string, until: Date | null) => {
      const asked = (await call(svc, REQUEST, { input: { budgetId: budget.id, amountCreditSeconds: amount, until: until?.toISOString() ?? null, reason: 'launch' } })).requestBudgetIncrease;
      expect((await call(tokens.finance, APPROVE, { input: { requestId: asked.request.id } })).approveBudgetRequest.__typename).toBe('BudgetRequestDecisionPayload');
    };

    await ask('60', new Date(Date.now() + 3_600_000));
    expect((await call(h.adminToken, READ, { id: budget.id })).node).toEqual({
      limitCreditSeconds: '50', rolloverCapCreditSeconds: '20', carriedOverCreditSeconds: '20', temporaryCreditSeconds: '60', effectiveLimitCreditSeconds: '130', availableCreditSeconds: '130',
    });
    // A permanent raise goes through setBudget with everything else kept: the rollover cap (and its start) stay.
    await ask('10', null);
    expect((await call(h.adminToken, READ, { id: budget.id })).node).toEqual({
      limitCreditSeconds: '60', rolloverCapCreditSeconds: '20', carriedOverCreditSeconds: '20', temporaryCreditSeconds: '60', effectiveLimitCreditSeconds: '140', availableCreditSeconds: '140',
    });

    // The admission counts the same 140: two 52.8 cs jobs fit, the third is refused naming that limit.
    const admin: Actor = { subject: 'admin:test', role: 'ADMIN', unitId: null, unitPath: [], tokenId: null };
    const admit = () =>
      admitJob(
        h.services.db,
        admin,
        { projectId: raw(own.projectId), kind: 'AVATAR_VIDEO', request: avatarRequest(), estimatedSeconds: null, idempotencyKey: null },
        h.services.admission,
      ).catch((e: unknown) => e);
    expect(await admit()).not.toBeInstanceOf(Error);
    expect(await admit()).not.toBeInstanceOf(Error);
    const refusal = await admit();
    expect(refusal).toBeInstanceOf(BudgetExceededError);
    expect((refusal as BudgetExceededError).limitMicroCs).toBe(140_000_000n);
    expect((await call(h.adminToken, READ, { id: budget.id })).node.availableCreditSeconds).toBe((140 - 2 * 52.8).toFixed(1));

    // A transfer between CUSTOM budgets keeps their dates. The source's usage is gateway_budget_usage's: nothing
    // settled in its (past) window, but the two open holds of its project count, whatever their day.
    const window = { window: 'CUSTOM', accountId: own.accountId, windowFrom: '2020-01-01', windowTo: '2020-02-01' };
    const from = (await setBudget(h, { ...window, orgUnitId: own.teamId, limitCreditSeconds: '200' })).budget;
    const to = (await setBudget(h, { ...window, orgUnitId: own.otherTeamId, limitCreditSeconds: '100' })).budget;
    const transfer = (amount: string) => call(tokens.finance, TRANSFER, { input: { fromBudgetId: from.id, toBudgetId: to.id, amountCreditSeconds: amount, reason: 'rebalance' } });
    expect((await transfer('94.5')).transferBudget).toMatchObject({ __typename: 'ValidationError', field: 'amountCreditSeconds' });
    const moved = (await transfer('94.4')).transferBudget;
    expect(moved).toMatchObject({ __typename: 'TransferBudgetPayload', from: { limitCreditSeconds: '105.6' }, to: { limitCreditSeconds: '194.4' } });
    const dates = await queryRows<{ window_from: string; window_to: string }>(h.services.db, sql`select window_from::text, window_to::text from budgets where id in (${raw(from.id)}, ${raw(to.id)})`);
    expect(dates).toEqual([
      { window_from: '2020-01-01', window_to: '2020-02-01' },
      { window_from: '2020-01-01', window_to: '2020-02-01' },
    ]);
  });
});

// Tags and people (docs/governance.md): tags from the organization's allowlist on submitJob and the /v3 front
// (X-Gateway-Tags, X-Gateway-End-User), typed refusals, the job's person, budgets on a tag value and on a person
// enforced in the admission under concurrency, and a MEMBER seeing only its own person-level usage.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { sql } from 'drizzle-orm';
import { startHarness, type Harness } from './support/harness.js';
import { SUBMIT, avatarRequest, createTree, issueServiceToken, mustMutate, type Tree } from './support/fixtures.js';
import { expectCountersEqualLedger } from './support/invariants.js';
import { queryRows } from '../src/db/client.js';

let h: Harness;
let tree: Tree;
const rawId = (globalId: string) => decodeGlobalID(globalId).id;
/** The hold of avatarRequest() on the default price book (test/support/fixtures.ts). */
const HOLD_CS = 52.8;

const SET_TAG_KEYS = `mutation($input: SetTagKeysInput!) { setTagKeys(input: $input) { __typename ... on SetTagKeysPayload { keys } ... on Error { message code } } }`;
const SET_GROUP_BUDGET = `mutation($input: SetGroupBudgetInput!) { setGroupBudget(input: $input) {
  __typename ... on SetGroupBudgetPayload { budget { id tagKey tagValue person limitCreditSeconds usedCreditSeconds } }
  ... on ValidationError { message code field } ... on Error { message code } } }`;
const SUBMIT_TAGGED = `mutation($input: SubmitJobInput!) {
  submitJob(input: $input) {
    __typename
    ... on SubmitJobPayload { job { id tags { key value } person endUser createdBy } }
    ... on BudgetExceededError { message code reason tagKey tagValue person budgetId availableCreditSeconds limitCreditSeconds }
    ... on ValidationError { message code field }
    ... on Error { message code }
  }
}`;

beforeAll(async () => {
  h = await startHarness({ sim: { autoComplete: false, defaultConcurrencyLimit: 1000 }, simAccounts: [{ apiKey: 'sk_test_primary_key_0001', concurrencyLimit: 1000 }] });
  tree = await createTree(h, { concurrencyLimit: 1000 });
  await mustMutate(h, SET_TAG_KEYS, { input: { keys: ['campaign', 'client'] } }, 'setTagKeys');
});
afterAll(async () => h?.close());

/**
 * The burst tests below count against windows of the real clock (the account is in UTC): a burst that straddled a
 * midnight would split across two days (or months). Started within a minute of one, they wait until it has passed.
 */
async function clearOfMidnight(): Promise<void> {
  const msToMidnight = 86_400_000 - (Date.now() % 86_400_000);
  if (msToMidnight < 60_000) await new Promise((r) => setTimeout(r, msToMidnight + 1000));
}

const submit = (input: Record<string, unknown>, token?: string) =>
  h.gql(SUBMIT_TAGGED, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest(), ...input } }, token);

describe('tags on a job', () => {
  it('the allowlist is set by ADMIN or FINANCE only, and read by anyone', async () => {
    const member = await h.services.tokens.issueOperatorToken({ name: 'mo', role: 'MEMBER', unitId: rawId(tree.teamId) });
    const refused = await h.gql(SET_TAG_KEYS, { input: { keys: ['campaign'] } }, member);
    expect(JSON.stringify(refused)).toMatch(/only ADMIN and FINANCE/);
    expect((await h.gql(`{ tagKeys }`, {}, member)).data.tagKeys).toEqual(['campaign', 'client']);
    const bad = await h.gql(SET_TAG_KEYS, { input: { keys: ['Campaign'] } });
    expect(bad.data.setTagKeys).toMatchObject({ __typename: 'ValidationError' });
  });

  it('a job carries its tags and person; unknown keys, bad values and too many tags are typed errors that write nothing', async () => {
    const ok = await submit({ tags: [{ key: 'client', value: 'acme' }, { key: 'campaign', value: 'spring' }] });
    expect(ok.data.submitJob.job).toMatchObject({ tags: [{ key: 'campaign', value: 'spring' }, { key: 'client', value: 'acme' }], person: 'admin:test', endUser: null });

    const [{ count: before }] = (await queryRows<{ count: string }>(h.services.db, sql`select count(*)::text as count from jobs`)) as [{ count: string }];
    const cases: [Record<string, unknown>, string][] = [
      [{ tags: [{ key: 'region', value: 'eu' }] }, 'tags.region'],
      [{ tags: [{ key: 'campaign', value: '' }] }, 'tags.campaign'],
      [{ tags: [{ key: 'campaign', value: ' spring' }] }, 'tags.campaign'],
      [{ tags: [{ key: 'campaign', value: 'a\u0007b' }] }, 'tags.campaign'],
      [{ tags: [{ key: 'campaign', value: 'x'.repeat(257) }] }, 'tags.campaign'],
      [{ tags: [{ key: 'Bad Key', value: 'x' }] }, 'tags'],
      [{ tags: [{ key: 'campaign', value: 'a' }, { key: 'campaign', value: 'b' }] }, 'tags'],
      [{ tags: Array.from({ length: 11 }, (_, i) => ({ key: `k${i}`, value: 'v' })) }, 'tags'],
      [{ endUser: 'ann@example.com' }, 'endUser'], // only an app names an end user
    ];
    for (const [input, field] of cases) {
      const res = await submit(input);
      expect(res.data.submitJob, JSON.stringify(input)).toMatchObject({ __typename: 'ValidationError', field });
    }
    const [{ count: after }] = (await queryRows<{ count: string }>(h.services.db, sql`select count(*)::text as count from jobs`)) as [{ count: string }];
    expect(after).toBe(before);
  });

  it('an app names the end user; the same key with other tags is an idempotency conflict', async () => {
    const app = await issueServiceToken(h, tree.projectId, 'tagger');
    const first = await submit({ tags: [{ key: 'campaign', value: 'fall' }], endUser: 'ann@example.com', idempotencyKey: 'tag-idem-1' }, app.token);
    expect(first.data.submitJob.job).toMatchObject({ person: 'user:ann@example.com', endUser: 'ann@example.com', createdBy: `service:${rawId(app.id)}` });
    const replay = await submit({ tags: [{ key: 'campaign', value: 'fall' }], endUser: 'ann@example.com', idempotencyKey: 'tag-idem-1' }, app.token);
    expect(replay.data.submitJob.job.id).toBe(first.data.submitJob.job.id);
    const other = await submit({ tags: [{ key: 'campaign', value: 'winter' }], endUser: 'ann@example.com', idempotencyKey: 'tag-idem-1' }, app.token);
    expect(other.data.submitJob.__typename).toBe('IdempotencyConflictError');
  });

  it('the /v3 front takes X-Gateway-Tags and X-Gateway-End-User, and refuses a malformed header in HeyGen\'s envelope', async () => {
    const app = await issueServiceToken(h, tree.projectId, 'v3-tagger');
    const post = (headers: Record<string, string>) =>
      fetch(`${h.url}/v3/videos`, { method: 'POST', headers: { 'x-api-key': app.token, 'content-type': 'application/json', ...headers }, body: JSON.stringify(avatarRequest()) });
    const created = await post({ 'X-Gateway-Tags': 'campaign=spring%2C2027, client=acme', 'X-Gateway-End-User': 'bob' });
    expect(created.status).toBe(200);
    const [job] = await queryRows<{ tags: Record<string, string>; end_user: string }>(
      h.services.db,
      sql`select tags, end_user from jobs where created_by = ${`service:${rawId(app.id)}`}`,
    );
    expect(job).toEqual({ tags: { campaign: 'spring,2027', client: 'acme' }, end_user: 'bob' });
    for (const header of ['campaign', 'region=eu', 'campaign=a,campaign=b']) {
      const res = await post({ 'X-Gateway-Tags': header });
      expect(res.status, header).toBe(400);
      expect((await res.json()).error).toMatchObject({ code: 'validation_error', param: 'X-Gateway-Tags' });
    }
  });
});

describe('budgets on a tag value and on a person', () => {
  it('100 concurrent submissions into a campaign budget that fits 37: exactly 37 admitted, the rest refused naming the tag', async () => {
    const set = await mustMutate(
      h,
      SET_GROUP_BUDGET,
      { input: { orgUnitId: tree.orgId, accountId: tree.accountId, window: 'MONTHLY', tagKey: 'campaign', tagValue: 'launch', limitCreditSeconds: String(37 * HOLD_CS + 20) } },
      'setGroupBudget',
    );
    await clearOfMidnight();
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        submit({ tags: [{ key: 'campaign', value: 'launch' }, { key: 'client', value: `c${i % 3}` }], ...(i % 2 ? { projectId: tree.otherProjectId } : {}) }),
      ),
    );
    const kinds = results.map((r) => r.data.submitJob.__typename);
    expect(kinds.filter((k) => k === 'SubmitJobPayload')).toHaveLength(37);
    expect(kinds.filter((k) => k === 'BudgetExceededError')).toHaveLength(63);
    const refusal = results.find((r) => r.data.submitJob.__typename === 'BudgetExceededError')!.data.submitJob;
    expect(refusal).toMatchObject({ code: 'BUDGET_EXCEEDED', reason: 'TAG', tagKey: 'campaign', tagValue: 'launch', person: null, budgetId: set.budget.id, availableCreditSeconds: '20' });
    expect(refusal.message).toMatch(/budget of tag campaign=launch/);
    // The refusals are noted as the money event `budget.refused` (one per budget and hour: a burst gives one).
    const noted = await queryRows<{ data: Record<string, unknown> }>(
      h.services.db,
      sql`select payload->'data' as data from outbox_events where topic = 'money_event' and kind = 'budget.refused'
            and payload->'data'->>'budgetId' = ${rawId(set.budget.id)}`,
    );
    expect(noted.length).toBeGreaterThanOrEqual(1);
    expect(noted[0]!.data).toMatchObject({ reason: 'TAG', tagKey: 'campaign', tagValue: 'launch', accountId: rawId(tree.accountId), availableMicroCs: '20000000' });
    const used = await h.gql(`query($id: ID!) { node(id: $id) { ... on OrgUnit { groupBudgets { usedCreditSeconds limitCreditSeconds } } } }`, { id: tree.orgId });
    expect(used.data.node.groupBudgets).toEqual([{ usedCreditSeconds: String(37 * HOLD_CS), limitCreditSeconds: String(37 * HOLD_CS + 20) }]);
    // Jobs of other campaigns are not bound by it.
    expect((await submit({ tags: [{ key: 'campaign', value: 'other' }] })).data.submitJob.__typename).toBe('SubmitJobPayload');
    await expectCountersEqualLedger(h.services.db);
  });

  it('100 concurrent submissions into a DAILY campaign budget that fits 23: exactly 23 admitted; QUARTERLY counts the quarter', async () => {
    const daily = await mustMutate(
      h,
      SET_GROUP_BUDGET,
      { input: { orgUnitId: tree.deptId, accountId: tree.accountId, window: 'DAILY', tagKey: 'campaign', tagValue: 'daily', limitCreditSeconds: String((23 * 528 + 50) / 10) /* 23 holds + 5 cs */ } },
      'setGroupBudget',
    );
    await clearOfMidnight();
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => submit({ tags: [{ key: 'campaign', value: 'daily' }], ...(i % 2 ? { projectId: tree.otherProjectId } : {}) })));
    const kinds = results.map((r) => r.data.submitJob.__typename);
    expect(kinds.filter((k) => k === 'SubmitJobPayload')).toHaveLength(23);
    expect(kinds.filter((k) => k === 'BudgetExceededError')).toHaveLength(77);
    const refusal = results.find((r) => r.data.submitJob.__typename === 'BudgetExceededError')!.data.submitJob;
    expect(refusal).toMatchObject({ reason: 'TAG', tagKey: 'campaign', tagValue: 'daily', budgetId: daily.budget.id, availableCreditSeconds: '5' });
    expect(refusal.message).toMatch(/\(DAILY \d{4}-\d{2}-\d{2}\)/);
    await expectCountersEqualLedger(h.services.db);

    const set = await mustMutate(
      h,
      SET_GROUP_BUDGET,
      { input: { orgUnitId: tree.orgId, accountId: tree.accountId, window: 'QUARTERLY', tagKey: 'campaign', tagValue: 'quarter', limitCreditSeconds: String(HOLD_CS) } },
      'setGroupBudget',
    );
    expect((await submit({ tags: [{ key: 'campaign', value: 'quarter' }] })).data.submitJob.__typename).toBe('SubmitJobPayload');
    const refused = (await submit({ tags: [{ key: 'campaign', value: 'quarter' }] })).data.submitJob;
    expect(refused).toMatchObject({ __typename: 'BudgetExceededError', reason: 'TAG', budgetId: set.budget.id, availableCreditSeconds: '0' });
    expect(refused.message).toMatch(/\(QUARTERLY \d{4}-\d{2}\.\.\d{4}-\d{2}\)/);
    await expectCountersEqualLedger(h.services.db);
  });

  it("a person's budget within a unit binds that person only, and a MEMBER sees its own person-level usage only", async () => {
    const ann = await h.services.tokens.issueOperatorToken({ name: 'ann', role: 'MEMBER', unitId: rawId(tree.teamId) });
    const ben = await h.services.tokens.issueOperatorToken({ name: 'ben', role: 'MEMBER', unitId: rawId(tree.teamId) });
    await mustMutate(
      h,
      SET_GROUP_BUDGET,
      { input: { orgUnitId: tree.teamId, window: 'LIFETIME', person: 'member:ann', limitCreditSeconds: String(2 * HOLD_CS) } },
      'setGroupBudget',
    );
    const annJobs = await Promise.all(Array.from({ length: 5 }, () => submit({}, ann)));
    expect(annJobs.filter((r) => r.data.submitJob.__typename === 'SubmitJobPayload')).toHaveLength(2);
    const refused = annJobs.find((r) => r.data.submitJob.__typename === 'BudgetExceededError')!.data.submitJob;
    expect(refused).toMatchObject({ reason: 'PERSON', person: 'member:ann', tagKey: null });
    expect((await submit({}, ben)).data.submitJob.__typename).toBe('SubmitJobPayload');

    const query = `query($id: ID!) { node(id: $id) { ... on OrgUnit { usage { reservedCreditSeconds groups(groupBy: { by: PERSON }) { value label reservedCreditSeconds } } } } }`;
    const asAdmin = (await h.gql(query, { id: tree.teamId })).data.node.usage;
    const persons = asAdmin.groups.map((g: { value: string | null }) => g.value);
    expect(persons).toEqual(expect.arrayContaining(['member:ann', 'member:ben', 'admin:test']));
    const total = asAdmin.groups.reduce((s: number, g: { reservedCreditSeconds: string }) => s + Number(g.reservedCreditSeconds), 0);
    expect(total).toBeCloseTo(Number(asAdmin.reservedCreditSeconds), 6);
    const asAnn = (await h.gql(query, { id: tree.teamId }, ann)).data.node.usage.groups;
    expect(asAnn).toEqual([{ value: 'member:ann', label: 'member:ann', reservedCreditSeconds: String(2 * HOLD_CS) }]);
    // A person budget shows its counters to that person, not to another MEMBER.
    const budgets = `query($id: ID!) { node(id: $id) { ... on OrgUnit { groupBudgets { person limitCreditSeconds usedCreditSeconds } } } }`;
    expect((await h.gql(budgets, { id: tree.teamId }, ann)).data.node.groupBudgets).toEqual([{ person: 'member:ann', limitCreditSeconds: String(2 * HOLD_CS), usedCreditSeconds: String(2 * HOLD_CS) }]);
    expect((await h.gql(budgets, { id: tree.teamId }, ben)).data.node.groupBudgets).toEqual([{ person: 'member:ann', limitCreditSeconds: null, usedCreditSeconds: null }]);
    await expectCountersEqualLedger(h.services.db);
  });
});

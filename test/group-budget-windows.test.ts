// Budgets on a tag value or a person over the day windows (docs/governance.md, Budgets on a tag value or a person),
// with fixed clocks in the account's time zone, as test/budget-windows.test.ts checks unit budgets:
// - DAILY (New York, across the 23-hour day clocks spring forward), WEEKLY (Berlin, a 25-hour Sunday) and CUSTOM
//   (Los Angeles) group budgets refuse up to the last second of their window and start afresh at the next one;
// - their usage is a sum over the daily group rollups (usage_tag_daily, usage_person_daily), equal to the ledger;
// - threshold events of a group budget: each threshold once per window under concurrent admissions, re-armed in the
//   next window, resolved by a raise; routed to a channel by a rule above the budget's unit; shown in moneyEvents to
//   whoever may see the group budget.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { eq, sql } from 'drizzle-orm';
import { startHarness, type Harness } from './support/harness.js';
import { avatarRequest, createTree, mustMutate, type Tree } from './support/fixtures.js';
import { expectCountersEqualLedger } from './support/invariants.js';
import { admitJob } from '../src/jobs/admission.js';
import { settleJob } from '../src/jobs/settlement.js';
import { groupBudgetUsage, setGroupBudget, type SetGroupBudgetInput } from '../src/tags/tags.js';
import { queryRows } from '../src/db/client.js';
import { describeEvent, moneyEventFanOut } from '../src/notifications/delivery.js';
import { groupBudgetsTable } from '../src/db/schema.js';
import { BudgetExceededError, ValidationError } from '../src/errors.js';
import type { Actor } from '../src/auth/actor.js';

const admin: Actor = { subject: 'admin:test', role: 'ADMIN', unitId: null, unitPath: [], tokenId: null };
let h: Harness;

beforeAll(async () => {
  h = await startHarness({ workers: false });
  await createTree(h, { name: 'Group setup' }); // the organization, whose allowlist the tags need
  await mustMutate(h, `mutation { setTagKeys(input: { keys: ["campaign"] }) { __typename } }`, {}, 'setTagKeys');
});
afterAll(async () => h?.close());

const raw = (globalId: string) => decodeGlobalID(globalId).id;
const HOLD = 52_800_000n; // one avatarRequest() hold: 52.8 cs
const CAMPAIGN = { campaign: 'spring' };

function admit(tree: Tree, at: string, tags: Record<string, string> = CAMPAIGN, actor: Actor = admin) {
  return admitJob(
    h.services.db,
    actor,
    { projectId: raw(tree.projectId), kind: 'AVATAR_VIDEO', request: avatarRequest(), estimatedSeconds: null, idempotencyKey: null, tags },
    h.services.admission,
    new Date(at),
  );
}

/** Admitted at `at`, and the hold released at once: the window's settled usage is what the test booked. */
async function admitted(tree: Tree, at: string, tags?: Record<string, string>): Promise<void> {
  const { job } = await admit(tree, at, tags);
  expect(job.status).toBe('RESERVED');
  await settleJob(h.services.db, job.id, { type: 'cancelled', by: admin }, new Date(at));
}

async function refused(tree: Tree, at: string, tags?: Record<string, string>): Promise<BudgetExceededError> {
  const error = await admit(tree, at, tags).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BudgetExceededError);
  return error as BudgetExceededError;
}

/**
 * A job of the group (the campaign, and admin:test as its person) admitted and rendered at `at`, HeyGen billing
 * `creditSeconds`: settled usage of the group on the account-local day of `at`.
 */
async function spent(tree: Tree, at: string, creditSeconds: number, tags: Record<string, string> = CAMPAIGN): Promise<void> {
  const { job } = await admit(tree, at, tags);
  await h.services.db.execute(sql`update jobs set status = 'SUBMITTED' where id = ${job.id}`);
  await h.services.db.execute(
    sql`insert into job_items (job_id, upstream_id, kind, status, duration_seconds, cost_micro_cs)
        values (${job.id}, ${`up-${job.id}`}, 'video', 'completed', '10', ${BigInt(creditSeconds) * 1_000_000n})`,
  );
  await settleJob(h.services.db, job.id, { type: 'upstream_terminal' }, new Date(at));
}

async function groupBudgetAt(
  tree: Tree,
  input: Partial<SetGroupBudgetInput> & Pick<SetGroupBudgetInput, 'window'>,
  at: string,
) {
  return h.services.db.transaction((tx) =>
    setGroupBudget(
      tx,
      admin,
      {
        orgUnitId: raw(tree.teamId),
        accountId: raw(tree.accountId),
        group: { tagKey: 'campaign', tagValue: 'spring' },
        limitCreditSeconds: '100',
        limitUsd: null,
        ...input,
      },
      new Date(at),
    ),
  );
}

async function usageAt(budgetId: string, at: string) {
  const [budget] = await h.services.db.select().from(groupBudgetsTable).where(eq(groupBudgetsTable.id, budgetId));
  return groupBudgetUsage(h.services.db, budget!, new Date(at));
}

describe('day windows of a tag or person budget', () => {
  it('DAILY tag budget in New York: refused until local midnight, across the 23-hour day clocks spring forward', async () => {
    const tree = await createTree(h, { name: 'Group New York', timezone: 'America/New_York' });
    const budget = await groupBudgetAt(tree, { window: 'DAILY' }, '2026-03-01T12:00:00Z');
    // 60 cs settled on the 7th (New York), 21:00 EST.
    await spent(tree, '2026-03-08T02:00:00Z', 60);
    // 04:59:59 UTC on 8 March is 23:59:59 on the 7th (EST, UTC−5): 60 + 52.8 > 100.
    const refusal = await refused(tree, '2026-03-08T04:59:59Z');
    expect(refusal).toMatchObject({ reason: 'TAG', budgetId: budget.id, availableMicroCs: 40_000_000n });
    expect(refusal.message).toContain('(DAILY 2026-03-07)');
    expect(await usageAt(budget.id, '2026-03-08T04:59:59Z')).toMatchObject({ windowFrom: '2026-03-07', windowTo: '2026-03-07', settledMicroCs: 60_000_000n });
    // A job of another campaign is not bound by it.
    await admitted(tree, '2026-03-08T04:59:59Z', { campaign: 'other' });
    // 05:00 UTC is midnight of the 8th: a new day.
    await admitted(tree, '2026-03-08T05:00:00Z');
    // The 8th has 23 hours (02:00 EST → 03:00 EDT): it ends at 04:00 UTC on the 9th (EDT, UTC−4).
    await spent(tree, '2026-03-09T03:00:00Z', 60);
    await refused(tree, '2026-03-09T03:59:59Z');
    expect(await usageAt(budget.id, '2026-03-09T03:59:59Z')).toMatchObject({ windowFrom: '2026-03-08', settledMicroCs: 60_000_000n });
    await admitted(tree, '2026-03-09T04:00:00Z');
    expect(await usageAt(budget.id, '2026-03-09T04:00:00Z')).toMatchObject({ windowFrom: '2026-03-09', settledMicroCs: 0n });
    await expectCountersEqualLedger(h.services.db);
  });

  it('WEEKLY person budget in Berlin: an ISO week whose last day has 25 hours as clocks fall back', async () => {
    const tree = await createTree(h, { name: 'Group Berlin', timezone: 'Europe/Berlin' });
    const budget = await groupBudgetAt(tree, { window: 'WEEKLY', group: { person: 'admin:test' } }, '2026-10-01T12:00:00Z');
    // Sunday 18 October belongs to the week before; Monday 19 October is the week's first day.
    await spent(tree, '2026-10-18T12:00:00Z', 90, {});
    await spent(tree, '2026-10-19T12:00:00Z', 60, {});
    expect(await usageAt(budget.id, '2026-10-19T13:00:00Z')).toMatchObject({ windowFrom: '2026-10-19', windowTo: '2026-10-25', settledMicroCs: 60_000_000n });
    // Sunday 25 October runs from 22:00 UTC on the 24th (CEST) to 23:00 UTC on the 25th (CET): 25 hours.
    const refusal = await refused(tree, '2026-10-25T22:59:59Z', {});
    expect(refusal).toMatchObject({ reason: 'PERSON', group: { person: 'admin:test' }, availableMicroCs: 40_000_000n });
    expect(refusal.message).toContain('(WEEKLY 2026-10-19..2026-10-25)');
    // Monday 26 October at midnight CET: a new week.
    await admitted(tree, '2026-10-25T23:00:00Z', {});
    expect(await usageAt(budget.id, '2026-10-25T23:00:00Z')).toMatchObject({ windowFrom: '2026-10-26', windowTo: '2026-11-01', settledMicroCs: 0n });
    await expectCountersEqualLedger(h.services.db);
  });

  it('CUSTOM tag budget in Los Angeles: from (inclusive) to (exclusive) account-local days, nothing admitted outside', async () => {
    const tree = await createTree(h, { name: 'Group LA', timezone: 'America/Los_Angeles' });
    const budget = await groupBudgetAt(tree, { window: 'CUSTOM', windowFrom: '2026-06-10', windowTo: '2026-06-13' }, '2026-06-01T12:00:00Z');
    expect(budget).toMatchObject({ windowFrom: '2026-06-10', windowTo: '2026-06-13' });
    // 06:59:59 UTC on 10 June is 23:59:59 on the 9th (PDT, UTC−7): before the window.
    const before = await refused(tree, '2026-06-10T06:59:59Z');
    expect(before.availableMicroCs).toBe(0n);
    expect(before.message).toContain('(CUSTOM 2026-06-10..2026-06-12)');
    await admitted(tree, '2026-06-10T07:00:00Z');
    await spent(tree, '2026-06-12T12:00:00Z', 60);
    expect((await refused(tree, '2026-06-13T06:59:59Z')).availableMicroCs).toBe(40_000_000n);
    // Midnight of the 13th (the exclusive end) in Los Angeles: after the window.
    expect((await refused(tree, '2026-06-13T07:00:00Z')).availableMicroCs).toBe(0n);
    expect(await usageAt(budget.id, '2026-06-12T12:00:00Z')).toMatchObject({ windowFrom: '2026-06-10', windowTo: '2026-06-12', settledMicroCs: 60_000_000n });
    await expectCountersEqualLedger(h.services.db);
  });

  it('setGroupBudget validates windows and thresholds as setBudget does, with typed errors', async () => {
    const tree = await createTree(h, { name: 'Group validation', timezone: 'UTC' });
    const cases: [Partial<SetGroupBudgetInput> & Pick<SetGroupBudgetInput, 'window'>, string][] = [
      [{ window: 'CUSTOM' }, 'windowFrom'],
      [{ window: 'CUSTOM', windowFrom: '2026-06-10' }, 'windowTo'],
      [{ window: 'CUSTOM', windowFrom: '2026-02-30', windowTo: '2026-03-10' }, 'windowFrom'],
      [{ window: 'CUSTOM', windowFrom: '2026-06-10', windowTo: '2026-06-10' }, 'windowTo'],
      [{ window: 'DAILY', windowFrom: '2026-06-10', windowTo: '2026-06-11' }, 'windowFrom'],
      [{ window: 'DAILY', alertThresholds: [0] }, 'alertThresholds'],
    ];
    for (const [input, field] of cases) {
      const error = await groupBudgetAt(tree, input, '2026-06-01T00:00:00Z').catch((e: unknown) => e);
      expect(error, JSON.stringify(input)).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).field).toBe(field);
    }
    const { status, data } = await h.gql(
      `mutation($input: SetGroupBudgetInput!) { setGroupBudget(input: $input) { __typename ... on ValidationError { field } } }`,
      { input: { orgUnitId: tree.teamId, accountId: tree.accountId, window: 'CUSTOM', windowFrom: '2026-06-10', tagKey: 'campaign', tagValue: 'x', limitCreditSeconds: '1' } },
    );
    expect(status).toBe(200);
    expect(data.setGroupBudget).toEqual({ __typename: 'ValidationError', field: 'windowTo' });
  });
});

describe('threshold events of a group budget', () => {
  const events = (kind: string, budgetId: string) =>
    queryRows<{ data: Record<string, unknown>; org_unit_id: string }>(
      h.services.db,
      sql`select payload->'data' as data, org_unit_id::text from outbox_events where topic = 'money_event' and kind = ${kind}
          and payload->'data'->>'budgetId' = ${budgetId} order by created_at, dedupe_key`,
    );

  it('a DAILY tag budget filled by concurrent admissions crosses 50, 80 and 100 % once each, again the next day; a raise resolves them', async () => {
    const tree = await createTree(h, { name: 'Group alerts', timezone: 'Asia/Kolkata', concurrencyLimit: 1000 });
    // Room for 10 holds a day.
    const budget = await groupBudgetAt(tree, { window: 'DAILY', limitCreditSeconds: String(Number(10n * HOLD) / 1e6) }, '2026-08-01T00:00:00Z');
    expect(budget.alertThresholds).toEqual([50, 80, 100]);
    const at = '2026-08-02T10:00:00Z'; // 15:30 on the 2nd in Kolkata
    const results = await Promise.allSettled(Array.from({ length: 25 }, () => admit(tree, at)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(10);
    const crossed = await events('budget.threshold_crossed', budget.id);
    expect(crossed.map((e) => e.data.threshold).sort()).toEqual([100, 50, 80]);
    for (const e of crossed) {
      expect(e.org_unit_id).toBe(raw(tree.teamId));
      expect(e.data).toMatchObject({
        reason: 'TAG', tagKey: 'campaign', tagValue: 'spring', window: 'DAILY', enforcement: 'HARD',
        windowFrom: '2026-08-02', windowTo: '2026-08-02', limitMicroCs: (10n * HOLD).toString(), accountId: raw(tree.accountId),
      });
      expect(BigInt(e.data.usedMicroCs as string) * 100n).toBeGreaterThanOrEqual(BigInt(e.data.threshold as number) * 10n * HOLD);
    }
    // Delivered by the existing channels: a rule on the department routes the team's group budget events.
    const channel = await mustMutate(
      h,
      `mutation($input: CreateNotificationChannelInput!) { createNotificationChannel(input: $input) { __typename ... on NotificationChannelPayload { channel { id } } ... on Error { message } } }`,
      { input: { orgUnitId: tree.deptId, kind: 'WEBHOOK', name: 'campaigns', config: { url: 'https://hooks.example.com/campaigns' } } },
      'createNotificationChannel',
    );
    await mustMutate(
      h,
      `mutation($input: CreateNotificationRuleInput!) { createNotificationRule(input: $input) { __typename ... on Error { message } } }`,
      { input: { orgUnitId: tree.deptId, channelId: channel.channel.id, eventKinds: ['BUDGET_THRESHOLD_CROSSED'] } },
      'createNotificationRule',
    );
    const [event] = await queryRows<{ id: string; payload: unknown }>(
      h.services.db,
      sql`select id, payload from outbox_events where topic = 'money_event' and kind = 'budget.threshold_crossed'
          and payload->'data'->>'budgetId' = ${budget.id} and (payload->'data'->>'threshold')::int = 80`,
    );
    await moneyEventFanOut(h.services.db, { maxAttempts: 3 })(
      { id: event!.id, topic: 'money_event', kind: 'budget.threshold_crossed', payload: event!.payload, destination: {}, jobId: null, orgUnitId: raw(tree.teamId), attempt: 1, maxAttempts: 3, createdAt: new Date() },
      new Date(),
    );
    const routed = await queryRows<{ payload: any }>(h.services.db, sql`select payload from outbox_events where topic = 'notify.webhook' and destination->>'channelId' = ${raw(channel.channel.id)}`);
    expect(routed).toHaveLength(1);
    expect(describeEvent(routed[0]!.payload).title).toBe('Video: 80% of its DAILY budget of tag campaign=spring used');

    // Release the holds: a decrease resolves nothing by itself.
    for (const r of results) if (r.status === 'fulfilled') await settleJob(h.services.db, r.value.job.id, { type: 'cancelled', by: admin }, new Date(at));
    expect(await events('budget.threshold_resolved', budget.id)).toEqual([]);
    // The next day (00:00 in Kolkata is 18:30 UTC) re-arms them: 6 holds cross 50 % again, once, under concurrency.
    await Promise.all(Array.from({ length: 6 }, () => admit(tree, '2026-08-02T18:30:00Z')));
    const next = (await events('budget.threshold_crossed', budget.id)).filter((e) => e.data.windowFrom === '2026-08-03');
    expect(next.map((e) => e.data.threshold)).toEqual([50]);
    // A raise to 100 holds: 6/100 is under 50 %: the day's crossing is resolved, once.
    await groupBudgetAt(tree, { window: 'DAILY', limitCreditSeconds: String(Number(100n * HOLD) / 1e6) }, '2026-08-02T18:31:00Z');
    const resolved = await events('budget.threshold_resolved', budget.id);
    expect(resolved.map((e) => [e.data.threshold, e.data.windowFrom])).toEqual([[50, '2026-08-03']]);
    await expectCountersEqualLedger(h.services.db);
  }, 60_000);

  it('a person budget crosses once under concurrent settlements and is shown to that person, not to another MEMBER', async () => {
    const tree = await createTree(h, { name: 'Group people', timezone: 'UTC', concurrencyLimit: 1000 });
    const teamPath = (await queryRows<{ path: string[] }>(h.services.db, sql`select path from org_units where id = ${raw(tree.teamId)}`))[0]!.path;
    const ann: Actor = { subject: 'member:ann', role: 'MEMBER', unitId: raw(tree.teamId), unitPath: teamPath, tokenId: null };
    const budget = await groupBudgetAt(tree, { window: 'MONTHLY', group: { person: 'member:ann' }, alertThresholds: [50, 80], limitCreditSeconds: '1000' }, '2026-05-01T00:00:00Z');
    // Eight jobs of ann's (holds: 422.4 of 1000, under 50 %) settled concurrently, each billed 100 cs: 50 % is passed
    // by the third settlement and every later one is above it, yet it is crossed once; only the last brings usage to
    // 800 (exactly 80 %; before it, 7 × 100 + one 52.8 hold), crossing 80 % once.
    const jobs = await Promise.all(Array.from({ length: 8 }, () => admit(tree, '2026-05-10T10:00:00Z', {}, ann)));
    await h.services.db.execute(sql`update jobs set status = 'SUBMITTED' where id in (${sql.join(jobs.map((j) => sql`${j.job.id}::uuid`), sql`, `)})`);
    for (const { job } of jobs) {
      await h.services.db.execute(
        sql`insert into job_items (job_id, upstream_id, kind, status, duration_seconds, cost_micro_cs) values (${job.id}, ${`up-${job.id}`}, 'video', 'completed', '10', ${100_000_000n})`,
      );
    }
    await Promise.all(jobs.map(({ job }) => settleJob(h.services.db, job.id, { type: 'upstream_terminal' }, new Date('2026-05-10T11:00:00Z'))));
    const crossed = await events('budget.threshold_crossed', budget.id);
    // (Ordered by threshold: the concurrent settlements' events carry their transactions' start times.)
    expect(crossed.map((e) => e.data.threshold).sort()).toEqual([50, 80]);
    expect(crossed.find((e) => e.data.threshold === 80)!.data).toMatchObject({ reason: 'PERSON', person: 'member:ann', usedMicroCs: '800000000', windowFrom: '2026-05', windowTo: '2026-05' });

    const feed = `query($id: ID!) { moneyEvents(orgUnitId: $id, kinds: [BUDGET_THRESHOLD_CROSSED]) { edges { node { kind data } } } }`;
    const annToken = await h.services.tokens.issueOperatorToken({ name: 'ann', role: 'MEMBER', unitId: raw(tree.teamId) });
    const benToken = await h.services.tokens.issueOperatorToken({ name: 'ben', role: 'MEMBER', unitId: raw(tree.teamId) });
    const managerToken = await h.services.tokens.issueOperatorToken({ name: 'meg', role: 'MANAGER', unitId: raw(tree.deptId) });
    const seen = async (token?: string) =>
      ((await h.gql(feed, { id: tree.teamId }, token)).data.moneyEvents.edges as { node: { data: { budgetId: string } } }[]).filter((e) => e.node.data.budgetId === budget.id).length;
    expect(await seen(annToken)).toBe(2);
    expect(await seen(benToken)).toBe(0);
    expect(await seen(managerToken)).toBe(2);
    expect(await seen()).toBe(2);
    await expectCountersEqualLedger(h.services.db);
  }, 60_000);
});

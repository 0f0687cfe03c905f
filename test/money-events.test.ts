// Money events against real PostgreSQL (docs/notifications.md):
// - a HARD and a SOFT budget filled by concurrent admissions emit each of 50/80/100 % exactly once per window; a
//   raise emits the matching `resolved`; a new month re-arms them;
// - a refusal burst gives one `budget.refused` per budget and hour;
// - the included pool's crossing gives one `pool.crossed` per account and period;
// - an event exists iff its cause committed (a rolled-back admission or settlement leaves none).
import { decodeGlobalID } from '@pothos/plugin-relay';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness.js';
import { avatarRequest, createTree, setBudget, type Tree } from './support/fixtures.js';
import { queryRows } from '../src/db/client.js';
import { admitJob } from '../src/jobs/admission.js';
import { recordMovement } from '../src/ledger/ledger.js';
import { settleJob } from '../src/jobs/settlement.js';
import { formatCreditSeconds } from '../src/primitives/money.js';
import type { Actor } from '../src/auth/actor.js';
import { BudgetExceededError } from '../src/errors.js';

let h: Harness;
let tree: Tree;
let actor: Actor;
const raw = (id: string) => decodeGlobalID(id).id;
const JAN = new Date('2026-01-15T10:00:00Z');
const FEB = new Date('2026-02-10T10:00:00Z');
// The account's terms apply from the month it was created in: usage is booked in the current period.
const NOW_PERIOD = new Date().toISOString().slice(0, 7);

async function admit(projectId: string, now: Date) {
  return admitJob(
    h.services.db,
    actor,
    { projectId: raw(projectId), kind: 'AVATAR_VIDEO', request: avatarRequest(), estimatedSeconds: null, idempotencyKey: null },
    h.services.admission,
    now,
  );
}

async function events(kind: string, budgetId?: string) {
  return queryRows<{ kind: string; dedupe_key: string; payload: { id: string; kind: string; orgUnitId: string; data: Record<string, unknown> } }>(
    h.services.db,
    sql`select kind, dedupe_key, payload from outbox_events where topic = 'money_event' and kind = ${kind}
        ${budgetId ? sql`and payload->'data'->>'budgetId' = ${budgetId}` : sql``} order by created_at, dedupe_key`,
  );
}

let unit = 0n;

beforeAll(async () => {
  h = await startHarness({ workers: false });
  tree = await createTree(h);
  const admin = await h.services.tokens.authenticate(h.services.db, h.adminToken);
  actor = admin;
  // One job's hold: the unit budgets are counted in.
  const { job } = await admit(tree.projectId, JAN);
  unit = job.reservedMicroCs;
  expect(unit).toBeGreaterThan(0n);
}, 60_000);
afterAll(async () => {
  await h?.close();
});

describe('budget thresholds', () => {
  it('a HARD budget filled by concurrent admissions crosses 50, 80 and 100 % exactly once each; a raise resolves them', async () => {
    // The team's budget: 10 holds; one is already there (beforeAll), 9 more fill it, the rest are refused.
    const b = await setBudget(h, { orgUnitId: tree.teamId, window: 'MONTHLY', limitCreditSeconds: formatCreditSeconds(unit * 10n), enforcement: 'HARD' });
    const budgetId = raw(b.budget.id);
    const results = await Promise.allSettled(Array.from({ length: 14 }, () => admit(tree.projectId, JAN)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(9);
    expect(results.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason instanceof BudgetExceededError)).toBe(true);

    const crossed = await events('budget.threshold_crossed', budgetId);
    expect(crossed.map((e) => e.payload.data.threshold).sort()).toEqual([100, 50, 80]);
    for (const e of crossed) {
      expect(e.payload.orgUnitId).toBe(raw(tree.teamId));
      expect(e.payload.data).toMatchObject({ enforcement: 'HARD', window: 'MONTHLY', windowFrom: '2026-01', windowTo: '2026-01', limitMicroCs: (unit * 10n).toString() });
      expect(BigInt(e.payload.data.usedMicroCs as string) * 100n).toBeGreaterThanOrEqual(BigInt(e.payload.data.threshold as number) * unit * 10n);
    }
    // The refusals of that burst (same hour): one event.
    const refused = await events('budget.refused', budgetId);
    expect(refused).toHaveLength(1);
    expect(refused[0]!.payload.data).toMatchObject({ reason: 'BUDGET', hour: '2026-01-15T10:00:00Z' });
    // More refusals in the same hour add none; the next hour has its own.
    await expect(admit(tree.projectId, new Date('2026-01-15T10:59:00Z'))).rejects.toBeInstanceOf(BudgetExceededError);
    expect(await events('budget.refused', budgetId)).toHaveLength(1);
    await expect(admit(tree.projectId, new Date('2026-01-15T11:01:00Z'))).rejects.toBeInstanceOf(BudgetExceededError);
    expect(await events('budget.refused', budgetId)).toHaveLength(2);

    // A raise to 40 holds: 10/40 = 25 %, under every threshold: each is resolved, once.
    await setBudget(h, { orgUnitId: tree.teamId, window: 'MONTHLY', limitCreditSeconds: formatCreditSeconds(unit * 40n), enforcement: 'HARD' });
    const resolved = await events('budget.threshold_resolved', budgetId);
    expect(resolved.map((e) => e.payload.data.threshold).sort()).toEqual([100, 50, 80]);
    // Filling it again past 50 % (20 holds) crosses 50 again (a new event), and only 50.
    await Promise.all(Array.from({ length: 10 }, () => admit(tree.projectId, JAN)));
    const again = await events('budget.threshold_crossed', budgetId);
    expect(again.map((e) => e.payload.data.threshold).sort()).toEqual([100, 50, 50, 80]);
    expect(new Set(again.map((e) => e.dedupe_key)).size).toBe(4);
    // A new month re-arms them: the open holds count in February's window too, so 50 % is crossed there.
    await admit(tree.projectId, FEB);
    const feb = (await events('budget.threshold_crossed', budgetId)).filter((e) => e.payload.data.windowFrom === '2026-02');
    expect(feb.map((e) => e.payload.data.threshold)).toEqual([50]);
  }, 60_000);

  it('a SOFT budget (never refuses) crosses each threshold once under 12 concurrent admissions', async () => {
    const b = await setBudget(h, { orgUnitId: tree.otherTeamId, window: 'MONTHLY', limitCreditSeconds: formatCreditSeconds(unit * 4n), enforcement: 'SOFT', alertThresholds: [50, 80, 100] });
    const budgetId = raw(b.budget.id);
    const results = await Promise.allSettled(Array.from({ length: 12 }, () => admit(tree.otherProjectId, JAN)));
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    const crossed = await events('budget.threshold_crossed', budgetId);
    expect(crossed.map((e) => e.payload.data.threshold).sort()).toEqual([100, 50, 80]);
    expect(await events('budget.refused', budgetId)).toHaveLength(0);
  }, 60_000);
});

describe('an event exists if and only if its cause committed', () => {
  it('a rolled-back admission leaves no threshold event and no alert state; the committed one leaves its event', async () => {
    const otherTree = await createTree(h, { name: 'Rollback' });
    const b = await setBudget(h, { orgUnitId: otherTree.projectId, window: 'MONTHLY', limitCreditSeconds: formatCreditSeconds(unit * 100n), enforcement: 'HARD', alertThresholds: [1] });
    const budgetId = raw(b.budget.id);
    // The admission's last write (its audit event) fails: the whole admission, holds and rollups included, rolls back.
    await h.services.db.execute(sql.raw(`
      create function fail_admission() returns trigger language plpgsql as $$
      begin raise exception 'simulated failure at the end of the admission'; end $$;
      create trigger fail_admission after insert on audit_events for each row
        when (new.action = 'job.submit' and new.after->>'projectId' = '${raw(otherTree.projectId)}') execute function fail_admission();`));
    await expect(admit(otherTree.projectId, JAN)).rejects.toThrow();
    expect(await events('budget.threshold_crossed', budgetId)).toHaveLength(0);
    expect(await queryRows(h.services.db, sql`select * from budget_alert_states where budget_id = ${budgetId}`)).toEqual([]);
    await h.services.db.execute(sql.raw(`drop trigger fail_admission on audit_events; drop function fail_admission();`));
    await admit(otherTree.projectId, JAN);
    expect(await events('budget.threshold_crossed', budgetId)).toHaveLength(1);
  }, 60_000);
});

describe('the included pool', () => {
  it('pool.crossed once per account and period, when settled usage passes the included credit-seconds; none from a rolled-back settlement', async () => {
    const deptTree = await createTree(h, { name: 'Pool' });
    const accountId = raw(deptTree.accountId);
    const [project] = await queryRows<{ path: string[] }>(h.services.db, sql`select path from org_units where id = ${raw(deptTree.projectId)}`);
    const path = project!.path;
    // Settled usage as settlements and adjustments book it (a ledger entry and the path's rollups, one transaction).
    const debit = (amount: bigint) => ({ jobId: null, accountId, orgUnitId: raw(deptTree.projectId), path, period: NOW_PERIOD, day: `${NOW_PERIOD}-15`, amountMicroCs: amount });
    // 400,000 cs settled: under the 600,000 cs included in the $5,000 tier.
    await h.services.db.transaction((tx) => recordMovement(tx, 'ADJUSTMENT', debit(400_000_000_000n)).then(() => undefined));
    // 300,000 cs more, rolled back: no event.
    await expect(
      h.services.db.transaction(async (tx) => {
        await recordMovement(tx, 'ADJUSTMENT', debit(300_000_000_000n));
        throw new Error('settlement failed before commit');
      }),
    ).rejects.toThrow('settlement failed');
    const poolEvents = async () => (await events('pool.crossed')).filter((e) => e.payload.data.accountId === accountId);
    expect(await poolEvents()).toHaveLength(0);
    // Committed: 700,000 cs > 600,000: overage has begun, once; more usage (and a concurrent debit) adds none.
    await h.services.db.transaction((tx) => recordMovement(tx, 'ADJUSTMENT', debit(300_000_000_000n)).then(() => undefined));
    await Promise.all([1, 2, 3].map(() => h.services.db.transaction((tx) => recordMovement(tx, 'ADJUSTMENT', debit(5_000_000n)).then(() => undefined))));
    const crossed = await poolEvents();
    expect(crossed).toHaveLength(1);
    expect(crossed[0]!.payload.data).toMatchObject({ period: NOW_PERIOD, includedMicroCs: '600000000000', settledMicroCs: '700000000000' });
    const [root] = await queryRows<{ id: string }>(h.services.db, sql`select id from org_units where parent_id is null`);
    expect(crossed[0]!.payload.orgUnitId).toBe(root!.id);
  }, 60_000);
});

describe('job events from settlements', () => {
  it('job.finished once per job, however often the settlement runs; hold.overdue for a job that expired after it was sent; none from a rolled-back settlement', async () => {
    const t = await createTree(h, { name: 'Settlements' });
    const { job } = await admit(t.projectId, JAN);
    await Promise.all([1, 2, 3].map(() => settleJob(h.services.db, job.id, { type: 'cancelled', by: actor })));
    const finished = (await events('job.finished')).filter((e) => e.payload.data.jobId === job.id);
    expect(finished).toHaveLength(1);
    expect(finished[0]!.payload).toMatchObject({ orgUnitId: job.projectId, data: { status: 'CANCELLED', actualMicroCs: '0', projectId: job.projectId } });

    // A job sent to HeyGen whose hold runs out: EXPIRED, released, and overdue (HeyGen may still bill it).
    const { job: sent } = await admit(t.projectId, JAN);
    await h.services.db.execute(sql`update jobs set submit_attempts = 1 where id = ${sent.id}`);
    // First a settlement that fails before its commit: neither event.
    await h.services.db.execute(sql.raw(`
      create function fail_settlement() returns trigger language plpgsql as $$
      begin raise exception 'simulated crash inside the settlement'; end $$;
      create trigger fail_settlement after insert on drift_notes for each row
        when (new.job_id = '${sent.id}') execute function fail_settlement();`));
    await expect(settleJob(h.services.db, sent.id, { type: 'expired', reason: 'hold_expired', message: 'hold expired' })).rejects.toThrow();
    const ofSent = async (kind: string) => (await events(kind)).filter((e) => e.payload.data.jobId === sent.id);
    expect(await ofSent('job.finished')).toHaveLength(0);
    expect(await ofSent('hold.overdue')).toHaveLength(0);
    await h.services.db.execute(sql.raw(`drop trigger fail_settlement on drift_notes; drop function fail_settlement();`));
    await settleJob(h.services.db, sent.id, { type: 'expired', reason: 'hold_expired', message: 'hold expired' });
    expect(await ofSent('job.finished')).toHaveLength(1);
    const overdue = await ofSent('hold.overdue');
    expect(overdue).toHaveLength(1);
    expect(overdue[0]!.payload.data).toMatchObject({ status: 'EXPIRED', reason: 'hold_expired', releasedMicroCs: sent.reservedMicroCs.toString() });
  }, 60_000);
});

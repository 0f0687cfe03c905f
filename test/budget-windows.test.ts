// Month boundaries: a new month must not forget last month's open holds, and a budget over all accounts
// counts each account's own month (usage is booked in the account's time zone).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startHarness, type Harness } from './support/harness.js';
import { createTree, setBudget, avatarRequest, type Tree } from './support/fixtures.js';
import { expectCountersEqualLedger } from './support/invariants.js';
import { admitJob } from '../src/jobs/admission.js';
import { settleJob } from '../src/jobs/settlement.js';
import { recordUsageAdjustment } from '../src/billing/adjustments.js';
import { BudgetExceededError } from '../src/errors.js';
import type { Actor } from '../src/auth/actor.js';

const admin: Actor = { subject: 'admin:test', role: 'ADMIN', unitId: null, unitPath: [], tokenId: null };
let h: Harness;

beforeAll(async () => {
  h = await startHarness({ workers: false });
});
afterAll(async () => h?.close());

const raw = (globalId: string) => decodeGlobalID(globalId).id;

function admit(tree: Tree, at: string) {
  return admitJob(
    h.services.db,
    admin,
    { projectId: raw(tree.projectId), kind: 'AVATAR_VIDEO', request: avatarRequest(), estimatedSeconds: null, idempotencyKey: null },
    h.services.admission,
    new Date(at),
  );
}

describe('monthly windows', () => {
  it("a hold admitted last month still counts after midnight, until it is settled or released", async () => {
    const tree = await createTree(h, { name: 'Boundary', timezone: 'UTC' });
    // Room for one 52.8 cs hold a month.
    await setBudget(h, { orgUnitId: tree.teamId, accountId: tree.accountId, window: 'MONTHLY', limitCreditSeconds: '60' });
    const { job } = await admit(tree, '2026-01-31T23:59:00Z');
    await expect(admit(tree, '2026-02-01T00:01:00Z')).rejects.toBeInstanceOf(BudgetExceededError);
    await settleJob(h.services.db, job.id, { type: 'cancelled', by: admin }, new Date('2026-02-01T00:02:00Z'));
    expect((await admit(tree, '2026-02-01T00:03:00Z')).job.status).toBe('RESERVED');
    await expectCountersEqualLedger(h.services.db);
  });

  it("a budget over all accounts uses each account's own month", async () => {
    const la = await createTree(h, { name: 'Los Angeles', timezone: 'America/Los_Angeles' });
    await setBudget(h, { orgUnitId: la.deptId, window: 'MONTHLY', limitCreditSeconds: '100' });
    // 50 cs settled in the account's January (Los Angeles time).
    await recordUsageAdjustment(h.services.db, admin, {
      orgUnitId: raw(la.projectId),
      accountId: raw(la.accountId),
      period: '2026-01',
      creditSeconds: '50',
      reason: 'usage before the gateway',
    });
    // 03:00 UTC on 1 February is still 31 January in Los Angeles: January's 50 cs count, 50 + 52.8 > 100.
    const refusal = await admit(la, '2026-02-01T03:00:00Z').catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(BudgetExceededError);
    expect((refusal as BudgetExceededError).availableMicroCs).toBe(50_000_000n);
    // 09:00 UTC is 1 February in Los Angeles: a new month.
    expect((await admit(la, '2026-02-01T09:00:00Z')).job.status).toBe('RESERVED');
    await expectCountersEqualLedger(h.services.db);
  });
});

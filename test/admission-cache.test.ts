// What admission computes before its one call (src/jobs/admission.ts) comes from a per-process cache of account
// metadata; gateway_admit checks it against the locked account row and answers `stale` when it changed, so a changed
// price book or time zone is used from the next admission on, even when another process (here: SQL) changed it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startHarness, type Harness } from './support/harness.js';
import { createTree, setBudget, avatarRequest, type Tree } from './support/fixtures.js';
import { expectCountersEqualLedger } from './support/invariants.js';
import { admitJob } from '../src/jobs/admission.js';
import { BudgetExceededError } from '../src/errors.js';
import type { Actor } from '../src/auth/actor.js';

const admin: Actor = { subject: 'admin:test', role: 'ADMIN', unitId: null, unitPath: [], tokenId: null };
let h: Harness;
let tree: Tree;
const raw = (globalId: string) => decodeGlobalID(globalId).id;

beforeAll(async () => {
  h = await startHarness({ workers: false });
  tree = await createTree(h, { name: 'Cached', timezone: 'UTC' });
});
afterAll(async () => h?.close());

const admit = (at: string, projectId = raw(tree.projectId)) =>
  admitJob(h.services.db, admin, { projectId, kind: 'AVATAR_VIDEO', request: avatarRequest(), estimatedSeconds: null, idempotencyKey: null }, h.services.admission, new Date(at));

describe('account metadata cached by the admitting process', () => {
  it('a price book changed behind the cache holds at the new price from the next admission on', async () => {
    expect((await admit('2026-03-10T12:00:00Z')).job.reservedMicroCs).toBe(52_800_000n); // 8 s × 6 cs × 1.10
    await h.services.db.execute(sql`update accounts set price_book = jsonb_set(price_book, '{safetyMarginPercent}', '120') where id = ${raw(tree.accountId)}`);
    expect((await admit('2026-03-10T12:01:00Z')).job.reservedMicroCs).toBe(57_600_000n); // 8 s × 6 cs × 1.20
    await expectCountersEqualLedger(h.services.db);
  });

  it("a time zone changed behind the cache books the hold in the account's new period", async () => {
    const before = await admit('2026-03-31T12:00:00Z');
    expect(before.job.holdPeriod).toBe('2026-03');
    await h.services.db.execute(sql`update accounts set timezone = 'Pacific/Kiritimati' where id = ${raw(tree.accountId)}`);
    // 12:00 UTC on 31 March is 02:00 on 1 April at UTC+14.
    const after = await admit('2026-03-31T12:00:01Z');
    expect(after.job.holdPeriod).toBe('2026-04');
    await h.services.db.execute(sql`update accounts set timezone = 'UTC' where id = ${raw(tree.accountId)}`);
    await expectCountersEqualLedger(h.services.db);
  });

  it('an account created after the cache was filled is seen by a monthly budget over all accounts', async () => {
    // Cache filled with the accounts known now; a second account (and tree) appears afterwards.
    await admit('2026-05-10T12:00:00Z');
    const other = await createTree(h, { name: 'Later', timezone: 'UTC' });
    // All accounts, this month, at the organization: room for what is already used plus one more job of this project (57.6 cs since its price book changed).
    const used = await h.services.db.execute<{ n: string }>(
      sql`select coalesce(sum(reserved_micro_cs), 0)::text as n from usage_rollups where org_unit_id = ${raw(tree.orgId)}`,
    );
    const limit = (BigInt(used.rows[0]!.n) + 57_600_000n) / 1_000_000n + 1n;
    await setBudget(h, { orgUnitId: tree.orgId, accountId: null, window: 'MONTHLY', limitCreditSeconds: limit.toString() });
    // This process has not seen the new account: the function answers `stale` (an all-accounts monthly budget adds up
    // every account's own month, so every account's period must be sent) and the admission retries with it.
    expect((await admit('2026-05-10T12:01:00Z')).job.accountId).toBe(raw(tree.accountId));
    await expect(admit('2026-05-10T12:02:00Z', raw(other.projectId))).rejects.toBeInstanceOf(BudgetExceededError);
    await expectCountersEqualLedger(h.services.db);
  });
});

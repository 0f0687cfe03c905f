// Wallet reconciliation: HeyGen's users/me against the ledger, on a schedule claimed with SKIP LOCKED.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { JOB_QUERY, SUBMIT, avatarRequest, mustMutate } from './support/fixtures.js';
import { createBillingAccount, createBillingTree, rawId } from './support/billing.js';
import { claimDueWalletSyncs } from '../src/billing/wallet.js';
import { queryRows } from '../src/db/client.js';

let h: Harness;
const KEY = 'sk_test_primary_key_0001';
const WALLET_KEY = 'sk_test_wallet_key_0002';
const BAD_KEY = 'sk_test_unknown_key_0003';

const WALLET = `query($id: ID!) { node(id: $id) { ... on Account { wallet {
  takenAt ageSeconds billingType includedCredits remainingCredits walletCurrency walletRemainingBalance creditUnitSeconds
  heygenUsedCreditSeconds gatewayUsedCreditSeconds driftCreditSeconds driftThresholdCreditSeconds driftFlagged comparedFromPeriod comparedToPeriod } } } }`;

const SYNC = `mutation($input: SyncWalletInput!) { syncWallet(input: $input) { __typename
  ... on SyncWalletPayload { wallet { heygenUsedCreditSeconds gatewayUsedCreditSeconds driftCreditSeconds driftFlagged ageSeconds billingType comparedFromPeriod comparedToPeriod } }
  ... on UpstreamError { code upstreamCode message } ... on Error { message code } } }`;

async function wallet(accountId: string): Promise<any> {
  const res = await h.gql(WALLET, { id: accountId });
  expect(res.errors).toBeUndefined();
  return res.data.node.wallet;
}

beforeAll(async () => {
  h = await startHarness({ env: { WALLET_SYNC_INTERVAL_MS: '100', WALLET_DRIFT_THRESHOLD_CS: '1000' } });
  h.sim.addAccount({ apiKey: WALLET_KEY, billingType: 'wallet', walletCredits: '2000' });
});
afterAll(async () => h?.close());

describe('wallet sync', () => {
  it('usage made outside the gateway shows up as drift of the right size', async () => {
    const account = await createBillingAccount(h, { name: 'Wallet', effectiveFrom: '2024-01' });
    const tree = await createBillingTree(h, account, 'W');
    // One job through the gateway: 20 words, 8 s × 6 cs/s = 48 cs (0.8 credits at 60 cs per credit).
    const submitted = await h.gql(SUBMIT, { input: { projectId: tree.projectA, kind: 'AVATAR_VIDEO', request: avatarRequest() } });
    const jobId = submitted.data.submitJob.job.id;
    await waitFor(async () => (await h.gql(JOB_QUERY, { id: jobId })).data.job.status === 'SUCCEEDED');

    // The scheduled sync catches up: HeyGen and the ledger agree.
    const agreed = await waitFor(async () => {
      const w = await wallet(account);
      return w && w.gatewayUsedCreditSeconds === '48' ? w : null;
    });
    expect(agreed).toMatchObject({
      billingType: 'usage_based',
      includedCredits: '2000',
      remainingCredits: '1999.2',
      creditUnitSeconds: 60,
      heygenUsedCreditSeconds: '48',
      driftCreditSeconds: '0',
      driftThresholdCreditSeconds: '1000',
      driftFlagged: false,
    });
    expect(agreed.ageSeconds).toBeGreaterThanOrEqual(0);

    // 1,234.5 cs used with the same key outside the gateway: one sync shows a drift of exactly that.
    h.sim.addOutsideUsage(KEY, '1234.5');
    const synced = await mustMutate(h, SYNC, { input: { accountId: account } }, 'syncWallet');
    expect(synced.wallet).toMatchObject({
      heygenUsedCreditSeconds: '1282.5',
      gatewayUsedCreditSeconds: '48',
      driftCreditSeconds: '1234.5',
      driftFlagged: true,
      ageSeconds: 0,
    });
    expect(synced.wallet.comparedFromPeriod).toBe(synced.wallet.comparedToPeriod);
    // The worker's next pass sees the same, and the flag is logged as a warning.
    await waitFor(async () => {
      const w = await wallet(account);
      return w.driftCreditSeconds === '1234.5' && w.driftFlagged;
    });
    await waitFor(async () => h.logs.some((line) => line.includes('wallet drift above threshold')));
  });

  it('a credit package compares its wallet balance with the ledger over the term', async () => {
    const account = await createBillingAccount(h, {
      name: 'Wallet package',
      apiKey: WALLET_KEY,
      effectiveFrom: '2026-01',
      creditPackage: { totalCreditSeconds: '120000', pricePerCreditSecondUsd: '0.008', termStart: '2026-01-01', termEnd: '2027-12-31' },
    });
    h.sim.addOutsideUsage(WALLET_KEY, '600');
    const synced = await mustMutate(h, SYNC, { input: { accountId: account } }, 'syncWallet');
    expect(synced.wallet).toMatchObject({
      billingType: 'wallet',
      heygenUsedCreditSeconds: '600',
      gatewayUsedCreditSeconds: '0',
      driftCreditSeconds: '600',
      driftFlagged: false,
      comparedFromPeriod: '2026-01',
      comparedToPeriod: '2027-12',
    });
    const w = await wallet(account);
    expect(w).toMatchObject({ walletCurrency: 'credits', walletRemainingBalance: '1990' });
  });

  it('a failing account is recorded and retried; its key never reaches a log line or an error', async () => {
    const account = await createBillingAccount(h, { name: 'Wallet broken', apiKey: BAD_KEY });
    const failed = await h.gql(SYNC, { input: { accountId: account } });
    expect(failed.data.syncWallet.__typename).toBe('UpstreamError');
    expect(JSON.stringify(failed)).not.toContain(BAD_KEY);
    const state = await waitFor(async () => {
      const [row] = await queryRows<{ last_error: string | null; failures: number }>(
        h.services.db,
        sql`select last_error, failures from wallet_sync_state where account_id = ${rawId(account)}`,
      );
      return row && row.failures > 0 ? row : null;
    });
    expect(state.last_error).toBeTruthy();
    expect(h.logs.join('\n')).not.toContain(BAD_KEY);
  });

  it('several processes claim due accounts without taking the same one twice (FOR UPDATE SKIP LOCKED)', async () => {
    await h.services.walletSync?.stop();
    h.services.walletSync = null;
    await h.services.db.execute(sql`update wallet_sync_state set next_sync_at = now() - interval '1 minute'`);
    const [{ n }] = (await queryRows<{ n: number }>(h.services.db, sql`select count(*)::int as n from accounts`)) as [{ n: number }];
    const deps = h.services.walletDeps;
    const claims = await Promise.all([claimDueWalletSyncs(deps, 2), claimDueWalletSyncs(deps, 2), claimDueWalletSyncs(deps, 2)]);
    const all = claims.flat();
    expect(new Set(all).size).toBe(all.length);
    expect(all.length).toBeGreaterThan(0);
    // Claimed accounts are scheduled an interval ahead: an immediate second round finds only the rest.
    const again = await claimDueWalletSyncs(deps, 100);
    expect(again.filter((id) => all.includes(id))).toEqual([]);
    expect(all.length + again.length).toBe(Number(n));
  });
});

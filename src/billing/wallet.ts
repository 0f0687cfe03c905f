// Wallet reconciliation: each account's `users/me` is read on a schedule and stored as a snapshot, with the
// drift against the ledger (HeyGen's used − the gateway's settled). Drift is usage made outside the gateway,
// a wrong price book, or jobs finished upstream and not settled yet; past a threshold it is flagged.
// Due accounts are claimed from a Postgres queue with FOR UPDATE SKIP LOCKED, so any number of gateway
// processes can run the sync side by side.
import { recordMoneyEvent } from '../notifications/events.js';
import { desc, eq, isNull, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { isDatabaseUnavailable, queryRows } from '../db/client.js';
import { accountsTable, orgUnitsTable, walletSnapshotsTable, walletSyncStateTable } from '../db/schema.js';
import { connectionOf, termPeriods, termsFor, type AccountRow } from '../accounts/accounts.js';
import { usageAtRoot } from './account-period.js';
import type { HeygenClient } from '../heygen/client.js';
import type { HeygenUser } from '../heygen/types.js';
import type { SecretBox } from '../secrets/secret-box.js';
import type { Logger } from '../logging.js';
import { recordAudit } from '../audit/audit.js';
import type { Actor } from '../auth/actor.js';
import { MICRO_PER_CS, parseDecimalRational } from '../primitives/money.js';
import { runPeriodically, type Periodic } from '../background/periodic.js';
import { periodOf } from '../primitives/period.js';
import * as Q from '../primitives/rational.js';
import type { Rational } from '../primitives/rational.js';
import { pricePerCs } from './terms.js';

export type WalletSnapshotRow = typeof walletSnapshotsTable.$inferSelect;

export interface WalletSyncSettings {
  intervalMs: number;
  /** |drift| above this many micro-credit-seconds is flagged (and logged as a warning). */
  driftThresholdMicroCs: bigint;
}

export interface WalletSyncDeps {
  db: Db;
  box: SecretBox;
  heygen: HeygenClient;
  logger: Logger;
  settings: WalletSyncSettings;
}

const CLAIM_BATCH = 20;

/** An amount HeyGen gave in credits (or USD, with its price), in micro-credit-seconds, rounded half up. */
function toMicroCs(value: string, perUnitCs: Rational): bigint {
  return Q.roundHalfUp(Q.mul(Q.mul(parseDecimalRational(value, { allowNegative: true }), perUnitCs), Q.fromBigInt(MICRO_PER_CS)));
}

interface Comparison {
  from: string;
  to: string;
  heygenUsedMicroCs: bigint | null;
}

/**
 * What HeyGen says was used, and over which periods:
 * - usage_based: (included − remaining credits) of the current period, plus, once the pool is spent,
 *   spending_current_usd ÷ the account's overage rate;
 * - wallet: the term's pool − the remaining balance (credits, or USD ÷ the price per credit-second),
 *   compared over the whole term (the balance is a term figure).
 */
function heygenUsage(account: AccountRow, user: HeygenUser, terms: Awaited<ReturnType<typeof termsFor>>, period: string): Comparison {
  const creditCs = Q.fromBigInt(BigInt(account.walletCreditUnitSeconds));
  if (user.usageBased) {
    const included = toMicroCs(user.usageBased.includedCredits, creditCs);
    const remaining = toMicroCs(user.usageBased.remainingCredits, creditCs);
    let used = included - remaining;
    const rate = terms?.overageRateUsd ? parseDecimalRational(terms.overageRateUsd) : Q.ZERO;
    if (remaining <= 0n && user.usageBased.spendingCurrentUsd && !Q.isZero(rate)) {
      used += toMicroCs(user.usageBased.spendingCurrentUsd, Q.div(Q.ONE, rate));
    }
    return { from: period, to: period, heygenUsedMicroCs: used };
  }
  const term = termPeriods(terms) ?? { from: period, to: period };
  if (user.wallet && terms?.poolMicroCs != null) {
    const price = pricePerCs(terms);
    if (user.wallet.currency === 'usd' && Q.isZero(price)) return { ...term, heygenUsedMicroCs: null };
    const perUnit = user.wallet.currency === 'credits' ? creditCs : Q.div(Q.ONE, price);
    return { ...term, heygenUsedMicroCs: terms.poolMicroCs - toMicroCs(user.wallet.remainingBalance, perUnit) };
  }
  return { ...term, heygenUsedMicroCs: null };
}

/** Reads HeyGen's balance for one account now, stores the snapshot and returns it. */
export async function syncWallet(deps: WalletSyncDeps, accountId: string, now = new Date(), by?: Actor): Promise<WalletSnapshotRow> {
  const { db } = deps;
  const [account] = await db.select().from(accountsTable).where(eq(accountsTable.id, accountId));
  if (!account) throw new Error(`account ${accountId} vanished`);
  const user = await deps.heygen.getUser(connectionOf(deps.box, account));
  const period = periodOf(now, account.timezone);
  const terms = await termsFor(db, account.id, period);
  const compared = heygenUsage(account, user, terms, period);
  const gateway = (await usageAtRoot(db, account.id, compared.from, compared.to)).settled;
  const drift = compared.heygenUsedMicroCs === null ? null : compared.heygenUsedMicroCs - gateway;
  const threshold = deps.settings.driftThresholdMicroCs;
  const flagged = drift !== null && (drift < 0n ? -drift : drift) > threshold;
  // A sync asked for by a caller (the syncWallet mutation) is audited with its snapshot; scheduled ones are not.
  const snapshot = await db.transaction(async (tx) => {
    const [row] = await tx
      .insert(walletSnapshotsTable)
      .values({
        accountId: account.id,
        takenAt: now,
        comparedFrom: compared.from,
        comparedTo: compared.to,
        billingType: user.billingType,
        includedCredits: user.usageBased?.includedCredits ?? null,
        remainingCredits: user.usageBased?.remainingCredits ?? null,
        spendingCapUsd: user.usageBased?.spendingCapUsd ?? null,
        spendingCurrentUsd: user.usageBased?.spendingCurrentUsd ?? null,
        walletCurrency: user.wallet?.currency ?? null,
        walletRemainingBalance: user.wallet?.remainingBalance ?? null,
        creditUnitSeconds: account.walletCreditUnitSeconds,
        heygenUsedMicroCs: compared.heygenUsedMicroCs,
        gatewayUsedMicroCs: gateway,
        driftMicroCs: drift,
        thresholdMicroCs: threshold,
        flagged,
      })
      .returning();
    await tx
      .update(walletSyncStateTable)
      .set({ lastError: null, failures: 0 })
      .where(eq(walletSyncStateTable.accountId, account.id));
    if (flagged) {
      const [root] = await tx.select({ id: orgUnitsTable.id }).from(orgUnitsTable).where(isNull(orgUnitsTable.parentId));
      if (root) {
        await recordMoneyEvent(tx, {
          kind: 'wallet.drift_flagged',
          dedupeKey: String(row!.id),
          orgUnitId: root.id,
          data: {
            accountId: account.id, snapshotId: String(row!.id), comparedFrom: compared.from, comparedTo: compared.to,
            driftMicroCs: drift!.toString(), thresholdMicroCs: threshold.toString(),
            heygenUsedMicroCs: compared.heygenUsedMicroCs?.toString() ?? null, gatewayUsedMicroCs: gateway.toString(),
          },
        });
      }
    }
    if (by) {
      const { id, accountId: _a, ...after } = row!;
      await recordAudit(tx, by, { action: 'account.syncWallet', entityType: 'Account', entityId: account.id, before: null, after: { snapshotId: id, ...after } });
    }
    return row!;
  });
  const log = { accountId: account.id, driftMicroCs: drift?.toString() ?? null, comparedFrom: compared.from, comparedTo: compared.to };
  if (flagged) deps.logger.warn({ ...log, thresholdMicroCs: threshold.toString() }, 'wallet drift above threshold: HeyGen reports usage the ledger does not have (or the reverse)');
  else deps.logger.debug(log, 'wallet snapshot stored');
  return snapshot;
}

/** Claims accounts whose sync is due (and schedules their next one), skipping those another process holds. */
export async function claimDueWalletSyncs(deps: WalletSyncDeps, limit = CLAIM_BATCH): Promise<string[]> {
  // New accounts join the queue here, due one interval later: a fleet of accounts (or a restart on a fresh
  // database) does not hit HeyGen all at once. syncWallet takes a snapshot at once when one is wanted.
  await deps.db.execute(
    sql`insert into wallet_sync_state (account_id, next_sync_at)
        select id, now() + (${deps.settings.intervalMs} * interval '1 millisecond') from accounts
        on conflict do nothing`,
  );
  const rows = await queryRows<{ account_id: string }>(
    deps.db,
    sql`update wallet_sync_state set next_sync_at = now() + (${deps.settings.intervalMs} * interval '1 millisecond'), last_attempt_at = now()
        where account_id in (
          select account_id from wallet_sync_state
          where next_sync_at <= now()
          order by next_sync_at
          limit ${limit}
          for update skip locked)
        returning account_id`,
  );
  return rows.map((r) => r.account_id);
}

/** One pass: syncs every due account; a failure is recorded on the account's queue row and retried next interval. */
export async function runWalletSyncOnce(deps: WalletSyncDeps): Promise<number> {
  const claimed = await claimDueWalletSyncs(deps);
  for (const accountId of claimed) {
    try {
      await syncWallet(deps, accountId);
    } catch (error) {
      // The database is away: the account's row cannot be written either; the loop backs off.
      if (isDatabaseUnavailable(error)) throw error;
      // The client's errors never carry the API key; the message is kept short for the queue row.
      const message = (error instanceof Error ? error.message : String(error)).slice(0, 500);
      deps.logger.warn({ accountId, err: error }, 'wallet sync failed; retrying at the next interval');
      await deps.db
        .update(walletSyncStateTable)
        .set({ lastError: message, failures: sql`${walletSyncStateTable.failures} + 1` })
        .where(eq(walletSyncStateTable.accountId, accountId));
    }
  }
  return claimed.length;
}

/** The wallet-sync queue, looked at every few seconds (each account is due once per interval). */
export function startWalletSync(deps: WalletSyncDeps, opts: { pollMs?: number; backoffMaxMs?: number } = {}): Periodic {
  const pollMs = opts.pollMs ?? Math.min(deps.settings.intervalMs, 5_000);
  return runPeriodically('wallet sync', async () => (await runWalletSyncOnce(deps)) >= CLAIM_BATCH, pollMs, deps.logger, { backoffMaxMs: opts.backoffMaxMs });
}

/** The latest snapshot of each account, in one statement (for the Account.wallet DataLoader). */
export async function latestSnapshots(db: Db, accountIds: readonly string[]): Promise<Map<string, WalletSnapshotRow>> {
  const result = new Map<string, WalletSnapshotRow>();
  if (accountIds.length === 0) return result;
  const rows = await db
    .selectDistinctOn([walletSnapshotsTable.accountId])
    .from(walletSnapshotsTable)
    .where(sql`${walletSnapshotsTable.accountId} in (${sql.join(accountIds.map((id) => sql`${id}::uuid`), sql`, `)})`)
    .orderBy(walletSnapshotsTable.accountId, desc(walletSnapshotsTable.takenAt), desc(walletSnapshotsTable.id));
  for (const row of rows) result.set(row.accountId, row);
  return result;
}

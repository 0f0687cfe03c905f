// Contract terms over time: set from a period on (past periods keep the terms they had), the published
// tiers as presets, committed shares, and the exact prices that billing and USD budgets are computed with.
import { and, desc, eq, lte } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import {
  accountTermsTable,
  accountsTable,
  committedSharesTable,
  orgUnitsTable,
  type AllocationPolicy,
} from '../db/schema.js';
import { NotFoundError, ValidationError } from '../errors.js';
import type { Actor } from '../auth/actor.js';
import { recordAudit } from '../audit/audit.js';
import { isValidTimeZone } from '../primitives/period.js';
import {
  termsFor,
  termsValues,
  type AccountRow,
  type AccountTermsRow,
  type CreditPackageTermsInput,
  type UsageBasedTermsInput,
} from '../accounts/accounts.js';
import { parseShares, presetTiers, type CommittedShare, type PresetTier } from './allocation.js';
import { latestClosedPeriod } from './closed-periods.js';
import { formatDecimal, MICRO_PER_CS, parseDecimalRational, parseUsd } from '../primitives/money.js';
import { buildOrgTree } from './org-tree.js';
import { isValidPeriod } from '../primitives/period.js';
import * as Q from '../primitives/rational.js';
import type { Rational } from '../primitives/rational.js';

export const PRESET_TIERS = Object.keys(presetTiers) as PresetTier[];

/** USD per credit-second of a credit package: the price given, or the total price ÷ the pool, exactly. */
export function pricePerCs(terms: AccountTermsRow | null): Rational {
  if (!terms) return Q.ZERO;
  if (terms.pricePerCsUsd !== null) return parseUsd(terms.pricePerCsUsd);
  if (terms.totalPriceUsd !== null && terms.poolMicroCs !== null && terms.poolMicroCs > 0n) {
    return Q.div(parseUsd(terms.totalPriceUsd), Q.rational(terms.poolMicroCs, MICRO_PER_CS));
  }
  return Q.ZERO;
}

/**
 * The USD rate a budget in USD is enforced at, per credit-second: the overage rate of a usage-based account
 * (the dearest credit-second it can buy, so the conservative conversion), the price per credit-second of a
 * credit package. Null when the terms give no positive rate.
 */
export function budgetRateUsdPerCs(account: AccountRow, terms: AccountTermsRow | null): Rational | null {
  if (!terms) return null;
  const rate = account.billingModel === 'USAGE_BASED' ? parseUsd(terms.overageRateUsd ?? '0') : pricePerCs(terms);
  return Q.isZero(rate) ? null : rate;
}

/** The committed shares in force in a period: the latest set whose effective_from is not after it. */
export async function committedSharesFor(db: Db, accountId: string, period: string): Promise<CommittedShare[]> {
  const [latest] = await db
    .select({ effectiveFrom: committedSharesTable.effectiveFrom })
    .from(committedSharesTable)
    .where(and(eq(committedSharesTable.accountId, accountId), lte(committedSharesTable.effectiveFrom, period)))
    .orderBy(desc(committedSharesTable.effectiveFrom))
    .limit(1);
  if (!latest) return [];
  const rows = await db
    .select({ unitId: committedSharesTable.orgUnitId, share: committedSharesTable.share })
    .from(committedSharesTable)
    .where(and(eq(committedSharesTable.accountId, accountId), eq(committedSharesTable.effectiveFrom, latest.effectiveFrom)))
    .orderBy(committedSharesTable.orgUnitId);
  return rows;
}

async function lockAccount(tx: Db, accountId: string): Promise<AccountRow> {
  // Same lock as admission and settlement: terms, shares and closes of one account serialise with its money.
  const [account] = await tx.select().from(accountsTable).where(eq(accountsTable.id, accountId)).for('no key update');
  if (!account) throw new NotFoundError('Account', accountId);
  return account;
}

/** A change may not reach into a closed period: its statement was billed by the old rules. */
async function requireAfterClosed(tx: Db, accountId: string, effectiveFrom: string): Promise<void> {
  if (!isValidPeriod(effectiveFrom)) throw new ValidationError('effectiveFrom', 'effectiveFrom must be a period (YYYY-MM)');
  const closed = await latestClosedPeriod(tx, accountId);
  if (closed !== null && effectiveFrom <= closed) {
    throw new ValidationError('effectiveFrom', `periods up to ${closed} are closed; a change can apply from ${closed} + 1 month on`);
  }
}

export interface SetAccountTermsInput {
  accountId: string;
  /** First period the new terms apply to; earlier periods keep theirs. */
  effectiveFrom: string;
  /** A published tier (usage-based only), exclusive with usageBased. */
  preset?: PresetTier | null;
  usageBased?: UsageBasedTermsInput | null;
  creditPackage?: CreditPackageTermsInput | null;
  /** Omitted: kept from the terms in force at effectiveFrom. */
  allocationPolicy?: AllocationPolicy | null;
  costCentreUnitId?: string | null;
  /** The account's billing time zone; applies to usage settled from now on (periods already written keep theirs). */
  timezone?: string | null;
}

/** Writes the terms version that applies from `effectiveFrom` (replacing one that starts there). Audited. */
export async function setAccountTerms(tx: Db, actor: Actor, input: SetAccountTermsInput): Promise<{ account: AccountRow; terms: AccountTermsRow }> {
  let account = await lockAccount(tx, input.accountId);
  await requireAfterClosed(tx, account.id, input.effectiveFrom);
  const base = await termsFor(tx, account.id, input.effectiveFrom);

  const given = [input.preset, input.usageBased, input.creditPackage].filter((v) => v !== undefined && v !== null).length;
  if (given > 1) throw new ValidationError('preset', 'give one of preset, usageBased or creditPackage');
  let money: Partial<typeof accountTermsTable.$inferInsert>;
  if (input.preset) {
    if (account.billingModel !== 'USAGE_BASED') throw new ValidationError('preset', 'the published tiers are usage-based terms');
    const tier = presetTiers[input.preset];
    if (!tier) throw new ValidationError('preset', `unknown preset ${String(input.preset)}`);
    money = {
      preset: input.preset,
      mmcUsd: tier.mmcUsd,
      includedMicroCs: tier.includedMicroCs,
      contractRateUsd: tier.contractRateUsd,
      overageRateUsd: tier.overageRateUsd,
      termStart: input.usageBased?.termStart ?? base?.termStart ?? null,
      termEnd: input.usageBased?.termEnd ?? base?.termEnd ?? null,
    };
  } else if (input.usageBased || input.creditPackage) {
    if (input.usageBased && account.billingModel !== 'USAGE_BASED') {
      throw new ValidationError('usageBased', 'this account is a credit package; give creditPackage terms');
    }
    if (input.creditPackage && account.billingModel !== 'CREDIT_PACKAGE') {
      throw new ValidationError('creditPackage', 'this account is usage-based; give usageBased terms or a preset');
    }
    money = { preset: null, ...termsValues({ billingModel: account.billingModel, usageBased: input.usageBased, creditPackage: input.creditPackage }) };
  } else {
    if (!base) throw new ValidationError('effectiveFrom', 'no terms are in force at effectiveFrom to keep; give the contract terms');
    const { id: _id, accountId: _a, effectiveFrom: _e, createdAt: _c, createdBy: _b, allocationPolicy: _p, costCentreUnitId: _cc, ...kept } = base;
    money = kept;
  }

  const allocationPolicy = input.allocationPolicy ?? base?.allocationPolicy ?? 'PROPORTIONAL';
  if (allocationPolicy !== 'PROPORTIONAL' && account.billingModel !== 'USAGE_BASED') {
    throw new ValidationError('allocationPolicy', 'a credit package is charged back at its price per credit-second; policies apply to usage-based accounts');
  }
  if (allocationPolicy === 'COMMITTED_SHARES' && (await committedSharesFor(tx, account.id, input.effectiveFrom)).length === 0) {
    throw new ValidationError('allocationPolicy', 'set the committed shares (setCommittedShares) for this period first');
  }
  const costCentreUnitId = input.costCentreUnitId ?? base?.costCentreUnitId ?? null;
  if (costCentreUnitId) {
    const [unit] = await tx.select({ id: orgUnitsTable.id }).from(orgUnitsTable).where(eq(orgUnitsTable.id, costCentreUnitId));
    if (!unit) throw new NotFoundError('OrgUnit', costCentreUnitId);
  }

  const timezoneBefore = account.timezone;
  if (input.timezone && input.timezone !== account.timezone) {
    if (!isValidTimeZone(input.timezone)) throw new ValidationError('timezone', 'timezone must be an IANA time zone');
    [account] = (await tx.update(accountsTable).set({ timezone: input.timezone }).where(eq(accountsTable.id, account.id)).returning()) as [AccountRow];
  }

  const [previous] = await tx
    .select()
    .from(accountTermsTable)
    .where(and(eq(accountTermsTable.accountId, account.id), eq(accountTermsTable.effectiveFrom, input.effectiveFrom)));
  const values = {
    preset: null,
    mmcUsd: null,
    includedMicroCs: null,
    contractRateUsd: null,
    overageRateUsd: null,
    poolMicroCs: null,
    pricePerCsUsd: null,
    totalPriceUsd: null,
    termStart: null,
    termEnd: null,
    ...money,
    allocationPolicy,
    costCentreUnitId,
    createdBy: actor.subject,
  };
  const [terms] = await tx
    .insert(accountTermsTable)
    .values({ accountId: account.id, effectiveFrom: input.effectiveFrom, ...values })
    .onConflictDoUpdate({ target: [accountTermsTable.accountId, accountTermsTable.effectiveFrom], set: { ...values, createdAt: new Date() } })
    .returning();
  // One event for the whole change: the terms version and, when it moved, the billing time zone.
  const timezoneChanged = account.timezone !== timezoneBefore;
  await recordAudit(tx, actor, {
    action: 'account.terms.set',
    entityType: 'Account',
    entityId: account.id,
    before: previous || timezoneChanged ? { ...previous, timezone: timezoneBefore } : null,
    after: { ...terms, timezone: account.timezone },
  });
  return { account, terms: terms! };
}

export interface SetCommittedSharesInput {
  accountId: string;
  effectiveFrom: string;
  shares: { orgUnitId: string; share: string }[];
}

/** Replaces the committed shares that apply from `effectiveFrom`: units known, each in [0, 1], summing exactly to 1. Audited. */
export async function setCommittedShares(tx: Db, actor: Actor, input: SetCommittedSharesInput): Promise<CommittedShare[]> {
  const account = await lockAccount(tx, input.accountId);
  await requireAfterClosed(tx, account.id, input.effectiveFrom);
  if (account.billingModel !== 'USAGE_BASED') throw new ValidationError('accountId', 'committed shares apply to usage-based accounts');
  const shares: CommittedShare[] = input.shares.map((s, i) => {
    try {
      // Normalised, so that "0.50" and "0.5" are stored alike.
      return { unitId: s.orgUnitId, share: formatDecimal(parseDecimalRational(s.share.trim(), { field: `shares[${i}].share` })) };
    } catch {
      throw new ValidationError(`shares[${i}].share`, `share must be a decimal string in [0, 1]: "${s.share}"`);
    }
  });
  const units = await tx.select({ id: orgUnitsTable.id, parentId: orgUnitsTable.parentId }).from(orgUnitsTable);
  parseShares(shares, buildOrgTree(units));

  const before = await tx
    .select({ unitId: committedSharesTable.orgUnitId, share: committedSharesTable.share })
    .from(committedSharesTable)
    .where(and(eq(committedSharesTable.accountId, account.id), eq(committedSharesTable.effectiveFrom, input.effectiveFrom)));
  await tx
    .delete(committedSharesTable)
    .where(and(eq(committedSharesTable.accountId, account.id), eq(committedSharesTable.effectiveFrom, input.effectiveFrom)));
  await tx.insert(committedSharesTable).values(
    shares.map((s) => ({ accountId: account.id, effectiveFrom: input.effectiveFrom, orgUnitId: s.unitId, share: s.share, createdBy: actor.subject })),
  );
  await recordAudit(tx, actor, {
    action: 'account.committed_shares.set',
    entityType: 'Account',
    entityId: account.id,
    before: before.length > 0 ? { effectiveFrom: input.effectiveFrom, shares: before } : null,
    after: { effectiveFrom: input.effectiveFrom, shares },
  });
  return committedSharesFor(tx, account.id, input.effectiveFrom);
}

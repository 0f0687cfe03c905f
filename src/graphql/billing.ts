// Billing: contract terms over time, committed shares, usage adjustments, chargeback reports, closing periods,
// wallet snapshots, and budgets shown in USD. The logic lives in src/billing; this file only exposes it.
import { encodeGlobalID } from '@pothos/plugin-relay';
import { builder } from './builder.js';
import type { GraphQLContext } from './context.js';
import { MUTATION_ERRORS } from './errors.js';
import { decodeId } from './ids.js';
import { AccountRef, BillingModelEnum, CreditPackageTermsInput, UsageBasedTermsInput } from './accounts.js';
import { BudgetRef, OrgUnitKindEnum, OrgUnitRef } from './org.js';
import { requireVisibleAccount, visibleAccount, visibleUnit } from './visibility.js';
import { ALLOCATION_POLICIES, type AllocationPolicy } from '../db/schema.js';
import type { AccountRow, AccountTermsRow } from '../accounts/accounts.js';
import type { Actor } from '../auth/actor.js';
import { NotFoundError, UpstreamError, ValidationError } from '../errors.js';
import { HeygenError } from '../heygen/client.js';
import { presetTiers, type PresetTier } from '../billing/allocation.js';
import { recordUsageAdjustment, type RecordedAdjustment } from '../billing/adjustments.js';
import {
  chargebackStatement,
  closePeriod,
  visibleAdjustments,
  visibleLines,
  type ChargebackAdjustmentData,
  type ChargebackLineData,
  type ChargebackStatement,
  type ChargebackTermsData,
} from '../billing/chargeback.js';
import { formatCents, formatDecimalForDisplay, parseCreditSeconds, parseUsd, MICRO_PER_CS } from '../primitives/money.js';
import { isValidPeriod } from '../primitives/period.js';
import * as Q from '../primitives/rational.js';
import { budgetRateUsdPerCs, PRESET_TIERS, pricePerCs, setAccountTerms, setCommittedShares } from '../billing/terms.js';
import { syncWallet, type WalletSnapshotRow } from '../billing/wallet.js';
import { accountTotalsVisible, budgetCountersVisible } from './visibility.js';
import { GroupByInput, groupByOf, personVisible } from './groups.js';
import { groupStatement, type GroupBy, type GroupPart } from '../billing/groups.js';

const AllocationPolicyEnum = builder.enumType('AllocationPolicy', {
  description:
    'How a usage-based invoice is shared (docs/billing.md). PROPORTIONAL: by usage. MARGINAL: in settlement order, the pool at MMC ÷ included, then overage. COMMITTED_SHARES: each unit its share of the MMC, plus overage by its excess over its share of the pool.',
  values: ALLOCATION_POLICIES,
});

const TermsPresetEnum = builder.enumType('TermsPreset', {
  description: "HeyGen's published Enterprise tiers: MMC $1,000 / $5,000 / $20,000 with their pools and rates.",
  values: PRESET_TIERS,
});

const BudgetLimitUnitEnum = builder.enumType('BudgetLimitUnit', {
  description: 'The unit a budget limit was given in.',
  values: ['CREDIT_SECONDS', 'USD'] as const,
});

async function requireAccount(ctx: GraphQLContext, globalId: string): Promise<AccountRow> {
  return requireVisibleAccount(ctx, decodeId(globalId, 'Account'));
}

const usdOrNull = (value: string | null) => (value === null ? null : formatDecimalForDisplay(parseUsd(value)));

// ——— terms ———

const AccountTermsRef = builder.objectRef<AccountTermsRow & { billingModel: AccountRow['billingModel'] }>('AccountTerms').implement({
  description: 'One version of an account\'s contract terms: it applies from `effectiveFrom` until the next version.',
  fields: (t) => ({
    effectiveFrom: t.field({ type: 'Period', description: 'First period these terms apply to.', resolve: (r) => r.effectiveFrom }),
    preset: t.field({
      type: TermsPresetEnum,
      nullable: true,
      description: 'The published tier these terms came from; null for custom terms.',
      resolve: (r) => (r.preset && r.preset in presetTiers ? (r.preset as PresetTier) : null),
    }),
    mmcUsd: t.field({ type: 'Usd', nullable: true, description: 'Usage-based: monthly minimum commitment, billed flat.', resolve: (r) => usdOrNull(r.mmcUsd) }),
    includedCreditSeconds: t.field({
      type: 'CreditSeconds',
      nullable: true,
      description: 'Usage-based: credit-seconds included per month.',
      resolve: (r) => r.includedMicroCs,
    }),
    contractRateUsd: t.field({ type: 'Usd', nullable: true, description: 'Usage-based: contract rate per credit-second (informational).', resolve: (r) => usdOrNull(r.contractRateUsd) }),
    overageRateUsd: t.field({ type: 'Usd', nullable: true, description: 'Usage-based: rate per credit-second past the pool.', resolve: (r) => usdOrNull(r.overageRateUsd) }),
    totalCreditSeconds: t.field({ type: 'CreditSeconds', nullable: true, description: 'Credit package: the pool bought for the term.', resolve: (r) => r.poolMicroCs }),
    pricePerCreditSecondUsd: t.field({
      type: 'Usd',
      nullable: true,
      description: 'Credit package: price per credit-second (from the total price: shown rounded to 12 decimals when not a finite decimal; billed exactly).',
      resolve: (r) => (r.billingModel === 'CREDIT_PACKAGE' ? formatDecimalForDisplay(pricePerCs(r)) : null),
    }),
    totalPriceUsd: t.field({ type: 'Usd', nullable: true, description: 'Credit package: total price, when the contract gives one.', resolve: (r) => usdOrNull(r.totalPriceUsd) }),
    termStart: t.string({ nullable: true, description: 'Contract term start (YYYY-MM-DD).', resolve: (r) => r.termStart }),
    termEnd: t.string({ nullable: true, description: 'Contract term end, inclusive (YYYY-MM-DD).', resolve: (r) => r.termEnd }),
    allocationPolicy: t.field({ type: AllocationPolicyEnum, description: 'Allocation policy (usage-based).', resolve: (r) => r.allocationPolicy }),
    costCentre: t.field({
      type: OrgUnitRef,
      nullable: true,
      description: 'Receives unallocated commitment and forfeited credits (null: the organization, or a unit the caller may not see).',
      resolve: async (r, _a, ctx) => {
        if (r.costCentreUnitId) return visibleUnit(ctx, r.costCentreUnitId);
        return null;
      },
    }),
    createdAt: t.field({ type: 'DateTime', description: 'When this version was written.', resolve: (r) => r.createdAt }),
  }),
});

const CommittedShareRef = builder.objectRef<{ orgUnitId: string; share: string; effectiveFrom: string }>('CommittedShare').implement({
  description: "A unit's share of the commitment under COMMITTED_SHARES.",
  fields: (t) => ({
    orgUnit: t.field({ type: OrgUnitRef, nullable: true, description: 'The unit (null when the caller may not see it).', resolve: (s, _a, ctx) => visibleUnit(ctx, s.orgUnitId) }),
    share: t.string({ description: 'Share in [0, 1] as an exact decimal; a set sums to exactly 1.', resolve: (s) => s.share }),
    effectiveFrom: t.field({ type: 'Period', description: 'First period of the set this share belongs to.', resolve: (s) => s.effectiveFrom }),
  }),
});

// ——— wallet ———

const WalletSnapshotRef = builder.objectRef<WalletSnapshotRow>('WalletSnapshot').implement({
  description:
    "HeyGen's own balance (GET users/me) at one moment, converted to credit-seconds, and the drift against the gateway's ledger (HeyGen's used − the gateway's settled).",
  fields: (t) => ({
    takenAt: t.field({ type: 'DateTime', description: 'When HeyGen was asked.', resolve: (w) => w.takenAt }),
    ageSeconds: t.int({ description: 'Seconds since the snapshot was taken.', resolve: (w, _a, ctx) => Math.max(0, Math.floor((ctx.now.getTime() - w.takenAt.getTime()) / 1000)) }),
    billingType: t.string({ nullable: true, description: "HeyGen's billing_type (usage_based, wallet, …).", resolve: (w) => w.billingType }),
    comparedFromPeriod: t.field({ type: 'Period', description: 'First period of the comparison (usage-based: the current period).', resolve: (w) => w.comparedFrom }),
    comparedToPeriod: t.field({ type: 'Period', description: 'Last period of the comparison (credit package: the term end).', resolve: (w) => w.comparedTo }),
    includedCredits: t.string({ nullable: true, description: 'usage_based.included_credits as HeyGen sent it (credits).', resolve: (w) => w.includedCredits }),
    remainingCredits: t.string({ nullable: true, description: 'usage_based.remaining_credits as HeyGen sent it (credits).', resolve: (w) => w.remainingCredits }),
    spendingCapUsd: t.field({ type: 'Usd', nullable: true, description: 'usage_based.spending_cap_usd.', resolve: (w) => w.spendingCapUsd }),
    spendingCurrentUsd: t.field({ type: 'Usd', nullable: true, description: 'usage_based.spending_current_usd.', resolve: (w) => w.spendingCurrentUsd }),
    walletCurrency: t.string({ nullable: true, description: 'wallet.currency (credits or usd).', resolve: (w) => w.walletCurrency }),
    walletRemainingBalance: t.string({ nullable: true, description: 'wallet.remaining_balance as HeyGen sent it.', resolve: (w) => w.walletRemainingBalance }),
    creditUnitSeconds: t.int({ description: 'Credit-seconds per HeyGen credit used for the conversion.', resolve: (w) => w.creditUnitSeconds }),
    heygenUsedCreditSeconds: t.field({
      type: 'CreditSeconds',
      nullable: true,
      description: 'What HeyGen says was used over the compared periods (null when its answer has no comparable figure).',
      resolve: (w) => w.heygenUsedMicroCs,
    }),
    gatewayUsedCreditSeconds: t.field({ type: 'CreditSeconds', description: "The ledger's settled usage over the same periods.", resolve: (w) => w.gatewayUsedMicroCs }),
    driftCreditSeconds: t.field({
      type: 'CreditSeconds',
      nullable: true,
      description: 'heygenUsed − gatewayUsed: usage made outside the gateway, a wrong price book, or jobs not settled yet.',
      resolve: (w) => w.driftMicroCs,
    }),
    driftThresholdCreditSeconds: t.field({ type: 'CreditSeconds', description: 'The configured threshold (WALLET_DRIFT_THRESHOLD_CS).', resolve: (w) => w.thresholdMicroCs }),
    driftFlagged: t.boolean({ description: 'True when |drift| is above the threshold.', resolve: (w) => w.flagged }),
  }),
});

builder.objectFields(AccountRef, (t) => ({
  walletCreditUnitSeconds: t.int({ description: "Credit-seconds per credit in HeyGen's users/me (unconfirmed upstream; default 60).", resolve: (a) => a.walletCreditUnitSeconds }),
  wallet: t.field({
    type: WalletSnapshotRef,
    nullable: true,
    description:
      "The last snapshot of HeyGen's balance for this account, with its age and drift (null before the first sync, and for callers who may not read the account's totals: see Account.period).",
    resolve: (a, _args, ctx) => (accountTotalsVisible(ctx) ? ctx.loaders.walletByAccount.load(a.id) : null),
  }),
  terms: t.field({
    type: AccountTermsRef,
    nullable: true,
    description: 'The contract terms in force in a period (default: the current one).',
    args: { period: t.arg({ type: 'Period', required: false, description: 'YYYY-MM; default: now.' }) },
    resolve: async (a, args, ctx) => {
      const terms = await ctx.loaders.termsAt(a.id, args.period ?? ctx.loaders.periodNow(a.timezone));
      return terms ? { ...terms, billingModel: a.billingModel } : null;
    },
  }),
  termsHistory: t.field({
    type: [AccountTermsRef],
    description: 'Every version of the contract terms, oldest first.',
    resolve: async (a, _args, ctx) => (await ctx.loaders.termsByAccount.load(a.id)).map((terms) => ({ ...terms, billingModel: a.billingModel })),
  }),
  committedShares: t.field({
    type: [CommittedShareRef],
    description:
      'The committed shares in force in a period (default: the current one), of the units the caller may read (ADMIN and FINANCE: all, summing to 1); empty when none are set.',
    args: { period: t.arg({ type: 'Period', required: false, description: 'YYYY-MM; default: now.' }) },
    resolve: async (a, args, ctx) => {
      const period = args.period ?? ctx.loaders.periodNow(a.timezone);
      const rows = (await ctx.loaders.sharesByAccount.load(a.id)).filter((s) => s.effectiveFrom <= period);
      const latest = rows.at(-1)?.effectiveFrom;
      const set = rows.filter((s) => s.effectiveFrom === latest);
      // Only shares of units the caller may read: a row per hidden unit would count them.
      const visible = await Promise.all(set.map((s) => visibleUnit(ctx, s.orgUnitId)));
      return set.filter((_s, i) => visible[i] !== null).map((s) => ({ orgUnitId: s.orgUnitId, share: s.share, effectiveFrom: s.effectiveFrom }));
    },
  }),
}));

// ——— budgets in USD ———

builder.objectFields(BudgetRef, (t) => ({
  limitUnit: t.field({
    type: BudgetLimitUnitEnum,
    description: 'The unit the limit was given in; it is always enforced in credit-seconds.',
    resolve: (b) => (b.limitUsd === null ? 'CREDIT_SECONDS' : 'USD'),
  }),
  limitUsd: t.field({
    type: 'Usd',
    nullable: true,
    description:
      "The limit in US dollars: as given, or limitCreditSeconds × the account's overage rate (a credit package: its price per credit-second). Null for a budget over all accounts set in credit-seconds, and for a budget above the caller's own subtree (see limitCreditSeconds).",
    resolve: async (b, _a, ctx) => {
      if (!(await budgetCountersVisible(ctx, b))) return null;
      if (b.limitUsd !== null) return formatDecimalForDisplay(parseUsd(b.limitUsd), 2);
      if (!b.accountId) return null;
      const account = await ctx.loaders.accountById.load(b.accountId);
      if (!account) return null;
      const rate = budgetRateUsdPerCs(account, await ctx.loaders.termsAt(account.id, ctx.loaders.periodNow(account.timezone)));
      return rate ? formatDecimalForDisplay(Q.mul(Q.rational(b.limitMicroCs, MICRO_PER_CS), rate), 2) : null;
    },
  }),
}));

// ——— chargeback ———

interface GroupView {
  group: GroupBy;
  part: GroupPart;
}

/** A line with its groups when the report was asked for a grouping (null otherwise). */
type LineShape = ChargebackLineData & { groups: GroupView[] | null };

interface ReportShape {
  statement: ChargebackStatement;
  lines: LineShape[];
  adjustments: ChargebackAdjustmentData[];
}

async function reportFor(db: GraphQLContext['db'], actor: Actor, statement: ChargebackStatement, group: GroupBy | null): Promise<ReportShape> {
  const groups = group ? await groupStatement(db, statement, group) : null;
  const lines = visibleLines(actor, statement).map((l) => ({
    ...l,
    groups: groups
      ? groups
          .get(l.orgUnitId)!
          .filter((part) => group!.by !== 'PERSON' || personVisible(actor, part.value))
          .map((part) => ({ group: group!, part }))
      : null,
  }));
  return { statement, lines, adjustments: visibleAdjustments(actor, statement) };
}

const ChargebackGroupRef = builder.objectRef<GroupView>('ChargebackGroup').implement({
  description:
    "One group of a chargeback line: a tag value or a person, or the rest (value null: jobs without the tag, or usage with no person: adjustments). A line's groups add up to it to the cent (docs/billing.md); a MEMBER or SERVICE caller sees only its own person.",
  fields: (t) => ({
    tagKey: t.string({ nullable: true, description: 'TAG grouping: the key.', resolve: (g) => (g.group.by === 'TAG' ? g.group.tagKey : null) }),
    value: t.string({ nullable: true, description: 'The tag value or the person; null for the rest.', resolve: (g) => g.part.value }),
    label: t.string({
      description: 'The value, or `untagged` / `no person` for the rest.',
      resolve: (g) => g.part.value ?? (g.group.by === 'PERSON' ? 'no person' : 'untagged'),
    }),
    creditSeconds: t.field({ type: 'CreditSeconds', description: "Settled usage of the group in the line's subtree.", resolve: (g) => g.part.microCs }),
    ownCreditSeconds: t.field({ type: 'CreditSeconds', description: 'Settled usage of the group on the unit itself.', resolve: (g) => g.part.ownMicroCs }),
    costUsd: t.field({ type: 'Usd', description: "The group's part of the line's costUsd.", resolve: (g) => formatCents(g.part.cents) }),
    ownCostUsd: t.field({ type: 'Usd', description: "The group's part of the line's ownCostUsd.", resolve: (g) => formatCents(g.part.ownCents) }),
  }),
});

const ChargebackLineRef = builder.objectRef<LineShape>('ChargebackLine').implement({
  description:
    "One unit's part of the invoice. Subtree fields (creditSeconds, inPool…, overage…, costUsd) include everything under the unit, so a line equals its own part plus its children's lines.",
  fields: (t) => ({
    orgUnit: t.field({
      type: OrgUnitRef,
      description: 'The unit.',
      resolve: async (l, _a, ctx) => {
        const unit = await ctx.loaders.unitById.load(l.orgUnitId);
        if (!unit) throw new NotFoundError('OrgUnit', l.orgUnitId);
        return unit;
      },
    }),
    name: t.string({ description: 'Name of the unit when the statement was made.', resolve: (l) => l.name }),
    kind: t.field({ type: OrgUnitKindEnum, description: 'Level of the unit.', resolve: (l) => l.kind }),
    depth: t.int({ description: '0 for the organization.', resolve: (l) => l.depth }),
    creditSeconds: t.field({ type: 'CreditSeconds', description: 'Settled usage of the subtree in the period.', resolve: (l) => parseCreditSeconds(l.creditSeconds) }),
    inPoolCreditSeconds: t.field({ type: 'CreditSeconds', description: 'Of creditSeconds, the part inside the included pool.', resolve: (l) => parseCreditSeconds(l.inPoolCreditSeconds) }),
    overageCreditSeconds: t.field({ type: 'CreditSeconds', description: 'Of creditSeconds, the part billed as overage.', resolve: (l) => parseCreditSeconds(l.overageCreditSeconds) }),
    costUsd: t.field({ type: 'Usd', description: 'Cost of the subtree, in cents that add up exactly to the invoice.', resolve: (l) => l.costUsd }),
    ownCreditSeconds: t.field({ type: 'CreditSeconds', description: 'Usage recorded on this unit itself.', resolve: (l) => parseCreditSeconds(l.ownCreditSeconds) }),
    ownInPoolCreditSeconds: t.field({ type: 'CreditSeconds', description: 'Of ownCreditSeconds, the part in the pool.', resolve: (l) => parseCreditSeconds(l.ownInPoolCreditSeconds) }),
    ownOverageCreditSeconds: t.field({ type: 'CreditSeconds', description: 'Of ownCreditSeconds, the overage.', resolve: (l) => parseCreditSeconds(l.ownOverageCreditSeconds) }),
    ownCostUsd: t.field({
      type: 'Usd',
      description: 'Charged to this unit itself; on the cost centre this includes unallocated commitment and forfeited credits.',
      resolve: (l) => l.ownCostUsd,
    }),
    groups: t.field({
      type: [ChargebackGroupRef],
      nullable: true,
      description: "The line split by the report's groupBy (null without one): values in order, the rest last.",
      resolve: (l) => l.groups,
    }),
  }),
});

const ChargebackAdjustmentRef = builder.objectRef<ChargebackAdjustmentData>('ChargebackAdjustment').implement({
  description: 'A usage adjustment included in the statement.',
  fields: (t) => ({
    id: t.id({ description: 'Global id of the adjustment (the same as UsageAdjustment.id).', resolve: (a) => encodeGlobalID('UsageAdjustment', a.id) }),
    orgUnit: t.field({ type: OrgUnitRef, nullable: true, description: 'The unit adjusted.', resolve: (a, _x, ctx) => visibleUnit(ctx, a.orgUnitId) }),
    creditSeconds: t.field({ type: 'CreditSeconds', description: 'Amount (negative: a correction downwards).', resolve: (a) => parseCreditSeconds(a.creditSeconds, { allowNegative: true }) }),
    reason: t.string({ description: 'Why.', resolve: (a) => a.reason }),
    requestedPeriod: t.string({ description: 'The period asked for; when it differs from the report period, that one was closed.', resolve: (a) => a.requestedPeriod }),
    createdBy: t.string({ description: 'Who recorded it.', resolve: (a) => a.createdBy }),
    createdAt: t.field({ type: 'DateTime', description: 'When.', resolve: (a) => new Date(a.createdAt) }),
  }),
});

const ChargebackTermsRef = builder.objectRef<ChargebackTermsData>('ChargebackTerms').implement({
  description: 'The contract terms a statement was computed with.',
  fields: (t) => ({
    effectiveFrom: t.string({ description: 'First period of this version of the terms.', resolve: (x) => x.effectiveFrom }),
    preset: t.string({ nullable: true, description: 'Published tier, if any.', resolve: (x) => x.preset }),
    mmcUsd: t.field({ type: 'Usd', nullable: true, description: 'Monthly minimum commitment.', resolve: (x) => usdOrNull(x.mmcUsd) }),
    includedCreditSeconds: t.field({ type: 'CreditSeconds', nullable: true, description: 'Monthly pool.', resolve: (x) => (x.includedCreditSeconds === null ? null : parseCreditSeconds(x.includedCreditSeconds)) }),
    contractRateUsd: t.field({ type: 'Usd', nullable: true, description: 'Contract rate per credit-second.', resolve: (x) => usdOrNull(x.contractRateUsd) }),
    overageRateUsd: t.field({ type: 'Usd', nullable: true, description: 'Overage rate per credit-second.', resolve: (x) => usdOrNull(x.overageRateUsd) }),
    totalCreditSeconds: t.field({ type: 'CreditSeconds', nullable: true, description: 'Credit package pool.', resolve: (x) => (x.totalCreditSeconds === null ? null : parseCreditSeconds(x.totalCreditSeconds)) }),
    pricePerCreditSecondUsd: t.field({ type: 'Usd', nullable: true, description: 'Credit package price per credit-second, when given.', resolve: (x) => usdOrNull(x.pricePerCreditSecondUsd) }),
    totalPriceUsd: t.field({ type: 'Usd', nullable: true, description: 'Credit package total price, when given.', resolve: (x) => usdOrNull(x.totalPriceUsd) }),
    termStart: t.string({ nullable: true, description: 'Term start.', resolve: (x) => x.termStart }),
    termEnd: t.string({ nullable: true, description: 'Term end (inclusive).', resolve: (x) => x.termEnd }),
  }),
});

const ChargebackReportRef = builder.objectRef<ReportShape>('ChargebackReport').implement({
  description:
    "Who pays which part of one account's invoice for one period. Provisional while the period is open; frozen once closePeriod ran. Lines sum exactly to the invoice (largest remainder, docs/billing.md). Callers other than ADMIN and FINANCE get only the lines of their own subtree.",
  fields: (t) => ({
    account: t.field({
      type: AccountRef,
      description: 'The account.',
      resolve: async (r, _a, ctx) => {
        const account = await ctx.loaders.accountById.load(r.statement.accountId);
        if (!account) throw new NotFoundError('Account', r.statement.accountId);
        return account;
      },
    }),
    period: t.string({ description: 'The period (YYYY-MM, in the account time zone).', resolve: (r) => r.statement.period }),
    timezone: t.string({ description: 'Time zone the period is a calendar month in.', resolve: (r) => r.statement.timezone }),
    periodStart: t.field({ type: 'DateTime', description: 'First instant of the period.', resolve: (r) => new Date(r.statement.periodStart) }),
    periodEnd: t.field({ type: 'DateTime', description: 'First instant after the period.', resolve: (r) => new Date(r.statement.periodEnd) }),
    billingModel: t.field({ type: BillingModelEnum, description: 'Billing model.', resolve: (r) => r.statement.billingModel }),
    policy: t.field({
      type: AllocationPolicyEnum,
      nullable: true,
      description: 'Allocation policy applied (null for a credit package, charged at its price per credit-second).',
      resolve: (r) => r.statement.policy as AllocationPolicy | null,
    }),
    closed: t.boolean({ description: 'True once the period is closed: the statement is then immutable.', resolve: (r) => r.statement.closed }),
    closedAt: t.field({ type: 'DateTime', nullable: true, description: 'When it was closed.', resolve: (r) => (r.statement.closedAt ? new Date(r.statement.closedAt) : null) }),
    closedBy: t.string({ nullable: true, description: 'Who closed it.', resolve: (r) => r.statement.closedBy }),
    invoiceTotalUsd: t.field({
      type: 'Usd',
      description: 'Usage-based: MMC + overage × overage rate. Credit package: usage × price (+ forfeited credits in the term\'s last period).',
      resolve: (r) => r.statement.invoiceTotalUsd,
    }),
    mmcUsd: t.field({ type: 'Usd', description: 'The monthly minimum commitment (0 for a credit package).', resolve: (r) => r.statement.mmcUsd }),
    overageUsd: t.field({ type: 'Usd', description: 'Overage charges: invoiceTotal − MMC (0 for a credit package).', resolve: (r) => r.statement.overageUsd }),
    drawdownUsd: t.field({ type: 'Usd', description: 'Credit package: credits used this period × price.', resolve: (r) => r.statement.drawdownUsd }),
    forfeitedUsd: t.field({ type: 'Usd', description: 'Credit package: credits unused at the end of the term × price, on the cost centre.', resolve: (r) => r.statement.forfeitedUsd }),
    usedCreditSeconds: t.field({ type: 'CreditSeconds', description: 'Settled usage of the period (adjustments included).', resolve: (r) => parseCreditSeconds(r.statement.usedCreditSeconds) }),
    includedCreditSeconds: t.field({
      type: 'CreditSeconds',
      description: 'Usage-based: the monthly pool. Credit package: the pool left when the period began.',
      resolve: (r) => parseCreditSeconds(r.statement.includedCreditSeconds),
    }),
    overageCreditSeconds: t.field({ type: 'CreditSeconds', description: 'Usage past the pool.', resolve: (r) => parseCreditSeconds(r.statement.overageCreditSeconds) }),
    remainingCreditSeconds: t.field({
      type: 'CreditSeconds',
      description: 'Pool left after this period (credit package: the remaining balance of the term).',
      resolve: (r) => parseCreditSeconds(r.statement.remainingCreditSeconds),
    }),
    forfeitedCreditSeconds: t.field({ type: 'CreditSeconds', description: 'Credit package: credits forfeited at the end of the term.', resolve: (r) => parseCreditSeconds(r.statement.forfeitedCreditSeconds) }),
    costCentre: t.field({
      type: OrgUnitRef,
      nullable: true,
      description: 'The unit that carries unallocated commitment and forfeited credits (null if the caller may not see it).',
      resolve: (r, _a, ctx) => visibleUnit(ctx, r.statement.costCentreUnitId),
    }),
    terms: t.field({ type: ChargebackTermsRef, description: 'The terms the statement was computed with.', resolve: (r) => r.statement.terms }),
    adjustments: t.field({ type: [ChargebackAdjustmentRef], description: 'Usage adjustments booked in this period (on lines the caller may read).', resolve: (r) => r.adjustments }),
    lines: t.field({
      type: [ChargebackLineRef],
      description: 'One line per unit at every level (organization, departments, teams, projects), in tree order: those the caller may read.',
      resolve: (r) => r.lines,
    }),
  }),
});

function requirePeriodArg(period: string): string {
  const trimmed = period.trim();
  if (!isValidPeriod(trimmed)) throw new ValidationError('period', 'period must be a month as YYYY-MM');
  return trimmed;
}

builder.queryFields((t) => ({
  chargebackReport: t.field({
    type: ChargebackReportRef,
    authScopes: { authenticated: true },
    description:
      "Chargeback of one account's invoice for one period (docs/billing.md). An account the caller may not see reads as not found; callers other than ADMIN and FINANCE get the lines of their own subtree only.",
    args: {
      accountId: t.arg.id({ required: true, description: 'Global id of the account.' }),
      period: t.arg.string({ required: true, description: 'Period as YYYY-MM (a calendar month in the account time zone).' }),
      groupBy: t.arg({ type: GroupByInput, required: false, description: 'Split every line by tag value or by person (ChargebackLine.groups).' }),
    },
    resolve: async (_r, args, ctx) => {
      const account = await requireAccount(ctx, String(args.accountId));
      const group = args.groupBy ? groupByOf(args.groupBy) : null;
      const statement = await chargebackStatement(ctx.db, account.id, requirePeriodArg(args.period));
      return reportFor(ctx.db, ctx.actor!, statement, group);
    },
  }),
}));

// ——— mutations ———

const UsageAdjustmentRef = builder.objectRef<RecordedAdjustment>('UsageAdjustment').implement({
  description: 'A usage adjustment: one ADJUSTMENT ledger entry with its reason.',
  fields: (t) => ({
    id: t.id({ description: 'Global id of the adjustment.', resolve: (a) => encodeGlobalID('UsageAdjustment', a.id) }),
    orgUnit: t.field({ type: OrgUnitRef, nullable: true, description: 'The unit adjusted.', resolve: (a, _x, ctx) => visibleUnit(ctx, a.orgUnitId) }),
    account: t.field({ type: AccountRef, nullable: true, description: 'The account.', resolve: (a, _x, ctx) => visibleAccount(ctx, a.accountId) }),
    creditSeconds: t.field({ type: 'CreditSeconds', description: 'Amount (negative: a correction downwards).', resolve: (a) => a.amountMicroCs }),
    reason: t.string({ description: 'Why.', resolve: (a) => a.reason }),
    requestedPeriod: t.field({ type: 'Period', description: 'The period asked for.', resolve: (a) => a.requestedPeriod }),
    period: t.field({ type: 'Period', description: 'The period it was booked in.', resolve: (a) => a.period }),
    movedToNextOpenPeriod: t.boolean({
      description: 'True when the requested period was closed and the adjustment went to the next open period instead.',
      resolve: (a) => a.period !== a.requestedPeriod,
    }),
    createdBy: t.string({ description: 'Who recorded it.', resolve: (a) => a.createdBy }),
    createdAt: t.field({ type: 'DateTime', description: 'When.', resolve: (a) => a.createdAt }),
  }),
});

builder.mutationFields((t) => ({
  setAccountTerms: t.fieldWithInput({
    type: builder.simpleObject('SetAccountTermsPayload', {
      description: 'The account and the terms version written.',
      fields: (f) => ({
        account: f.field({ type: AccountRef, description: 'The account.' }),
        terms: f.field({ type: AccountTermsRef, description: 'The version that applies from effectiveFrom.' }),
      }),
    }),
    errors: { types: MUTATION_ERRORS, union: { description: 'The payload of a contract terms change, or an expected failure.' } },
    typeOptions: { description: 'Input of a contract terms change.' },
    argOptions: { description: 'Input of a contract terms change.' },
    authScopes: { finance: true },
    description:
      'Sets the contract terms from a period on (ADMIN, FINANCE). Earlier periods keep the terms they had; a version starting in the same period is replaced; closed periods cannot be changed. Money terms, policy and cost centre left out are kept from the version in force. Audited.',
    input: {
      accountId: t.input.id({ required: true, description: 'Global id of the account.' }),
      effectiveFrom: t.input.field({ type: 'Period', required: true, description: 'First period the terms apply to.' }),
      preset: t.input.field({ type: TermsPresetEnum, required: false, description: 'A published tier (usage-based), instead of usageBased.' }),
      usageBased: t.input.field({ type: UsageBasedTermsInput, required: false, description: 'Custom usage-based terms.' }),
      creditPackage: t.input.field({ type: CreditPackageTermsInput, required: false, description: 'Credit-package terms.' }),
      allocationPolicy: t.input.field({ type: AllocationPolicyEnum, required: false, description: 'Allocation policy (usage-based; COMMITTED_SHARES needs shares set first).' }),
      costCentreUnitId: t.input.id({ required: false, description: 'Global id of the unit that carries unallocated cost (default: the organization).' }),
      timezone: t.input.string({ required: false, description: 'Billing time zone (IANA); applies to usage settled from now on.' }),
    },
    resolve: async (_r, { input }, ctx) => {
      const actor = ctx.actor!;
      const account = await requireAccount(ctx, String(input.accountId));
      const costCentreUnitId = input.costCentreUnitId != null ? decodeId(String(input.costCentreUnitId), 'OrgUnit') : null;
      const result = await ctx.db.transaction((tx) =>
        setAccountTerms(tx, actor, {
          accountId: account.id,
          effectiveFrom: input.effectiveFrom,
          preset: (input.preset as PresetTier | null | undefined) ?? null,
          usageBased: input.usageBased ?? null,
          creditPackage: input.creditPackage ?? null,
          allocationPolicy: input.allocationPolicy ?? null,
          costCentreUnitId,
          timezone: input.timezone ?? null,
        }),
      );
      ctx.loaders.accountById.clear(account.id);
      ctx.loaders.termsByAccount.clear(account.id);
      return { account: result.account, terms: { ...result.terms, billingModel: result.account.billingModel } };
    },
  }),
  setCommittedShares: t.fieldWithInput({
    type: builder.simpleObject('SetCommittedSharesPayload', {
      description: 'The committed shares as set.',
      fields: (f) => ({
        account: f.field({ type: AccountRef, description: 'The account.' }),
        shares: f.field({ type: [CommittedShareRef], description: 'The shares that apply from effectiveFrom.' }),
      }),
    }),
    errors: { types: MUTATION_ERRORS, union: { description: 'The payload of setting committed shares, or an expected failure.' } },
    typeOptions: { description: 'Input of setting committed shares.' },
    argOptions: { description: 'Input of setting committed shares.' },
    authScopes: { finance: true },
    description:
      "Sets each unit's share of the commitment for COMMITTED_SHARES from a period on (ADMIN, FINANCE). Shares are exact decimals in [0, 1] summing exactly to 1; a unit's own usage is compared with its share of the pool. Audited.",
    input: {
      accountId: t.input.id({ required: true, description: 'Global id of the account.' }),
      effectiveFrom: t.input.field({ type: 'Period', required: true, description: 'First period the shares apply to.' }),
      shares: t.input.field({
        type: [
          builder.inputType('CommittedShareInput', {
            description: "One unit's share.",
            fields: (f) => ({
              orgUnitId: f.id({ required: true, description: 'Global id of the unit.' }),
              share: f.string({ required: true, description: 'Decimal in [0, 1], e.g. "0.4".' }),
            }),
          }),
        ],
        required: true,
        description: 'The shares; units not listed hold 0.',
      }),
    },
    resolve: async (_r, { input }, ctx) => {
      const actor = ctx.actor!;
      const account = await requireAccount(ctx, String(input.accountId));
      const shares = input.shares.map((s) => ({ orgUnitId: decodeId(String(s.orgUnitId), 'OrgUnit'), share: s.share }));
      const rows = await ctx.db.transaction((tx) => setCommittedShares(tx, actor, { accountId: account.id, effectiveFrom: input.effectiveFrom, shares }));
      return { account, shares: rows.map((r) => ({ orgUnitId: r.unitId, share: r.share, effectiveFrom: input.effectiveFrom })) };
    },
  }),
  recordUsageAdjustment: t.fieldWithInput({
    type: builder.simpleObject('RecordUsageAdjustmentPayload', {
      description: 'The adjustment as booked.',
      fields: (f) => ({ adjustment: f.field({ type: UsageAdjustmentRef, description: 'The adjustment.' }) }),
    }),
    errors: { types: MUTATION_ERRORS, union: { description: 'The payload of a usage adjustment, or an expected failure.' } },
    typeOptions: { description: 'Input of a usage adjustment.' },
    argOptions: { description: 'Input of a usage adjustment.' },
    authScopes: { finance: true },
    description:
      "Books usage on a unit for a period (ADMIN, FINANCE): usage made before the gateway existed, or a correction (negative; a unit's own usage of the period cannot go below zero). Written as a ledger ADJUSTMENT, audited, and included in reports. A closed period sends it to the next open one, and the payload says so.",
    input: {
      orgUnitId: t.input.id({ required: true, description: 'Global id of the unit the usage belongs to.' }),
      accountId: t.input.id({ required: true, description: 'Global id of the account.' }),
      period: t.input.field({ type: 'Period', required: true, description: 'Period the usage belongs to.' }),
      creditSeconds: t.input.field({ type: 'CreditSeconds', required: true, description: 'Amount, positive or negative.' }),
      reason: t.input.string({ required: true, description: 'Why (kept with the entry and in the audit trail).' }),
    },
    resolve: async (_r, { input }, ctx) => {
      const actor = ctx.actor!;
      const account = await requireAccount(ctx, String(input.accountId));
      const unit = await visibleUnit(ctx, decodeId(String(input.orgUnitId), 'OrgUnit'));
      if (!unit) throw new NotFoundError('OrgUnit', String(input.orgUnitId));
      const adjustment = await recordUsageAdjustment(ctx.db, actor, {
        orgUnitId: unit.id,
        accountId: account.id,
        period: input.period,
        creditSeconds: input.creditSeconds,
        reason: input.reason,
      });
      return { adjustment };
    },
  }),
  closePeriod: t.fieldWithInput({
    type: builder.simpleObject('ClosePeriodPayload', {
      description: 'The frozen statement.',
      fields: (f) => ({ report: f.field({ type: ChargebackReportRef, description: 'The statement, now immutable.' }) }),
    }),
    errors: { types: MUTATION_ERRORS, union: { description: 'The payload of closing a period, or an expected failure.' } },
    typeOptions: { description: 'Input of closing a period.' },
    argOptions: { description: 'Input of closing a period.' },
    authScopes: { finance: true },
    description:
      'Freezes a period that has ended into an immutable statement (ADMIN, FINANCE). Later usage for it (adjustments, late settlements) goes to the next open period. Audited.',
    input: {
      accountId: t.input.id({ required: true, description: 'Global id of the account.' }),
      period: t.input.field({ type: 'Period', required: true, description: 'The period to close.' }),
    },
    resolve: async (_r, { input }, ctx) => {
      const actor = ctx.actor!;
      const account = await requireAccount(ctx, String(input.accountId));
      const statement = await ctx.db.transaction((tx) => closePeriod(tx, actor, account.id, input.period, ctx.now));
      return { report: await reportFor(ctx.db, actor, statement, null) };
    },
  }),
  syncWallet: t.fieldWithInput({
    type: builder.simpleObject('SyncWalletPayload', {
      description: 'The snapshot just taken.',
      fields: (f) => ({
        account: f.field({ type: AccountRef, description: 'The account.' }),
        wallet: f.field({ type: WalletSnapshotRef, description: 'The new snapshot.' }),
      }),
    }),
    errors: { types: [...MUTATION_ERRORS, UpstreamError], union: { description: 'The payload of a wallet sync, or an expected failure.' } },
    typeOptions: { description: 'Input of a wallet sync.' },
    argOptions: { description: 'Input of a wallet sync.' },
    authScopes: { finance: true },
    description:
      "Reads HeyGen's balance for an account now, outside the schedule (ADMIN, FINANCE), and stores the snapshot with its drift. Audited (the scheduled syncs are not: they are no caller's change).",
    input: { accountId: t.input.id({ required: true, description: 'Global id of the account.' }) },
    resolve: async (_r, { input }, ctx) => {
      const account = await requireAccount(ctx, String(input.accountId));
      try {
        const wallet = await syncWallet(ctx.services.walletDeps, account.id, ctx.now, ctx.actor!);
        return { account, wallet };
      } catch (error) {
        // The client's messages never carry the API key.
        if (error instanceof HeygenError) throw new UpstreamError(error.code, `HeyGen did not answer users/me: ${error.message}`);
        throw error;
      }
    },
  }),
}));

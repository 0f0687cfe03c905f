// Chargeback: how one account's invoice for one period is shared over the org tree (docs/billing.md).
// A pure function. Every unit's amount is first computed exactly (bigint rationals); then, and only
// then, money is rounded:
// 1. the invoice total is rounded to cents once, half up (ties towards +∞);
// 2. the exact own amounts of all units are scaled onto that total by largest remainder, so they sum
//    to it exactly (ties: canonical tree order, see org-tree.ts);
// 3. subtree totals are sums of own cents, so every level adds up to its parent and the root to the
//    invoice.
import { BillingValidationError } from '../primitives/errors.js';
import { MICRO_PER_CS, largestRemainder, parseDecimalRational, parseUsd, usdToCentsHalfUp } from '../primitives/money.js';
import { buildOrgTree, type OrgTree, type OrgUnitRef } from './org-tree.js';
import * as Q from '../primitives/rational.js';
import type { Rational } from '../primitives/rational.js';

export type { OrgUnitRef } from './org-tree.js';

export const ALLOCATION_POLICIES = ['PROPORTIONAL', 'MARGINAL', 'COMMITTED_SHARES'] as const;
export type AllocationPolicy = (typeof ALLOCATION_POLICIES)[number];

export interface UsageBasedTerms {
  readonly model: 'USAGE_BASED';
  /** Monthly Minimum Commitment, billed flat whatever the usage. */
  readonly mmcUsd: string;
  readonly includedMicroCs: bigint;
  /** Informational: the MMC, not included × contract rate, is what HeyGen bills. */
  readonly contractRateUsd: string;
  /** USD per credit-second past the included pool. */
  readonly overageRateUsd: string;
}

export interface CreditPackageTerms {
  readonly model: 'CREDIT_PACKAGE';
  /** USD per credit-second drawn down. */
  readonly pricePerCsUsd: string;
  /** When set, used instead of pricePerCsUsd: an exact price with no finite decimal (a total price ÷ the pool). */
  readonly pricePerCsExact?: Rational;
  /** Credits available at the start of this period (the pool balance carried into it). */
  readonly poolMicroCs: bigint;
  readonly termEndsInThisPeriod: boolean;
  /**
   * Credits left when the term ends, e.g. from the wallet snapshot. Only read when the term ends in
   * this period; defaults to max(0, poolMicroCs − usage of this period).
   */
  readonly remainingAtTermEndMicroCs?: bigint;
}

export type ContractTerms = UsageBasedTerms | CreditPackageTerms;

export interface UsageEntry {
  readonly unitId: string;
  /** Settled micro-credit-seconds; negative for an adjustment. */
  readonly microCs: bigint;
  readonly settledAt: Date;
  /** Breaks ties in settlement order between entries settled at the same instant. */
  readonly seq: bigint;
}

export interface CommittedShare {
  readonly unitId: string;
  /** Decimal string in [0, 1]; all shares sum exactly to 1. Units not listed hold 0. */
  readonly share: string;
}

export interface AllocationInput {
  readonly terms: ContractTerms;
  /** Usage-based accounts only; ignored for credit packages. Default PROPORTIONAL. */
  readonly policy?: AllocationPolicy;
  readonly units: readonly OrgUnitRef[];
  /** Receives unallocated commitment and forfeited credits. Default: the root. */
  readonly costCentreUnitId?: string;
  readonly usage: readonly UsageEntry[];
  /** Required for COMMITTED_SHARES. */
  readonly shares?: readonly CommittedShare[];
}

export interface StatementLine {
  readonly unitId: string;
  readonly parentId: string | null;
  /** 0 for the root. */
  readonly depth: number;
  /** Usage settled on this unit itself. */
  readonly ownMicroCs: bigint;
  /** Usage of the subtree (this unit and all below it). */
  readonly microCs: bigint;
  /** Of `ownMicroCs`, the part inside the included pool / past it. */
  readonly ownInPoolMicroCs: bigint;
  readonly ownOverageMicroCs: bigint;
  /** Subtree sums of the two above. */
  readonly inPoolMicroCs: bigint;
  readonly overageMicroCs: bigint;
  /** Cents charged to this unit itself, including, on the cost centre, unallocated commitment and forfeited credits. */
  readonly ownCents: bigint;
  /** Subtree total: ownCents + Σ children's costCents. */
  readonly costCents: bigint;
}

export interface Statement {
  readonly model: ContractTerms['model'];
  /** The policy applied; null for a credit package. */
  readonly policy: AllocationPolicy | null;
  readonly costCentreUnitId: string;
  /** invoiceCents = mmcCents + overageCents + drawdownCents + forfeitedCents. */
  readonly invoiceCents: bigint;
  /** Usage-based: the MMC rounded half up. 0 for a credit package. */
  readonly mmcCents: bigint;
  /** Usage-based: invoiceCents − mmcCents (the invoice is rounded once, so the parts add up). */
  readonly overageCents: bigint;
  /** Credit package: credits drawn down this period × price, rounded half up. 0 when usage-based. */
  readonly drawdownCents: bigint;
  /** Credit package whose term ends this period: remaining credits × price, rounded half up. Else 0. */
  readonly forfeitedCents: bigint;
  readonly forfeitedMicroCs: bigint;
  readonly usedMicroCs: bigint;
  /** The included pool (usage-based) or the pool at the start of the period (credit package). */
  readonly includedMicroCs: bigint;
  /** max(0, used − included). */
  readonly overageMicroCs: bigint;
  /** One line per unit, in canonical tree order (pre-order, siblings by id); the root is first. */
  readonly lines: readonly StatementLine[];
}

/** HeyGen's published Enterprise tiers (docs/heygen.md, "Billing"). */
export const presetTiers = {
  MMC_1000: {
    model: 'USAGE_BASED',
    mmcUsd: '1000',
    contractRateUsd: '0.00833',
    includedMicroCs: 120_000n * MICRO_PER_CS,
    overageRateUsd: '0.01000',
  },
  MMC_5000: {
    model: 'USAGE_BASED',
    mmcUsd: '5000',
    contractRateUsd: '0.00750',
    includedMicroCs: 600_000n * MICRO_PER_CS,
    overageRateUsd: '0.00833',
  },
  MMC_20000: {
    model: 'USAGE_BASED',
    mmcUsd: '20000',
    contractRateUsd: '0.00667',
    includedMicroCs: 2_400_000n * MICRO_PER_CS,
    overageRateUsd: '0.00750',
  },
} as const satisfies Record<string, UsageBasedTerms>;
export type PresetTier = keyof typeof presetTiers;

/** USD per credit-second → cents per micro-credit-second. */
const CENTS_PER_MICRO_CS_PER_USD_PER_CS = Q.rational(100n, MICRO_PER_CS);

/** One unit's share before rounding. */
interface ExactAllocation {
  /** Exact cents per unit, in tree order, summing exactly to the exact invoice. */
  readonly cents: Rational[];
  /** Overage micro-cs per unit, in tree order, summing exactly to the overage. */
  readonly overageMicroCs: bigint[];
}

export function allocateInvoice(input: AllocationInput): Statement {
  const tree = buildOrgTree(input.units);
  const costCentre = input.costCentreUnitId ?? tree.ids[0]!;
  const costCentreIndex = tree.indexOf.get(costCentre);
  if (costCentreIndex === undefined) {
    throw new BillingValidationError('INVALID_ORG_TREE', 'costCentreUnitId', `cost centre ${costCentre} is not in the org tree`);
  }
  const entries = validateUsage(input.usage, tree);
  const ownMicroCs = tree.ids.map(() => 0n);
  for (const e of entries) ownMicroCs[e.unit] = ownMicroCs[e.unit]! + e.microCs;
  ownMicroCs.forEach((total, i) => {
    if (total < 0n) {
      throw new BillingValidationError('INVALID_USAGE', 'usage', `unit ${tree.ids[i]} has negative usage for the period`);
    }
  });
  const used = ownMicroCs.reduce((a, b) => a + b, 0n);

  const terms = input.terms;
  if (terms?.model === 'USAGE_BASED') {
    const policy = input.policy ?? 'PROPORTIONAL';
    if (!(ALLOCATION_POLICIES as readonly string[]).includes(policy)) {
      throw new BillingValidationError('INVALID_POLICY', 'policy', `unknown allocation policy ${String(policy)}`);
    }
    const t = parseUsageBasedTerms(terms);
    const overage = used > t.included ? used - t.included : 0n;
    const exactOverageCents = Q.mul(Q.fromBigInt(overage), Q.mul(t.overageRate, CENTS_PER_MICRO_CS_PER_USD_PER_CS));
    const mmcExactCents = Q.mul(t.mmc, Q.fromBigInt(100n));
    const exactInvoice = Q.add(mmcExactCents, exactOverageCents);
    const invoiceCents = Q.roundHalfUp(exactInvoice);
    const mmcCents = Q.roundHalfUp(mmcExactCents);

    const ctx: UsageBasedContext = { ...t, tree, costCentreIndex, ownMicroCs, used, overage, exactInvoice, exactOverageCents, mmcExactCents };
    const exact =
      policy === 'PROPORTIONAL'
        ? allocateProportional(ctx)
        : policy === 'MARGINAL'
          ? allocateMarginal(ctx, entries)
          : allocateCommittedShares(ctx, parseShares(input.shares, tree));
    return buildStatement({
      tree,
      ownMicroCs,
      ownOverageMicroCs: exact.overageMicroCs,
      ownCents: largestRemainder(invoiceCents, exact.cents),
      totals: {
        model: 'USAGE_BASED',
        policy,
        costCentreUnitId: costCentre,
        invoiceCents,
        mmcCents,
        overageCents: invoiceCents - mmcCents,
        drawdownCents: 0n,
        forfeitedCents: 0n,
        forfeitedMicroCs: 0n,
        usedMicroCs: used,
        includedMicroCs: t.included,
        overageMicroCs: overage,
      },
    });
  }
  if (terms?.model === 'CREDIT_PACKAGE') {
    return allocateCreditPackage(terms, tree, costCentre, costCentreIndex, ownMicroCs, used);
  }
  throw new BillingValidationError('INVALID_TERMS', 'terms.model', 'terms.model must be USAGE_BASED or CREDIT_PACKAGE');
}

// ——— validation ———

interface ValidEntry {
  readonly unit: number;
  readonly microCs: bigint;
  readonly at: number;
  readonly seq: bigint;
}

function validateUsage(usage: readonly UsageEntry[], tree: OrgTree): ValidEntry[] {
  if (!Array.isArray(usage)) throw new BillingValidationError('INVALID_USAGE', 'usage', 'usage must be a list');
  return usage.map((entry, i) => {
    const field = `usage[${i}]`;
    const unit = tree.indexOf.get(entry.unitId);
    if (unit === undefined) {
      throw new BillingValidationError('INVALID_USAGE', `${field}.unitId`, `unit ${entry.unitId} is not in the org tree`);
    }
    if (typeof entry.microCs !== 'bigint') {
      throw new BillingValidationError('INVALID_USAGE', `${field}.microCs`, 'microCs must be a bigint');
    }
    if (!(entry.settledAt instanceof Date) || Number.isNaN(entry.settledAt.getTime())) {
      throw new BillingValidationError('INVALID_USAGE', `${field}.settledAt`, 'settledAt must be a valid Date');
    }
    if (typeof entry.seq !== 'bigint') {
      throw new BillingValidationError('INVALID_USAGE', `${field}.seq`, 'seq must be a bigint');
    }
    return { unit, microCs: entry.microCs, at: entry.settledAt.getTime(), seq: entry.seq };
  });
}

function nonNegativeMicro(value: unknown, field: string): bigint {
  if (typeof value !== 'bigint' || value < 0n) {
    throw new BillingValidationError('INVALID_TERMS', field, `${field} must be a non-negative bigint of micro-credit-seconds`);
  }
  return value;
}

interface ParsedUsageBasedTerms {
  readonly mmc: Rational;
  readonly included: bigint;
  readonly overageRate: Rational;
}

function parseUsageBasedTerms(terms: UsageBasedTerms): ParsedUsageBasedTerms {
  const mmc = parseUsd(terms.mmcUsd, { field: 'terms.mmcUsd' });
  parseUsd(terms.contractRateUsd, { field: 'terms.contractRateUsd' });
  const overageRate = parseUsd(terms.overageRateUsd, { field: 'terms.overageRateUsd' });
  const included = nonNegativeMicro(terms.includedMicroCs, 'terms.includedMicroCs');
  return { mmc, included, overageRate };
}

/** Validates committed shares against a tree (in range, known units, no duplicates, sum exactly 1); per unit in tree order. */
export function parseShares(shares: readonly CommittedShare[] | undefined, tree: OrgTree): Rational[] {
  const fail = (field: string, message: string): never => {
    throw new BillingValidationError('INVALID_SHARES', field, message);
  };
  if (!Array.isArray(shares) || shares.length === 0) return fail('shares', 'COMMITTED_SHARES needs the units’ shares');
  const perUnit = tree.ids.map(() => Q.ZERO);
  const seen = new Set<string>();
  shares.forEach((entry, i) => {
    const unit = tree.indexOf.get(entry.unitId);
    if (unit === undefined) fail(`shares[${i}].unitId`, `unit ${entry.unitId} is not in the org tree`);
    if (seen.has(entry.unitId)) fail(`shares[${i}].unitId`, `unit ${entry.unitId} has two shares`);
    seen.add(entry.unitId);
    let share: Rational;
    try {
      share = parseDecimalRational(entry.share, { field: `shares[${i}].share` });
    } catch {
      return fail(`shares[${i}].share`, `share must be a decimal string in [0, 1]: "${String(entry.share)}"`);
    }
    if (Q.compare(share, Q.ONE) > 0) fail(`shares[${i}].share`, `share ${entry.share} is greater than 1`);
    perUnit[unit!] = share;
  });
  if (Q.compare(Q.sum(perUnit), Q.ONE) !== 0) fail('shares', 'the shares do not sum exactly to 1');
  return perUnit;
}

// ——— usage-based policies ———

interface UsageBasedContext extends ParsedUsageBasedTerms {
  readonly tree: OrgTree;
  readonly costCentreIndex: number;
  readonly ownMicroCs: readonly bigint[];
  readonly used: bigint;
  readonly overage: bigint;
  readonly exactInvoice: Rational;
  readonly exactOverageCents: Rational;
  readonly mmcExactCents: Rational;
}

/**
 * u pays T·U_u/U. With no usage the whole MMC goes to the cost centre. Overage cs are attributed in
 * proportion to usage, like the dollars.
 */
function allocateProportional(ctx: UsageBasedContext): ExactAllocation {
  const { ownMicroCs, used, exactInvoice } = ctx;
  const cents =
    used === 0n
      ? ownMicroCs.map((_, i) => (i === ctx.costCentreIndex ? exactInvoice : Q.ZERO))
      : ownMicroCs.map((u) => Q.div(Q.mul(exactInvoice, Q.fromBigInt(u)), Q.fromBigInt(used)));
  const overageMicroCs = ctx.overage === 0n ? ownMicroCs.map(() => 0n) : largestRemainder(ctx.overage, ownMicroCs);
  return { cents, overageMicroCs };
}

/**
 * Settlement order: the first I cs are in the pool at MMC/I per cs, later ones overage at r_o; the
 * crossing entry is split. Unused pool, (I − U)·MMC/I, goes to the cost centre; with I = 0 there is
 * no pool, all usage is overage and the whole MMC goes to the cost centre.
 *
 * Adjustments (negative entries) first cancel their own unit's settled amounts, most recent first
 * (then, if the adjustment came before the usage it corrects, the earliest later ones). The walk then
 * sees a history of non-negative amounts summing to U, so in-pool cs total min(U, I) and overage cs
 * total exactly O = max(0, U − I), consistent with the invoice.
 */
function allocateMarginal(ctx: UsageBasedContext, entries: readonly ValidEntry[]): ExactAllocation {
  const { tree, included, mmc } = ctx;
  const sorted = [...entries].sort((a, b) => a.at - b.at || (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
  for (let k = 1; k < sorted.length; k++) {
    if (sorted[k]!.at === sorted[k - 1]!.at && sorted[k]!.seq === sorted[k - 1]!.seq) {
      throw new BillingValidationError(
        'INVALID_USAGE',
        'usage',
        `two usage entries share settledAt and seq ${sorted[k]!.seq}; MARGINAL needs a strict settlement order`,
      );
    }
  }
  const residual = netAdjustments(sorted, tree.ids.length);

  const inPool = tree.ids.map(() => 0n);
  const overage = tree.ids.map(() => 0n);
  let poolLeft = included;
  sorted.forEach((entry, k) => {
    const amount = residual[k]!;
    const pooled = amount < poolLeft ? amount : poolLeft;
    poolLeft -= pooled;
    inPool[entry.unit] = inPool[entry.unit]! + pooled;
    overage[entry.unit] = overage[entry.unit]! + (amount - pooled);
  });

  const overageRateCents = Q.mul(ctx.overageRate, CENTS_PER_MICRO_CS_PER_USD_PER_CS);
  const poolRateCents = included === 0n ? Q.ZERO : Q.div(ctx.mmcExactCents, Q.fromBigInt(included));
  const cents = tree.ids.map((_, i) =>
    Q.add(Q.mul(Q.fromBigInt(inPool[i]!), poolRateCents), Q.mul(Q.fromBigInt(overage[i]!), overageRateCents)),
  );
  const unusedPoolCents = included === 0n ? Q.mul(mmc, Q.fromBigInt(100n)) : Q.mul(Q.fromBigInt(poolLeft), poolRateCents);
  cents[ctx.costCentreIndex] = Q.add(cents[ctx.costCentreIndex]!, unusedPoolCents);
  return { cents, overageMicroCs: overage };
}

/**
 * MARGINAL's netting on its own: the amounts of entries already in settlement order, after each negative entry has
 * cancelled its unit's usage (its unit's earlier entries first, latest first, then its later ones). Each unit's
 * entries must sum to at least zero. For callers that work out the rest of MARGINAL elsewhere (in SQL).
 */
export function netInSettlementOrder(entries: readonly { unitId: string; microCs: bigint }[]): bigint[] {
  const index = new Map<string, number>();
  const valid = entries.map((e, k) => {
    if (!index.has(e.unitId)) index.set(e.unitId, index.size);
    return { unit: index.get(e.unitId)!, microCs: e.microCs, at: 0, seq: BigInt(k) };
  });
  return netAdjustments(valid, index.size);
}

/** Non-negative amounts per sorted entry, after each negative entry has cancelled its unit's usage. */
function netAdjustments(sorted: readonly ValidEntry[], unitCount: number): bigint[] {
  const residual = sorted.map((e) => (e.microCs > 0n ? e.microCs : 0n));
  const positionsByUnit: number[][] = Array.from({ length: unitCount }, () => []);
  sorted.forEach((e, k) => positionsByUnit[e.unit]!.push(k));
  for (const positions of positionsByUnit) {
    positions.forEach((k, n) => {
      let need = -sorted[k]!.microCs;
      if (need <= 0n) return;
      const earlierFirst = positions.slice(0, n).reverse();
      const later = positions.slice(n + 1);
      for (const j of [...earlierFirst, ...later]) {
        const take = residual[j]! < need ? residual[j]! : need;
        residual[j] = residual[j]! - take;
        need -= take;
        if (need === 0n) break;
      }
      // Unreachable: the unit's period total was checked to be non-negative.
      if (need !== 0n) throw new Error('adjustment exceeds the unit’s usage');
    });
  }
  return residual;
}

/**
 * u pays s_u·MMC plus its part of O·r_o in proportion to its excess max(0, U_u − s_u·I); the overage
 * cs follow the same proportion. Since Σ_u max(0, U_u − s_u·I) ≥ Σ_u (U_u − s_u·I) = U − I, the
 * excesses cannot all be zero while O > 0; should they ever be, overage falls back to proportion of
 * usage. Under the pool each unit pays exactly its committed share, used or not.
 */
function allocateCommittedShares(ctx: UsageBasedContext, shares: readonly Rational[]): ExactAllocation {
  const { ownMicroCs, overage } = ctx;
  const included = Q.fromBigInt(ctx.included);
  const excess = ownMicroCs.map((u, i) => Q.max(Q.ZERO, Q.sub(Q.fromBigInt(u), Q.mul(shares[i]!, included))));
  const excessSum = Q.sum(excess);
  const weights: Rational[] = Q.isZero(excessSum) ? ownMicroCs.map(Q.fromBigInt) : excess;
  const weightSum = Q.isZero(excessSum) ? Q.fromBigInt(ctx.used) : excessSum;
  const cents = ownMicroCs.map((_, i) => {
    const commitment = Q.mul(shares[i]!, ctx.mmcExactCents);
    if (overage === 0n) return commitment;
    return Q.add(commitment, Q.div(Q.mul(ctx.exactOverageCents, weights[i]!), weightSum));
  });
  const overageMicroCs = overage === 0n ? ownMicroCs.map(() => 0n) : largestRemainder(overage, weights);
  return { cents, overageMicroCs };
}

// ——— credit package ———

/**
 * u pays U_u·p. The drawdown is rounded half up once and split by largest remainder. When the term
 * ends in this period, the remaining credits × p are forfeited prepaid cost: rounded half up on their
 * own, shown as `forfeitedCents`, charged to the cost centre's own line and included in this
 * statement's invoice total (so the statement still sums to its lines). Usage past the pool is priced
 * at p like the rest and reported as overage cs, attributed in proportion to usage.
 */
function allocateCreditPackage(
  terms: CreditPackageTerms,
  tree: OrgTree,
  costCentreUnitId: string,
  costCentreIndex: number,
  ownMicroCs: readonly bigint[],
  used: bigint,
): Statement {
  const price = terms.pricePerCsExact ?? parseUsd(terms.pricePerCsUsd, { field: 'terms.pricePerCsUsd' });
  if (Q.isNegative(price)) throw new BillingValidationError('INVALID_TERMS', 'terms.pricePerCsUsd', 'the price must not be negative');
  const pool = nonNegativeMicro(terms.poolMicroCs, 'terms.poolMicroCs');
  if (typeof terms.termEndsInThisPeriod !== 'boolean') {
    throw new BillingValidationError('INVALID_TERMS', 'terms.termEndsInThisPeriod', 'termEndsInThisPeriod must be a boolean');
  }
  const remaining =
    terms.remainingAtTermEndMicroCs === undefined
      ? pool > used
        ? pool - used
        : 0n
      : nonNegativeMicro(terms.remainingAtTermEndMicroCs, 'terms.remainingAtTermEndMicroCs');
  const forfeitedMicroCs = terms.termEndsInThisPeriod ? remaining : 0n;

  const centsPerMicroCs = Q.mul(price, CENTS_PER_MICRO_CS_PER_USD_PER_CS);
  const exact = ownMicroCs.map((u) => Q.mul(Q.fromBigInt(u), centsPerMicroCs));
  const drawdownCents = Q.roundHalfUp(Q.mul(Q.fromBigInt(used), centsPerMicroCs));
  const forfeitedCents = Q.roundHalfUp(Q.mul(Q.fromBigInt(forfeitedMicroCs), centsPerMicroCs));
  const ownCents = largestRemainder(drawdownCents, exact);
  ownCents[costCentreIndex] = ownCents[costCentreIndex]! + forfeitedCents;

  const overage = used > pool ? used - pool : 0n;
  return buildStatement({
    tree,
    ownMicroCs,
    ownOverageMicroCs: overage === 0n ? ownMicroCs.map(() => 0n) : largestRemainder(overage, ownMicroCs),
    ownCents,
    totals: {
      model: 'CREDIT_PACKAGE',
      policy: null,
      costCentreUnitId,
      invoiceCents: drawdownCents + forfeitedCents,
      mmcCents: 0n,
      overageCents: 0n,
      drawdownCents,
      forfeitedCents,
      forfeitedMicroCs,
      usedMicroCs: used,
      includedMicroCs: pool,
      overageMicroCs: overage,
    },
  });
}

// ——— statement ———

interface StatementParts {
  readonly tree: OrgTree;
  readonly ownMicroCs: readonly bigint[];
  readonly ownOverageMicroCs: readonly bigint[];
  readonly ownCents: readonly bigint[];
  readonly totals: Omit<Statement, 'lines'>;
}

function buildStatement({ tree, ownMicroCs, ownOverageMicroCs, ownCents, totals }: StatementParts): Statement {
  const n = tree.ids.length;
  const microCs = [...ownMicroCs];
  const overage = [...ownOverageMicroCs];
  const cents = [...ownCents];
  // Children come after their parent in pre-order, so one backward pass accumulates subtrees.
  for (let i = n - 1; i > 0; i--) {
    const p = tree.parentIndex[i]!;
    microCs[p] = microCs[p]! + microCs[i]!;
    overage[p] = overage[p]! + overage[i]!;
    cents[p] = cents[p]! + cents[i]!;
  }
  const lines: StatementLine[] = tree.ids.map((unitId, i) => {
    const parent = tree.parentIndex[i] ?? null;
    return {
      unitId,
      parentId: parent === null ? null : tree.ids[parent]!,
      depth: tree.depth[i]!,
      ownMicroCs: ownMicroCs[i]!,
      microCs: microCs[i]!,
      ownInPoolMicroCs: ownMicroCs[i]! - ownOverageMicroCs[i]!,
      ownOverageMicroCs: ownOverageMicroCs[i]!,
      inPoolMicroCs: microCs[i]! - overage[i]!,
      overageMicroCs: overage[i]!,
      ownCents: ownCents[i]!,
      costCents: cents[i]!,
    };
  });
  return { ...totals, lines };
}

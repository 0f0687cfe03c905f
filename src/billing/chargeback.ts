// Chargeback statements: one account, one period, every unit at every level. The numbers come from
// allocateInvoice (exact, then rounded once by largest remainder); this module gathers its input from the
// database, and freezes a statement when finance closes the period.
//
// Usage per unit is read from the rollups (own usage = the unit's rollup − its children's), so a report's cost
// grows with the number of units, not of jobs. MARGINAL needs the settlement order: the pool rollups keep its split as
// money settles; a period with a negative correction is split from the ledger in SQL.
import { recordMoneyEvent } from '../notifications/events.js';
import { and, asc, eq, inArray, isNull, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { queryRows, toBigInt } from '../db/client.js';
import {
  accountsTable,
  billingStatementsTable,
  ledgerEntriesTable,
  orgUnitsTable,
  usageAdjustmentsTable,
  type AllocationPolicy,
  type BillingModel,
  type OrgUnitKind,
} from '../db/schema.js';
import { NotFoundError, ValidationError } from '../errors.js';
import { canReadCostsOf, seesEverything, type Actor } from '../auth/actor.js';
import { recordAudit } from '../audit/audit.js';
import { termPeriods, termsFor, type AccountRow, type AccountTermsRow } from '../accounts/accounts.js';
import { usageAtRoot } from './account-period.js';
import { allocateInvoice, netInSettlementOrder, type ContractTerms, type Statement, type UsageEntry } from './allocation.js';
import { formatCents, formatCreditSeconds, formatDecimal, parseDecimalRational } from '../primitives/money.js';
import { isValidPeriod, periodBounds, periodOf, previousPeriod } from '../primitives/period.js';
import { committedSharesFor, pricePerCs } from './terms.js';

export interface ChargebackLineData {
  orgUnitId: string;
  parentId: string | null;
  kind: OrgUnitKind;
  name: string;
  /** 0 for the organization. */
  depth: number;
  /** Subtree totals (this unit and everything under it). */
  creditSeconds: string;
  inPoolCreditSeconds: string;
  overageCreditSeconds: string;
  costUsd: string;
  /** Charged to this unit itself (on the cost centre: also unallocated commitment and forfeited credits). */
  ownCreditSeconds: string;
  ownInPoolCreditSeconds: string;
  ownOverageCreditSeconds: string;
  ownCostUsd: string;
}

export interface ChargebackAdjustmentData {
  id: string;
  orgUnitId: string;
  creditSeconds: string;
  reason: string;
  /** The period asked for; differs from the statement's period when that one was already closed. */
  requestedPeriod: string;
  createdBy: string;
  createdAt: string;
}

export interface ChargebackTermsData {
  effectiveFrom: string;
  preset: string | null;
  mmcUsd: string | null;
  includedCreditSeconds: string | null;
  contractRateUsd: string | null;
  overageRateUsd: string | null;
  totalCreditSeconds: string | null;
  pricePerCreditSecondUsd: string | null;
  totalPriceUsd: string | null;
  termStart: string | null;
  termEnd: string | null;
}

/** A statement as plain strings, so that the frozen JSON of a closed period is exactly what was reported. */
export interface ChargebackStatement {
  version: 1;
  accountId: string;
  accountName: string;
  billingModel: BillingModel;
  /** Null for a credit package (charged at its price per credit-second). */
  policy: AllocationPolicy | null;
  period: string;
  timezone: string;
  periodStart: string;
  periodEnd: string;
  currency: 'USD';
  closed: boolean;
  closedAt: string | null;
  closedBy: string | null;
  invoiceTotalUsd: string;
  mmcUsd: string;
  overageUsd: string;
  drawdownUsd: string;
  forfeitedUsd: string;
  usedCreditSeconds: string;
  /** Usage-based: the monthly pool. Credit package: what was left of the pool when the period began. */
  includedCreditSeconds: string;
  overageCreditSeconds: string;
  remainingCreditSeconds: string;
  forfeitedCreditSeconds: string;
  costCentreUnitId: string;
  terms: ChargebackTermsData;
  shares: { orgUnitId: string; share: string }[];
  adjustments: ChargebackAdjustmentData[];
  /** Canonical tree order: pre-order from the organization, siblings by id. */
  lines: ChargebackLineData[];
}

interface UnitRow {
  id: string;
  parentId: string | null;
  kind: OrgUnitKind;
  name: string;
  accountId: string | null;
  depth: number;
}

function requirePeriod(period: string): void {
  if (!isValidPeriod(period)) throw new ValidationError('period', 'period must be a month as YYYY-MM');
}

/**
 * Units on the account's statement: those that draw on it (their own account or the nearest ancestor's),
 * those with usage on it in the period, the cost centre and shareholders, and every ancestor of these.
 */
function statementUnits(all: readonly UnitRow[], accountId: string, extra: Iterable<string>): UnitRow[] {
  const byId = new Map(all.map((u) => [u.id, u]));
  const effective = new Map<string, string | null>();
  const effectiveOf = (u: UnitRow): string | null => {
    if (effective.has(u.id)) return effective.get(u.id)!;
    const parent = u.parentId ? byId.get(u.parentId) : undefined;
    const value = u.accountId ?? (parent ? effectiveOf(parent) : null);
    effective.set(u.id, value);
    return value;
  };
  const keep = new Set<string>();
  const add = (id: string) => {
    for (let u = byId.get(id); u && !keep.has(u.id); u = u.parentId ? byId.get(u.parentId) : undefined) keep.add(u.id);
  };
  for (const u of [...all].sort((a, b) => a.depth - b.depth)) if (effectiveOf(u) === accountId) add(u.id);
  for (const id of extra) add(id);
  return all.filter((u) => keep.has(u.id));
}

function termsData(terms: AccountTermsRow): ChargebackTermsData {
  return {
    effectiveFrom: terms.effectiveFrom,
    preset: terms.preset,
    mmcUsd: terms.mmcUsd,
    includedCreditSeconds: terms.includedMicroCs === null ? null : formatCreditSeconds(terms.includedMicroCs),
    contractRateUsd: terms.contractRateUsd,
    overageRateUsd: terms.overageRateUsd,
    totalCreditSeconds: terms.poolMicroCs === null ? null : formatCreditSeconds(terms.poolMicroCs),
    pricePerCreditSecondUsd: terms.pricePerCsUsd,
    totalPriceUsd: terms.totalPriceUsd,
    termStart: terms.termStart,
    termEnd: terms.termEnd,
  };
}

/**
 * MARGINAL's usage from the ledger, for a period the pool rollups cannot serve (a negative correction, or new terms
 * not yet applied to its split), split in SQL instead of loading the period's ledger into the process: the pool is filled in
 * settlement order (the order allocateInvoice uses: settled at, to the millisecond, then ledger id), so with a running
 * sum each entry's in-pool part is min(amount, max(0, included − what was settled before it)). The result is given
 * to allocateInvoice as each unit's in-pool usage, then each unit's overage, in that order: the same pool fill, so
 * the same statement, as the period's entries one by one.
 *
 * A negative adjustment cancels its unit's earlier usage first (netInSettlementOrder), which moves every later
 * entry's place in the pool: the entries of the units that have one (few) are read and netted here, and the split is
 * computed again with their netted amounts. A unit whose period total is negative is refused by allocateInvoice,
 * as before, from its entries.
 */
async function marginalUsage(db: Db, accountId: string, period: string, included: bigint, start: Date): Promise<UsageEntry[]> {
  const split = async (netted: Map<string, bigint>) => {
    const ids = `{${[...netted.keys()].join(',')}}`;
    const amounts = `{${[...netted.values()].join(',')}}`;
    return queryRows<{ unit: string; own: string; in_pool: string; dirty: boolean }>(
      db,
      sql`select unit, sum(r)::text as own, sum(least(r, greatest(0, ${included.toString()}::numeric - (cum - r))))::text as in_pool, bool_or(negative) as dirty
          from (select l.org_unit_id as unit, coalesce(n.amount, l.amount_micro_cs) as r, l.amount_micro_cs < 0 as negative,
                       sum(coalesce(n.amount, l.amount_micro_cs)) over (order by date_trunc('milliseconds', l.created_at), l.id rows unbounded preceding) as cum
                  from ledger_entries l
                  left join unnest(${ids}::bigint[], ${amounts}::bigint[]) as n(id, amount) on n.id = l.id
                 where l.account_id = ${accountId} and l.period = ${period} and l.entry_type in ('DEBIT', 'ADJUSTMENT')) as entries
          group by unit`,
    );
  };
  let rows = await split(new Map());
  const dirty = rows.filter((r) => r.dirty).map((r) => r.unit);
  const entriesOf = async (units: string[] | null) =>
    (
      await db
        .select({ id: ledgerEntriesTable.id, unitId: ledgerEntriesTable.orgUnitId, microCs: ledgerEntriesTable.amountMicroCs, at: ledgerEntriesTable.createdAt })
        .from(ledgerEntriesTable)
        .where(
          and(
            eq(ledgerEntriesTable.accountId, accountId),
            eq(ledgerEntriesTable.period, period),
            inArray(ledgerEntriesTable.entryType, ['DEBIT', 'ADJUSTMENT']),
            units ? inArray(ledgerEntriesTable.orgUnitId, units) : undefined,
          ),
        )
        .orderBy(sql`date_trunc('milliseconds', ${ledgerEntriesTable.createdAt})`, asc(ledgerEntriesTable.id))
    ).map((e) => ({ unitId: e.unitId, microCs: e.microCs, settledAt: e.at, seq: e.id }));
  if (dirty.length > 0) {
    if (rows.some((r) => r.dirty && toBigInt(r.own) < 0n)) return entriesOf(dirty); // refused by allocateInvoice
    const entries = await entriesOf(dirty);
    const netted = netInSettlementOrder(entries);
    rows = await split(new Map(entries.map((e, k) => [e.seq.toString(), netted[k]!])));
  }
  return splitUsage(rows.map((r) => ({ unit: r.unit, own: toBigInt(r.own), inPool: toBigInt(r.in_pool) })), start);
}

/**
 * Each unit's split as allocateInvoice's input: every unit's in-pool usage first, then every unit's overage. Walked in
 * that order, the in-pool parts (summing to min(used, included)) fill the pool exactly and the rest is overage: the
 * same pool fill, so the same statement, as the period's entries one by one.
 */
function splitUsage(rows: readonly { unit: string; own: bigint; inPool: bigint }[], start: Date): UsageEntry[] {
  const inPool: UsageEntry[] = [];
  const overage: UsageEntry[] = [];
  for (const r of rows) {
    if (r.inPool > 0n) inPool.push({ unitId: r.unit, microCs: r.inPool, settledAt: start, seq: BigInt(inPool.length) });
    if (r.own > r.inPool) overage.push({ unitId: r.unit, microCs: r.own - r.inPool, settledAt: start, seq: BigInt(rows.length + overage.length) });
  }
  return [...inPool, ...overage];
}

/**
 * MARGINAL's usage from the pool rollups (usage_pool_periods / usage_pool_rollups, kept by a trigger on the ledger as
 * money settles): O(units) rows, whatever the number of jobs. Null when the period must be computed from the ledger
 * (marginalUsage): it has a negative adjustment, or it was split with another included pool than the terms now in
 * force (until its next entry splits it again), or the pool rollups do not hold the period's settled usage
 * (`settledTotal`, the root's usage rollup: rollups written with the ledger's triggers off, a partial restore), so
 * that a statement never bills less than was settled.
 */
async function marginalUsageFromRollups(db: Db, accountId: string, period: string, included: bigint, start: Date, settledTotal: bigint): Promise<UsageEntry[] | null> {
  const rows = await queryRows<{ included: string; corrected: boolean; unit: string | null; own: string | null; in_pool: string | null }>(
    db,
    sql`select p.included_micro_cs::text as included, p.corrected, r.org_unit_id as unit, r.settled_micro_cs::text as own, r.in_pool_micro_cs::text as in_pool
          from usage_pool_periods p left join usage_pool_rollups r on r.account_id = p.account_id and r.period = p.period
         where p.account_id = ${accountId} and p.period = ${period}`,
  );
  if (rows.length === 0) return settledTotal === 0n ? [] : null;
  if (rows[0]!.corrected || toBigInt(rows[0]!.included) !== included) return null;
  const split = rows.filter((r) => r.unit !== null).map((r) => ({ unit: r.unit!, own: toBigInt(r.own!), inPool: toBigInt(r.in_pool!) }));
  if (split.reduce((sum, r) => sum + r.own, 0n) !== settledTotal) return null;
  return splitUsage(split, start);
}

/** The statement as it stands now (provisional while the period is open). */
export async function computeStatement(db: Db, account: AccountRow, period: string): Promise<ChargebackStatement> {
  requirePeriod(period);
  const terms = await termsFor(db, account.id, period);
  if (!terms) throw new ValidationError('period', `the account has no contract terms in force in ${period}`);
  const allUnits: UnitRow[] = await db
    .select({
      id: orgUnitsTable.id,
      parentId: orgUnitsTable.parentId,
      kind: orgUnitsTable.kind,
      name: orgUnitsTable.name,
      accountId: orgUnitsTable.accountId,
      depth: orgUnitsTable.depth,
    })
    .from(orgUnitsTable);
  const root = allUnits.find((u) => u.parentId === null);
  if (!root) throw new ValidationError('accountId', 'the organization does not exist yet');

  // Own settled usage per unit: the unit's rollup minus its children's (rollups hold subtree sums).
  const rollups = await queryRows<{ unit: string; settled: string }>(
    db,
    sql`select org_unit_id as unit, settled_micro_cs::text as settled from usage_rollups
        where account_id = ${account.id} and period = ${period}`,
  );
  const subtree = new Map(rollups.map((r) => [r.unit, toBigInt(r.settled)]));
  const own = new Map<string, bigint>();
  for (const u of allUnits) {
    const mine = subtree.get(u.id);
    if (mine === undefined) continue;
    own.set(u.id, (own.get(u.id) ?? 0n) + mine);
    if (u.parentId) own.set(u.parentId, (own.get(u.parentId) ?? 0n) - mine);
  }

  const billingModel = account.billingModel;
  const policy: AllocationPolicy | null = billingModel === 'USAGE_BASED' ? terms.allocationPolicy : null;
  const shares = policy === 'COMMITTED_SHARES' ? await committedSharesFor(db, account.id, period) : [];
  const costCentre = terms.costCentreUnitId ?? root.id;
  const units = statementUnits(allUnits, account.id, [...subtree.keys(), costCentre, ...shares.map((s) => s.unitId)]);

  let usage: UsageEntry[];
  if (policy === 'MARGINAL') {
    const included = terms.includedMicroCs ?? 0n;
    const start = periodBounds(period, account.timezone).start;
    const settledTotal = subtree.get(root.id) ?? 0n;
    usage =
      (await marginalUsageFromRollups(db, account.id, period, included, start, settledTotal)) ?? (await marginalUsage(db, account.id, period, included, start));
  } else {
    const start = periodBounds(period, account.timezone).start;
    usage = [...own].filter(([, micro]) => micro !== 0n).map(([unitId, microCs], i) => ({ unitId, microCs, settledAt: start, seq: BigInt(i) }));
  }

  let contract: ContractTerms;
  let poolAtStart = 0n;
  if (billingModel === 'USAGE_BASED') {
    contract = {
      model: 'USAGE_BASED',
      mmcUsd: terms.mmcUsd ?? '0',
      includedMicroCs: terms.includedMicroCs ?? 0n,
      contractRateUsd: terms.contractRateUsd ?? '0',
      overageRateUsd: terms.overageRateUsd ?? '0',
    };
  } else {
    const term = termPeriods(terms);
    const before = term && term.from < period ? (await usageAtRoot(db, account.id, term.from, previousPeriod(period))).settled : 0n;
    const pool = terms.poolMicroCs ?? 0n;
    poolAtStart = pool > before ? pool - before : 0n;
    contract = {
      model: 'CREDIT_PACKAGE',
      pricePerCsUsd: terms.pricePerCsUsd ?? '0',
      pricePerCsExact: pricePerCs(terms),
      poolMicroCs: poolAtStart,
      termEndsInThisPeriod: term !== null && term.to === period,
    };
  }
  const statement: Statement = allocateInvoice({
    terms: contract,
    policy: policy ?? undefined,
    units: units.map((u) => ({ id: u.id, parentId: u.parentId })),
    costCentreUnitId: costCentre,
    usage,
    shares,
  });

  const adjustments = await db
    .select({
      id: usageAdjustmentsTable.id,
      orgUnitId: ledgerEntriesTable.orgUnitId,
      amount: ledgerEntriesTable.amountMicroCs,
      reason: usageAdjustmentsTable.reason,
      requestedPeriod: usageAdjustmentsTable.requestedPeriod,
      createdBy: usageAdjustmentsTable.createdBy,
      createdAt: usageAdjustmentsTable.createdAt,
    })
    .from(usageAdjustmentsTable)
    .innerJoin(ledgerEntriesTable, eq(ledgerEntriesTable.id, usageAdjustmentsTable.ledgerEntryId))
    .where(and(eq(ledgerEntriesTable.accountId, account.id), eq(ledgerEntriesTable.period, period)))
    .orderBy(asc(ledgerEntriesTable.id));

  const unitById = new Map(units.map((u) => [u.id, u]));
  const bounds = periodBounds(period, account.timezone);
  const included = statement.includedMicroCs;
  return {
    version: 1,
    accountId: account.id,
    accountName: account.name,
    billingModel,
    policy,
    period,
    timezone: account.timezone,
    periodStart: bounds.start.toISOString(),
    periodEnd: bounds.end.toISOString(),
    currency: 'USD',
    closed: false,
    closedAt: null,
    closedBy: null,
    invoiceTotalUsd: formatCents(statement.invoiceCents),
    mmcUsd: formatCents(statement.mmcCents),
    overageUsd: formatCents(statement.overageCents),
    drawdownUsd: formatCents(statement.drawdownCents),
    forfeitedUsd: formatCents(statement.forfeitedCents),
    usedCreditSeconds: formatCreditSeconds(statement.usedMicroCs),
    includedCreditSeconds: formatCreditSeconds(billingModel === 'USAGE_BASED' ? included : poolAtStart),
    overageCreditSeconds: formatCreditSeconds(statement.overageMicroCs),
    remainingCreditSeconds: formatCreditSeconds(included > statement.usedMicroCs ? included - statement.usedMicroCs : 0n),
    forfeitedCreditSeconds: formatCreditSeconds(statement.forfeitedMicroCs),
    costCentreUnitId: statement.costCentreUnitId,
    terms: termsData(terms),
    shares: shares.map((s) => ({ orgUnitId: s.unitId, share: formatDecimal(parseDecimalRational(s.share)) })),
    adjustments: adjustments.map((a) => ({
      id: a.id,
      orgUnitId: a.orgUnitId,
      creditSeconds: formatCreditSeconds(a.amount),
      reason: a.reason,
      requestedPeriod: a.requestedPeriod,
      createdBy: a.createdBy,
      createdAt: a.createdAt.toISOString(),
    })),
    lines: statement.lines.map((l) => {
      const unit = unitById.get(l.unitId)!;
      return {
        orgUnitId: l.unitId,
        parentId: l.parentId,
        kind: unit.kind,
        name: unit.name,
        depth: l.depth,
        creditSeconds: formatCreditSeconds(l.microCs),
        inPoolCreditSeconds: formatCreditSeconds(l.inPoolMicroCs),
        overageCreditSeconds: formatCreditSeconds(l.overageMicroCs),
        costUsd: formatCents(l.costCents),
        ownCreditSeconds: formatCreditSeconds(l.ownMicroCs),
        ownInPoolCreditSeconds: formatCreditSeconds(l.ownInPoolMicroCs),
        ownOverageCreditSeconds: formatCreditSeconds(l.ownOverageMicroCs),
        ownCostUsd: formatCents(l.ownCents),
      };
    }),
  };
}

/** The frozen statement of a closed period, exactly as it was stored, or null while the period is open. */
export async function closedStatementText(db: Db, accountId: string, period: string): Promise<string | null> {
  const [row] = await db
    .select({ statement: billingStatementsTable.statement })
    .from(billingStatementsTable)
    .where(and(eq(billingStatementsTable.accountId, accountId), eq(billingStatementsTable.period, period)));
  return row?.statement ?? null;
}

/** The statement of a period: frozen once closed, provisional (computed now) while open. */
export async function chargebackStatement(db: Db, accountId: string, period: string): Promise<ChargebackStatement> {
  requirePeriod(period);
  const [account] = await db.select().from(accountsTable).where(eq(accountsTable.id, accountId));
  if (!account) throw new NotFoundError('Account', accountId);
  const frozen = await closedStatementText(db, account.id, period);
  if (frozen !== null) return JSON.parse(frozen) as ChargebackStatement;
  return computeStatement(db, account, period);
}

/**
 * Freezes a period that has ended into an immutable statement. Under the account row lock, like admission,
 * settlement and adjustments, so no usage of the period can commit between the read and the freeze; anything
 * later lands in the next open period (see closed-periods.ts).
 */
export async function closePeriod(tx: Db, actor: Actor, accountId: string, period: string, now = new Date()): Promise<ChargebackStatement> {
  requirePeriod(period);
  const [account] = await tx.select().from(accountsTable).where(eq(accountsTable.id, accountId)).for('no key update');
  if (!account) throw new NotFoundError('Account', accountId);
  const current = periodOf(now, account.timezone);
  if (period >= current) throw new ValidationError('period', `only a period that has ended can be closed; ${current} is still running`);
  if ((await closedStatementText(tx, account.id, period)) !== null) throw new ValidationError('period', `${period} is already closed`);
  const statement: ChargebackStatement = {
    ...(await computeStatement(tx, account, period)),
    closed: true,
    closedAt: now.toISOString(),
    closedBy: actor.subject,
  };
  const text = JSON.stringify(statement);
  await tx.insert(billingStatementsTable).values({ accountId: account.id, period, statement: text, closedBy: actor.subject, closedAt: now });
  await recordAudit(tx, actor, {
    action: 'billing.period.close',
    entityType: 'Account',
    entityId: account.id,
    before: { period, closed: false },
    after: { period, closed: true, invoiceTotalUsd: statement.invoiceTotalUsd },
  });
  const [root] = await tx.select({ id: orgUnitsTable.id }).from(orgUnitsTable).where(isNull(orgUnitsTable.parentId));
  if (root) {
    await recordMoneyEvent(tx, {
      kind: 'period.closed',
      dedupeKey: `${account.id}:${period}`,
      orgUnitId: root.id,
      data: { accountId: account.id, period, invoiceTotalUsd: statement.invoiceTotalUsd, closedBy: actor.subject },
    });
  }
  return statement;
}

/** Each line's path (organization … unit) within the statement. */
function linePaths(statement: ChargebackStatement): Map<string, string[]> {
  const parentOf = new Map(statement.lines.map((l) => [l.orgUnitId, l.parentId]));
  const paths = new Map<string, string[]>();
  for (const line of statement.lines) {
    const path: string[] = [];
    for (let id: string | null | undefined = line.orgUnitId; id; id = parentOf.get(id)) path.unshift(id);
    paths.set(line.orgUnitId, path);
  }
  return paths;
}

/** The lines a caller may read: all for ADMIN and FINANCE, else those of its own subtree (canReadCostsOf). */
export function visibleLines(actor: Actor, statement: ChargebackStatement): ChargebackLineData[] {
  if (seesEverything(actor)) return statement.lines;
  const paths = linePaths(statement);
  return statement.lines.filter((l) => canReadCostsOf(actor, { id: l.orgUnitId, path: paths.get(l.orgUnitId)! }));
}

/** Adjustments on units whose lines the caller may read. */
export function visibleAdjustments(actor: Actor, statement: ChargebackStatement): ChargebackAdjustmentData[] {
  const lines = new Set(visibleLines(actor, statement).map((l) => l.orgUnitId));
  return statement.adjustments.filter((a) => lines.has(a.orgUnitId));
}

/** Names from the organization down to each line's unit, e.g. "Acme / Marketing / Video". */
export function linePathNames(statement: ChargebackStatement): Map<string, string> {
  const nameOf = new Map(statement.lines.map((l) => [l.orgUnitId, l.name]));
  const names = new Map<string, string>();
  for (const [id, path] of linePaths(statement)) names.set(id, path.map((p) => nameOf.get(p) ?? p).join(' / '));
  return names;
}

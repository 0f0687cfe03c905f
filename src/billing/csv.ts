// Chargeback exports: a plain CSV of the statement's lines, and a FOCUS-style CSV (FinOps Open Cost and Usage
// Specification column names) with one cost row per unit's own charge, so that its rows sum to the invoice.
// RFC 4180: CRLF line ends, fields quoted when they hold a comma, quote or line break; formula-like text neutralised.
import type { ChargebackLineData, ChargebackStatement } from './chargeback.js';
import { linePathNames } from './chargeback.js';
import { formatCents, formatCreditSeconds, parseUsd, usdToCentsHalfUp } from '../primitives/money.js';
import type { GroupPart } from './groups.js';

/** Text a spreadsheet would run as a formula (=, +, @, a tab or CR, or - not starting a number). */
const FORMULA = /^(?:[=+@\t\r]|-(?![\d.]))/;

function field(value: string | number | boolean | null): string {
  let text = value === null ? '' : String(value);
  // Unit names are chosen by managers: neutralise them so that opening the export cannot run anything.
  if (typeof value === 'string' && FORMULA.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function csv(header: readonly string[], rows: readonly (readonly (string | number | boolean | null)[])[]): string {
  return [header, ...rows].map((row) => row.map(field).join(',')).join('\r\n') + '\r\n';
}

export const CHARGEBACK_CSV_COLUMNS = [
  'account_id',
  'account_name',
  'period',
  'billing_model',
  'policy',
  'closed',
  'org_unit_id',
  'parent_id',
  'kind',
  'name',
  'path',
  'depth',
  'credit_seconds',
  'in_pool_credit_seconds',
  'overage_credit_seconds',
  'cost_usd',
  'own_credit_seconds',
  'own_in_pool_credit_seconds',
  'own_overage_credit_seconds',
  'own_cost_usd',
] as const;

/** One row per line (subtree totals and own amounts), in the statement's tree order. */
export function chargebackCsv(statement: ChargebackStatement, lines: readonly ChargebackLineData[]): string {
  const paths = linePathNames(statement);
  return csv(
    CHARGEBACK_CSV_COLUMNS,
    lines.map((l) => [
      statement.accountId,
      statement.accountName,
      statement.period,
      statement.billingModel,
      statement.policy,
      statement.closed,
      l.orgUnitId,
      l.parentId,
      l.kind,
      l.name,
      paths.get(l.orgUnitId) ?? l.name,
      l.depth,
      l.creditSeconds,
      l.inPoolCreditSeconds,
      l.overageCreditSeconds,
      l.costUsd,
      l.ownCreditSeconds,
      l.ownInPoolCreditSeconds,
      l.ownOverageCreditSeconds,
      l.ownCostUsd,
    ]),
  );
}

export const FOCUS_CSV_COLUMNS = [
  'BillingAccountId',
  'BillingAccountName',
  'BillingPeriodStart',
  'BillingPeriodEnd',
  'ChargePeriodStart',
  'ChargePeriodEnd',
  'BillingCurrency',
  'BilledCost',
  'EffectiveCost',
  'ChargeCategory',
  'ChargeDescription',
  'CommitmentDiscountStatus',
  'ProviderName',
  'PublisherName',
  'ServiceName',
  'ServiceCategory',
  'SubAccountId',
  'SubAccountName',
  'ConsumedQuantity',
  'ConsumedUnit',
  'Tags',
] as const;

/** A tag set as stored (jsonb text), keys sorted. */
function sortedTags(json: string): Record<string, string> {
  const tags = JSON.parse(json) as Record<string, string>;
  return Object.fromEntries(Object.keys(tags).sort().map((k) => [k, tags[k]!]));
}

const cents = (usd: string) => usdToCentsHalfUp(parseUsd(usd, { allowNegative: true }));

/**
 * FOCUS-style rows: one per unit with an own charge or own usage (a unit's own amounts, never subtree sums,
 * so that the rows add up to the invoice without double counting). Usage-based: BilledCost = EffectiveCost.
 * Credit package: the credits were billed when the package was bought, so BilledCost is 0 and EffectiveCost
 * carries the drawdown; credits forfeited at the end of the term are their own row on the cost centre.
 *
 * With `tagSets` (groupStatement by TAG_SET), a unit whose jobs carry tags has one row per tag set, the job tags in
 * `Tags` as FOCUS has them (user tags as they are, the gateway's own keys prefixed `x-gateway/`), and one row for the
 * rest (`x-gateway/untagged`): its own cost split by largest remainder, so that its rows still sum to its charge.
 */
export function focusCsv(statement: ChargebackStatement, lines: readonly ChargebackLineData[], tagSets?: ReadonlyMap<string, readonly GroupPart[]>): string {
  const paths = linePathNames(statement);
  const prepaid = statement.billingModel === 'CREDIT_PACKAGE';
  const forfeitedCents = cents(statement.forfeitedUsd);
  const rows: (string | null)[][] = [];
  const row = (l: ChargebackLineData, cost: bigint, quantity: string, description: string, status: string | null, tags: Record<string, string>, split = false) => {
    rows.push([
      statement.accountId,
      statement.accountName,
      statement.periodStart,
      statement.periodEnd,
      statement.periodStart,
      statement.periodEnd,
      statement.currency,
      prepaid ? '0.00' : formatCents(cost),
      formatCents(cost),
      'Usage',
      description,
      status,
      'HeyGen',
      'HeyGen',
      'HeyGen Enterprise API',
      'AI and Machine Learning',
      l.orgUnitId,
      paths.get(l.orgUnitId) ?? l.name,
      quantity,
      'credit-seconds',
      JSON.stringify({
        'x-gateway/kind': l.kind,
        'x-gateway/period': statement.period,
        'x-gateway/billing-model': statement.billingModel,
        ...(statement.policy ? { 'x-gateway/policy': statement.policy } : {}),
        // The unit's in-pool and overage split is not kept per tag set: only a unit's whole row carries it.
        ...(split
          ? {}
          : { 'x-gateway/in-pool-credit-seconds': l.ownInPoolCreditSeconds, 'x-gateway/overage-credit-seconds': l.ownOverageCreditSeconds }),
        ...tags,
      }),
    ]);
  };
  for (const l of lines) {
    const isCostCentre = l.orgUnitId === statement.costCentreUnitId;
    let own = cents(l.ownCostUsd);
    if (isCostCentre && forfeitedCents > 0n) {
      own -= forfeitedCents;
      row(l, forfeitedCents, '0', 'Prepaid credits forfeited at the end of the term', 'Unused', {
        'x-gateway/cost-centre': 'true',
        'x-gateway/forfeited-credit-seconds': statement.forfeitedCreditSeconds,
      });
    }
    if (own === 0n && l.ownCreditSeconds === '0') continue;
    const description = isCostCentre
      ? 'HeyGen usage charged back, with the commitment no unit used (cost centre)'
      : 'HeyGen usage charged back';
    const centre: Record<string, string> = isCostCentre ? { 'x-gateway/cost-centre': 'true' } : {};
    const parts = (tagSets?.get(l.orgUnitId) ?? []).filter((p) => p.ownMicroCs !== 0n || p.ownCents !== 0n);
    // A cost centre's forfeited credits are their own row above: its split (of the whole own cost) is not used.
    if (!parts.some((p) => p.value !== null) || (isCostCentre && forfeitedCents > 0n)) {
      row(l, own, l.ownCreditSeconds, description, null, centre);
      continue;
    }
    for (const p of parts) {
      const tags: Record<string, string> = p.value === null ? { ...centre, 'x-gateway/untagged': 'true' } : { ...centre, ...sortedTags(p.value) };
      row(l, p.ownCents, formatCreditSeconds(p.ownMicroCs), description, null, tags, true);
    }
  }
  return csv(FOCUS_CSV_COLUMNS, rows);
}

// An account's live position in one period: included pool, usage, overage and the projected invoice.
import { isNull, sql } from 'drizzle-orm';
import { previousPeriod } from '../primitives/period.js';
import type { Db } from '../db/client.js';
import { queryRows, toBigInt } from '../db/client.js';
import { orgUnitsTable } from '../db/schema.js';
import { add, mul, rational, type Rational } from '../primitives/rational.js';
import { formatCents, MICRO_PER_CS, parseUsd, usdToCentsHalfUp } from '../primitives/money.js';
import { termPeriods, termsFor, type AccountRow, type AccountTermsRow } from '../accounts/accounts.js';
import { pricePerCs } from './terms.js';

export interface AccountPeriodSummary {
  accountId: string;
  period: string;
  includedMicroCs: bigint;
  usedMicroCs: bigint;
  reservedMicroCs: bigint;
  overageMicroCs: bigint;
  remainingIncludedMicroCs: bigint;
  projectedInvoiceUsd: string;
}

async function rootId(db: Db): Promise<string | null> {
  const [root] = await db.select({ id: orgUnitsTable.id }).from(orgUnitsTable).where(isNull(orgUnitsTable.parentId));
  return root?.id ?? null;
}

/** Usage of an account at the root (every project is under it) over an inclusive period range. */
export async function usageAtRoot(db: Db, accountId: string, from: string, to: string) {
  const root = await rootId(db);
  if (!root) return { reserved: 0n, settled: 0n };
  const [row] = await queryRows<{ reserved: string; settled: string }>(
    db,
    sql`select coalesce(sum(reserved_micro_cs), 0)::text as reserved, coalesce(sum(settled_micro_cs), 0)::text as settled
        from usage_rollups where org_unit_id = ${root} and account_id = ${accountId} and period between ${from} and ${to}`,
  );
  return { reserved: toBigInt(row?.reserved), settled: toBigInt(row?.settled) };
}

export interface RootUsageKey {
  accountId: string;
  from: string;
  to: string;
}

/** usageAtRoot of many (account, period range) keys in one statement, in the order of the keys. */
export async function usagesAtRoot(db: Db, keys: readonly RootUsageKey[]): Promise<{ reserved: bigint; settled: bigint }[]> {
  if (keys.length === 0) return [];
  const values = sql.join(
    keys.map((k, i) => sql`(${i}::int, ${k.accountId}::uuid, ${k.from}::text, ${k.to}::text)`),
    sql`, `,
  );
  const rows = await queryRows<{ i: number; reserved: string; settled: string }>(
    db,
    sql`select k.i, coalesce(sum(r.reserved_micro_cs), 0)::text as reserved, coalesce(sum(r.settled_micro_cs), 0)::text as settled
        from (values ${values}) as k(i, account_id, from_period, to_period)
        left join usage_rollups r on r.org_unit_id = (select id from org_units where parent_id is null)
          and r.account_id = k.account_id and r.period between k.from_period and k.to_period
        group by k.i`,
  );
  const byIndex = new Map(rows.map((r) => [Number(r.i), { reserved: toBigInt(r.reserved), settled: toBigInt(r.settled) }]));
  return keys.map((_, i) => byIndex.get(i) ?? { reserved: 0n, settled: 0n });
}

/** Where accountPeriod reads from: the database directly, or a request's batching loaders (the same rows). */
export interface AccountPeriodSources {
  termsAt(accountId: string, period: string): Promise<AccountTermsRow | null>;
  usageAtRoot(accountId: string, from: string, to: string): Promise<{ reserved: bigint; settled: bigint }>;
}

function direct(db: Db): AccountPeriodSources {
  return { termsAt: (accountId, period) => termsFor(db, accountId, period), usageAtRoot: (accountId, from, to) => usageAtRoot(db, accountId, from, to) };
}

/** The period's invoice for `settled` usage: MMC + overage × overage rate, or used × price per credit-second. */
export function invoiceOf(account: AccountRow, terms: AccountTermsRow | null, settled: bigint, included: bigint): Rational {
  const microToCs = (micro: bigint) => rational(micro, MICRO_PER_CS);
  if (account.billingModel === 'USAGE_BASED') {
    const overage = settled > included ? settled - included : 0n;
    return add(parseUsd(terms?.mmcUsd ?? '0'), mul(microToCs(overage), parseUsd(terms?.overageRateUsd ?? '0')));
  }
  return mul(microToCs(settled), pricePerCs(terms));
}

/** The invoice in US dollars, rounded half up to the cent. */
export function invoiceUsdOf(account: AccountRow, terms: AccountTermsRow | null, settled: bigint, included: bigint): string {
  return formatCents(usdToCentsHalfUp(invoiceOf(account, terms, settled, included)));
}

/**
 * Usage-based: included = the monthly pool; invoice = MMC + overage × overage rate.
 * Credit package: included = what is left of the term's pool at the start of the period; invoice for the
 * period = used × price per credit-second.
 */
export async function accountPeriod(db: Db | AccountPeriodSources, account: AccountRow, period: string): Promise<AccountPeriodSummary> {
  const sources = 'termsAt' in db ? db : direct(db);
  const [terms, { reserved, settled }] = await Promise.all([sources.termsAt(account.id, period), sources.usageAtRoot(account.id, period, period)]);
  let included: bigint;
  if (account.billingModel === 'USAGE_BASED') {
    included = terms?.includedMicroCs ?? 0n;
  } else {
    const pool = terms?.poolMicroCs ?? 0n;
    const term = termPeriods(terms);
    const before = term && term.from < period ? (await sources.usageAtRoot(account.id, term.from, previousPeriod(period))).settled : 0n;
    included = pool > before ? pool - before : 0n;
  }
  const invoice = invoiceOf(account, terms, settled, included);
  return {
    accountId: account.id,
    period,
    includedMicroCs: included,
    usedMicroCs: settled,
    reservedMicroCs: reserved,
    overageMicroCs: settled > included ? settled - included : 0n,
    remainingIncludedMicroCs: included > settled ? included - settled : 0n,
    projectedInvoiceUsd: formatCents(usdToCentsHalfUp(invoice)),
  };
}

// HeyGen accounts: contract terms, the encrypted API key, concurrency limit and price book.
import { and, desc, eq, lte } from 'drizzle-orm';
import { newRowId } from '../primitives/ids.js';
import { isUniqueViolation, type Db } from '../db/client.js';
import { accountTermsTable, accountsTable, type BillingModel, type PriceBook } from '../db/schema.js';
import { ValidationError } from '../errors.js';
import { isCalendarDate, requireName } from '../validation.js';
import { isValidTimeZone } from '../primitives/period.js';
import type { SecretBox } from '../secrets/secret-box.js';
import { secretHint } from '../secrets/secret-box.js';
import { defaultPriceBook, PRICE_BOOK_MAXIMA, PRODUCTS } from './price-book.js';
import { secondsToMicro } from '../primitives/money.js';
import type { HeygenConnection } from '../heygen/types.js';
import { seesEverything, type Actor } from '../auth/actor.js';
import { accountForPath } from '../org/units.js';

export type AccountRow = typeof accountsTable.$inferSelect;
export type AccountTermsRow = typeof accountTermsTable.$inferSelect;

const USD = /^\d{1,12}(\.\d{1,12})?$/;
const CS = /^\d{1,15}(\.\d{1,6})?$/;
const PERIOD = /^\d{4}-(0[1-9]|1[0-2])$/;

export interface UsageBasedTermsInput {
  mmcUsd: string;
  includedCreditSeconds: string;
  contractRateUsd: string;
  overageRateUsd: string;
  termStart?: string | null;
  termEnd?: string | null;
}
export interface CreditPackageTermsInput {
  totalCreditSeconds: string;
  /** The price per credit-second, or (exclusive) the package's total price. */
  pricePerCreditSecondUsd?: string | null;
  totalPriceUsd?: string | null;
  termStart: string;
  termEnd: string;
}

export interface CreateAccountInput {
  name: string;
  billingModel: BillingModel;
  usageBased?: UsageBasedTermsInput | null;
  creditPackage?: CreditPackageTermsInput | null;
  apiKey: string;
  baseUrl?: string | null;
  concurrencyLimit?: number | null;
  timezone?: string | null;
  webhookSecret?: string | null;
  effectiveFrom: string;
}

function need(value: string | undefined | null, pattern: RegExp | ((v: string) => boolean), field: string, what: string): string {
  const ok = value !== undefined && value !== null && (typeof pattern === 'function' ? pattern(value.trim()) : pattern.test(value.trim()));
  if (!ok) throw new ValidationError(field, `${field} must be ${what}`);
  return value!.trim();
}
const DATE = isCalendarDate;

/** The money columns of a terms row, validated; shared by createAccount and setAccountTerms. */
export function termsValues(input: Pick<CreateAccountInput, 'billingModel' | 'usageBased' | 'creditPackage'>) {
  if (input.billingModel === 'USAGE_BASED') {
    const t = input.usageBased;
    if (!t) throw new ValidationError('usageBased', 'usage-based accounts need usageBased terms');
    const values = {
      mmcUsd: need(t.mmcUsd, USD, 'usageBased.mmcUsd', 'a USD amount'),
      includedMicroCs: secondsToMicro(need(t.includedCreditSeconds, CS, 'usageBased.includedCreditSeconds', 'credit-seconds')),
      contractRateUsd: need(t.contractRateUsd, USD, 'usageBased.contractRateUsd', 'a USD rate'),
      overageRateUsd: need(t.overageRateUsd, USD, 'usageBased.overageRateUsd', 'a USD rate'),
      termStart: t.termStart ? need(t.termStart, DATE, 'usageBased.termStart', 'a date (YYYY-MM-DD)') : null,
      termEnd: t.termEnd ? need(t.termEnd, DATE, 'usageBased.termEnd', 'a date (YYYY-MM-DD)') : null,
    };
    if (values.includedMicroCs <= 0n) throw new ValidationError('usageBased.includedCreditSeconds', 'the included pool must be positive');
    return values;
  }
  const t = input.creditPackage;
  if (!t) throw new ValidationError('creditPackage', 'credit-package accounts need creditPackage terms');
  const hasPrice = t.pricePerCreditSecondUsd !== undefined && t.pricePerCreditSecondUsd !== null;
  const hasTotal = t.totalPriceUsd !== undefined && t.totalPriceUsd !== null;
  if (hasPrice === hasTotal) {
    throw new ValidationError('creditPackage.pricePerCreditSecondUsd', 'give either pricePerCreditSecondUsd or totalPriceUsd');
  }
  const values = {
    poolMicroCs: secondsToMicro(need(t.totalCreditSeconds, CS, 'creditPackage.totalCreditSeconds', 'credit-seconds')),
    pricePerCsUsd: hasPrice ? need(t.pricePerCreditSecondUsd, USD, 'creditPackage.pricePerCreditSecondUsd', 'a USD price') : null,
    totalPriceUsd: hasTotal ? need(t.totalPriceUsd, USD, 'creditPackage.totalPriceUsd', 'a USD amount') : null,
    termStart: need(t.termStart, DATE, 'creditPackage.termStart', 'a date (YYYY-MM-DD)'),
    termEnd: need(t.termEnd, DATE, 'creditPackage.termEnd', 'a date (YYYY-MM-DD)'),
  };
  if (values.poolMicroCs <= 0n) throw new ValidationError('creditPackage.totalCreditSeconds', 'the pool must be positive');
  if (values.termEnd <= values.termStart) throw new ValidationError('creditPackage.termEnd', 'termEnd must be after termStart');
  return values;
}

export function validatePriceBook(book: PriceBook): PriceBook {
  for (const product of PRODUCTS) {
    const rate = book.rates[product];
    if (rate === undefined || !CS.test(rate)) throw new ValidationError(`priceBook.rates.${product}`, 'must be a non-negative decimal');
  }
  for (const source of PRICE_BOOK_MAXIMA) {
    // A maximum is what a job is held at when nothing can measure it: it must be a positive length.
    const max = book.maxSeconds?.[source];
    if (max === undefined || !CS.test(max) || secondsToMicro(max) <= 0n) {
      throw new ValidationError(`priceBook.maxSeconds.${source}`, 'must be a positive decimal number of seconds');
    }
  }
  if (!Number.isInteger(book.safetyMarginPercent) || book.safetyMarginPercent < 100 || book.safetyMarginPercent > 1000) {
    throw new ValidationError('priceBook.safetyMarginPercent', 'must be an integer from 100 to 1000');
  }
  return book;
}

export async function createAccount(tx: Db, box: SecretBox, input: CreateAccountInput, defaults: { baseUrl: string }): Promise<AccountRow> {
  const name = requireName(input.name);
  const apiKey = validateApiKey(input.apiKey);
  const baseUrl = (input.baseUrl ?? defaults.baseUrl).trim().replace(/\/+$/, '');
  try {
    const url = new URL(baseUrl);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('protocol');
  } catch {
    throw new ValidationError('baseUrl', 'baseUrl must be an http(s) URL');
  }
  const concurrencyLimit = input.concurrencyLimit ?? 20;
  if (!Number.isInteger(concurrencyLimit) || concurrencyLimit < 1 || concurrencyLimit > 10_000) {
    throw new ValidationError('concurrencyLimit', 'concurrencyLimit must be an integer from 1 to 10000');
  }
  const timezone = input.timezone ?? 'UTC';
  if (!isValidTimeZone(timezone)) throw new ValidationError('timezone', 'timezone must be an IANA time zone');
  if (!PERIOD.test(input.effectiveFrom)) throw new ValidationError('effectiveFrom', 'effectiveFrom must be a period (YYYY-MM)');
  const terms = termsValues(input);
  const existing = await tx.select({ id: accountsTable.id }).from(accountsTable).where(eq(accountsTable.name, name));
  if (existing.length > 0) throw new ValidationError('name', 'an account with this name exists');

  // The ciphertexts are bound to the row id, so the id is chosen first.
  const id = newRowId();
  let account: AccountRow | undefined;
  try {
    [account] = await tx
      .insert(accountsTable)
      .values({
        id,
        name,
        billingModel: input.billingModel,
        apiKeyCiphertext: box.encrypt(apiKey, apiKeyContext(id)),
        apiKeyHint: secretHint(apiKey),
        webhookSecretCiphertext: input.webhookSecret ? box.encrypt(input.webhookSecret, webhookSecretContext(id)) : null,
        baseUrl,
        concurrencyLimit,
        timezone,
        priceBook: defaultPriceBook(),
      })
      .returning();
  } catch (error) {
    // A concurrent createAccount took the name between the check above and this insert.
    if (isUniqueViolation(error)) throw new ValidationError('name', 'an account with this name exists');
    throw error;
  }
  await tx.insert(accountTermsTable).values({ accountId: id, effectiveFrom: input.effectiveFrom, ...terms });
  return account!;
}

/** A HeyGen API key as it may be stored: visible ASCII (it travels in a header), 8 to 500 characters. */
export function validateApiKey(value: string): string {
  const apiKey = value.trim();
  if (!/^[\x21-\x7e]{8,500}$/.test(apiKey)) throw new ValidationError('apiKey', 'apiKey must be 8 to 500 visible ASCII characters');
  return apiKey;
}

export function apiKeyContext(accountId: string): string {
  return `account:${accountId}:api_key`;
}
export function webhookSecretContext(accountId: string): string {
  return `account:${accountId}:webhook_secret`;
}

export function connectionOf(box: SecretBox, account: AccountRow): HeygenConnection {
  return { baseUrl: account.baseUrl, apiKey: box.decrypt(account.apiKeyCiphertext, apiKeyContext(account.id)) };
}

export function webhookSecretOf(box: SecretBox, account: AccountRow): string | null {
  return account.webhookSecretCiphertext ? box.decrypt(account.webhookSecretCiphertext, webhookSecretContext(account.id)) : null;
}

/** The terms in force in a period: the latest version whose effective_from is not after it. */
export async function termsFor(db: Db, accountId: string, period: string): Promise<AccountTermsRow | null> {
  const [row] = await db
    .select()
    .from(accountTermsTable)
    .where(and(eq(accountTermsTable.accountId, accountId), lte(accountTermsTable.effectiveFrom, period)))
    .orderBy(desc(accountTermsTable.effectiveFrom))
    .limit(1);
  return row ?? null;
}

/**
 * Accounts a caller may see: all for ADMIN and FINANCE; otherwise the one account the caller's unit draws on
 * (its own or the nearest ancestor's).
 */
export async function accountsVisibleTo(db: Db, actor: Actor | null): Promise<string[] | 'all'> {
  if (!actor) return [];
  if (seesEverything(actor)) return 'all';
  const accountId = actor.unitPath.length > 0 ? await accountForPath(db, actor.unitPath) : null;
  return accountId ? [accountId] : [];
}

/** Periods (YYYY-MM, inclusive) of the contract term, or null when the terms have no term dates. */
export function termPeriods(terms: AccountTermsRow | null): { from: string; to: string } | null {
  if (!terms?.termStart || !terms.termEnd) return null;
  return { from: terms.termStart.slice(0, 7), to: terms.termEnd.slice(0, 7) };
}

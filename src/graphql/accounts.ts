// HeyGen accounts: terms, key hint (never the key), concurrency and the live period position.
import { inArray } from 'drizzle-orm';
import { builder } from './builder.js';
import { MUTATION_ERRORS } from './errors.js';
import { visibleAccount, visibleAccountIds } from './visibility.js';
import { BILLING_MODELS, accountsTable } from '../db/schema.js';
import { createAccount, type AccountRow } from '../accounts/accounts.js';
import { accountPeriod, type AccountPeriodSummary } from '../billing/account-period.js';
import { recordAudit } from '../audit/audit.js';
import { secretHint } from '../secrets/secret-box.js';
import { periodOf } from '../primitives/period.js';
import { accountTotalsVisible } from './visibility.js';


export const BillingModelEnum = builder.enumType('BillingModel', {
  description: 'USAGE_BASED: monthly minimum commitment with an included pool and overage; CREDIT_PACKAGE: a prepaid pool over a term.',
  values: BILLING_MODELS,
});

export const AccountRef = builder.objectRef<AccountRow>('Account');

export const AccountPeriodRef = builder.objectRef<AccountPeriodSummary>('AccountPeriod').implement({
  description: "An account's position in one period, live (provisional until the period is closed).",
  fields: (t) => ({
    period: t.field({ type: 'Period', description: 'The period.', resolve: (p) => p.period }),
    includedCreditSeconds: t.field({
      type: 'CreditSeconds',
      description: 'Usage-based: the monthly pool. Credit package: what was left of the term pool when the period began.',
      resolve: (p) => p.includedMicroCs,
    }),
    usedCreditSeconds: t.field({ type: 'CreditSeconds', description: 'Settled usage in the period.', resolve: (p) => p.usedMicroCs }),
    reservedCreditSeconds: t.field({ type: 'CreditSeconds', description: 'Holds of jobs in flight admitted in the period.', resolve: (p) => p.reservedMicroCs }),
    overageCreditSeconds: t.field({ type: 'CreditSeconds', description: 'Usage past the included pool.', resolve: (p) => p.overageMicroCs }),
    remainingIncludedCreditSeconds: t.field({ type: 'CreditSeconds', description: 'Included pool not yet used.', resolve: (p) => p.remainingIncludedMicroCs }),
    projectedInvoiceUsd: t.field({
      type: 'Usd',
      description: 'Usage-based: MMC + overage × overage rate. Credit package: used × price per credit-second. Rounded half up to the cent.',
      resolve: (p) => p.projectedInvoiceUsd,
    }),
  }),
});

builder.node(AccountRef, {
  description: 'A HeyGen Enterprise API contract whose key the gateway holds.',
  id: { resolve: (a) => a.id },
  loadOne: (id, ctx) => visibleAccount(ctx, id),
  fields: (t) => ({
    name: t.exposeString('name', { description: 'Name.' }),
    billingModel: t.field({ type: BillingModelEnum, description: 'Billing model.', resolve: (a) => a.billingModel }),
    apiKeyHint: t.exposeString('apiKeyHint', { description: 'The last four characters of the API key; the key itself is never readable.' }),
    baseUrl: t.exposeString('baseUrl', { description: 'HeyGen API base URL used for this account.' }),
    timezone: t.exposeString('timezone', { description: 'IANA time zone of the billing periods.' }),
    concurrencyLimit: t.exposeInt('concurrencyLimit', { description: 'Concurrent jobs the contract allows.' }),
    inFlightJobs: t.int({ description: 'Jobs admitted and not yet finished.', resolve: (a, _args, ctx) => ctx.loaders.inFlightByAccount.load(a.id) }),
    priceBookUnit: t.string({ description: 'Unit of the price book rates.', resolve: (a) => a.priceBook.unit }),
    priceBook: t.field({
      type: 'JSON',
      description: 'Rates per product (credit-seconds per output second), estimate defaults and safety margin.',
      resolve: (a) => a.priceBook,
    }),
    period: t.field({
      type: AccountPeriodRef,
      nullable: true,
      description:
        "The position in a period (default: the current one). Null for callers who may not read every unit's costs (SERVICE, and MANAGER or MEMBER below the root): the account's totals minus their own usage would tell their siblings'.",
      args: { period: t.arg({ type: 'Period', required: false, description: 'YYYY-MM; default: now.' }) },
      resolve: (a, args, ctx) =>
        accountTotalsVisible(ctx)
          ? accountPeriod(
              { termsAt: ctx.loaders.termsAt, usageAtRoot: (accountId, from, to) => ctx.loaders.rootUsage.load({ accountId, from, to }) },
              a,
              args.period ?? ctx.loaders.periodNow(a.timezone),
            )
          : null,
    }),
    createdAt: t.field({ type: 'DateTime', description: 'When the account was added.', resolve: (a) => a.createdAt }),
  }),
});

export const UsageBasedTermsInput = builder.inputType('UsageBasedTermsInput', {
  description: 'Usage-based contract terms: four independent terms (docs/heygen.md, Billing).',
  fields: (t) => ({
    mmcUsd: t.field({ type: 'Usd', required: true, description: 'Monthly minimum commitment, billed whatever the usage.' }),
    includedCreditSeconds: t.field({ type: 'CreditSeconds', required: true, description: 'Credit-seconds included per month.' }),
    contractRateUsd: t.field({ type: 'Usd', required: true, description: 'Contract rate per credit-second.' }),
    overageRateUsd: t.field({ type: 'Usd', required: true, description: 'Rate per credit-second past the pool.' }),
    termStart: t.string({ required: false, description: 'Contract term start (YYYY-MM-DD), for CONTRACT_TERM budgets.' }),
    termEnd: t.string({ required: false, description: 'Contract term end, inclusive (YYYY-MM-DD).' }),
  }),
});

export const CreditPackageTermsInput = builder.inputType('CreditPackageTermsInput', {
  description: 'Credit-package terms: a prepaid pool over a term.',
  fields: (t) => ({
    totalCreditSeconds: t.field({ type: 'CreditSeconds', required: true, description: 'The pool bought.' }),
    pricePerCreditSecondUsd: t.field({ type: 'Usd', required: false, description: 'Price per credit-second (or give totalPriceUsd).' }),
    totalPriceUsd: t.field({
      type: 'Usd',
      required: false,
      description: 'Total price of the package (or give pricePerCreditSecondUsd); the price per credit-second is then total ÷ pool, kept exact.',
    }),
    termStart: t.string({ required: true, description: 'Term start (YYYY-MM-DD).' }),
    termEnd: t.string({ required: true, description: 'Term end, inclusive (YYYY-MM-DD).' }),
  }),
});

builder.queryFields((t) => ({
  accounts: t.field({
    type: [AccountRef],
    authScopes: { authenticated: true },
    description: 'Accounts the caller may see (ADMIN and FINANCE: all; others: the one their unit draws on).',
    resolve: async (_r, _a, ctx) => {
      const visible = await visibleAccountIds(ctx);
      if (visible !== 'all' && visible.length === 0) return [];
      return ctx.db
        .select()
        .from(accountsTable)
        .where(visible === 'all' ? undefined : inArray(accountsTable.id, visible))
        .orderBy(accountsTable.name);
    },
  }),
}));

builder.mutationFields((t) => ({
  createAccount: t.fieldWithInput({
    type: builder.simpleObject('CreateAccountPayload', {
      description: 'The created account.',
      fields: (f) => ({ account: f.field({ type: AccountRef, description: 'The new account.' }) }),
    }),
    errors: { types: MUTATION_ERRORS },
    authScopes: { admin: true },
    description:
      'Adds a HeyGen account (ADMIN). The API key and webhook secret are write-only: encrypted at rest, only their hints are readable (and audited).',
    input: {
      name: t.input.string({ required: true, description: 'Unique name.' }),
      billingModel: t.input.field({ type: BillingModelEnum, required: true, description: 'Billing model.' }),
      usageBased: t.input.field({ type: UsageBasedTermsInput, required: false, description: 'Terms of a usage-based account.' }),
      creditPackage: t.input.field({ type: CreditPackageTermsInput, required: false, description: 'Terms of a credit package.' }),
      effectiveFrom: t.input.field({ type: 'Period', required: false, description: 'First period the terms apply to (default: the current one).' }),
      apiKey: t.input.string({ required: true, description: 'The HeyGen API key (write-only).' }),
      webhookSecret: t.input.string({ required: false, description: "Secret of the account's registered HeyGen webhook endpoint (write-only)." }),
      baseUrl: t.input.string({ required: false, description: 'HeyGen base URL (default: the configured HEYGEN_BASE_URL).' }),
      concurrencyLimit: t.input.int({ required: false, description: 'Concurrent jobs the contract allows (default 20).' }),
      timezone: t.input.string({ required: false, description: 'IANA time zone of billing periods (default UTC).' }),
    },
    resolve: async (_r, { input }, ctx) => {
      const timezone = input.timezone ?? 'UTC';
      const account = await ctx.db.transaction(async (tx) => {
        const created = await createAccount(
          tx,
          ctx.services.box,
          {
            name: input.name,
            billingModel: input.billingModel,
            usageBased: input.usageBased ?? null,
            creditPackage: input.creditPackage ?? null,
            apiKey: input.apiKey,
            baseUrl: input.baseUrl ?? null,
            concurrencyLimit: input.concurrencyLimit ?? null,
            timezone,
            webhookSecret: input.webhookSecret ?? null,
            effectiveFrom: input.effectiveFrom ?? safePeriod(ctx.now, timezone),
          },
          { baseUrl: ctx.services.config.heygenBaseUrl },
        );
        const { apiKeyCiphertext: _key, webhookSecretCiphertext: _secret, ...visible } = created;
        await recordAudit(tx, ctx.actor!, {
          action: 'account.create',
          entityType: 'Account',
          entityId: created.id,
          before: null,
          // Secrets only as hints: the key and the webhook secret never reach the audit trail.
          after: { ...visible, webhookSecretHint: input.webhookSecret ? secretHint(input.webhookSecret) : null },
        });
        return created;
      });
      return { account };
    },
  }),
}));

function safePeriod(now: Date, timezone: string): string {
  try {
    return periodOf(now, timezone);
  } catch {
    return periodOf(now, 'UTC'); // createAccount reports the bad time zone itself
  }
}


import { createHash } from 'node:crypto';
import { z } from 'zod';
import { decimalToMicro, divideRounded, MICRO, ratioToNumber } from './money.js';

export const BILLING_TYPES = ['usage_based', 'wallet'] as const;
export type SimBillingType = (typeof BILLING_TYPES)[number];

const decimal = z.union([z.string().regex(/^\d+(\.\d+)?$/), z.number().min(0)]);

export const accountInputSchema = z.strictObject({
  apiKey: z.string().min(1),
  username: z.string().min(1).optional(),
  email: z.string().nullable().optional(),
  firstName: z.string().nullable().optional(),
  lastName: z.string().nullable().optional(),
  /** Concurrent jobs in progress; defaults to config.defaultConcurrencyLimit. */
  concurrencyLimit: z.number().int().min(0).optional(),
  /** `usage_based` (an MMC contract) or `wallet` (a credit package, currency `credits`). */
  billingType: z.enum(BILLING_TYPES).optional(),
  /** usage_based: credits included per period (default 2000, the $1,000 tier at 60 cs per credit). */
  includedCredits: decimal.optional(),
  /** wallet: credits bought (default 2000). */
  walletCredits: decimal.optional(),
  spendingCapUsd: z.number().min(0).nullable().optional(),
  /** usage_based: what each credit-second past the included pool adds to spending_current_usd. */
  overageUsdPerCreditSecond: decimal.optional(),
});

export type SimAccountInput = z.input<typeof accountInputSchema>;

export interface WebhookEndpoint {
  endpointId: string;
  url: string;
  events: string[] | null;
  status: 'enabled' | 'disabled';
  createdAt: string;
  secret: string;
}

const DEFAULT_POOL_CREDITS = '2000';

/** One HeyGen account (one API key) with its own limits, balance and webhook endpoints. */
export class SimAccount {
  readonly apiKey: string;
  username = '';
  email: string | null = null;
  firstName: string | null = null;
  lastName: string | null = null;
  concurrencyLimit = 10;
  billingType: SimBillingType = 'usage_based';
  /** Pools are kept in micro-credits so that a change of creditUnitSeconds re-reads them consistently. */
  includedMicroCredits = 0n;
  walletMicroCredits = 0n;
  spendingCapUsd: number | null = null;
  overageMicroUsdPerCreditSecond = 0n;

  /** Usage in micro-credit-seconds: jobs completed through this simulator, and usage made elsewhere. */
  usedMicroCs = 0n;
  outsideMicroCs = 0n;
  inFlight = 0;
  /** The high-water mark of inFlight. */
  maxInFlight = 0;
  readonly endpoints = new Map<string, WebhookEndpoint>();
  requestWindow = { second: -1, count: 0 };

  constructor(input: SimAccountInput, defaultConcurrencyLimit: number) {
    this.apiKey = input.apiKey;
    this.username = `sim_user_${createHash('sha256').update(input.apiKey).digest('hex').slice(0, 8)}`;
    this.concurrencyLimit = defaultConcurrencyLimit;
    this.includedMicroCredits = decimalToMicro(DEFAULT_POOL_CREDITS);
    this.walletMicroCredits = decimalToMicro(DEFAULT_POOL_CREDITS);
    this.overageMicroUsdPerCreditSecond = decimalToMicro('0.01');
    this.update(input);
  }

  /** Applies the given contract terms; anything omitted, and usage, jobs and endpoints, are kept. */
  update(input: SimAccountInput): void {
    if (input.username !== undefined) this.username = input.username;
    if (input.email !== undefined) this.email = input.email;
    if (input.firstName !== undefined) this.firstName = input.firstName;
    if (input.lastName !== undefined) this.lastName = input.lastName;
    if (input.concurrencyLimit !== undefined) this.concurrencyLimit = input.concurrencyLimit;
    if (input.billingType !== undefined) this.billingType = input.billingType;
    if (input.includedCredits !== undefined) this.includedMicroCredits = decimalToMicro(input.includedCredits);
    if (input.walletCredits !== undefined) this.walletMicroCredits = decimalToMicro(input.walletCredits);
    if (input.spendingCapUsd !== undefined) this.spendingCapUsd = input.spendingCapUsd;
    if (input.overageUsdPerCreditSecond !== undefined) {
      this.overageMicroUsdPerCreditSecond = decimalToMicro(input.overageUsdPerCreditSecond);
    }
  }

  get totalMicroCs(): bigint {
    return this.usedMicroCs + this.outsideMicroCs;
  }

  /** Micro-dollars of overage: usage past the included pool at the overage rate. */
  spendingMicroUsd(unitSeconds: number): bigint {
    const overage = this.totalMicroCs - this.includedMicroCredits * BigInt(unitSeconds);
    if (overage <= 0n) return 0n;
    return divideRounded(overage * this.overageMicroUsdPerCreditSecond, MICRO);
  }

  /** Why a new job would be refused for lack of credit, or null. */
  insufficientCredit(unitSeconds: number): string | null {
    if (this.billingType === 'wallet') {
      return this.walletMicroCredits * BigInt(unitSeconds) - this.totalMicroCs <= 0n ? 'Wallet balance is exhausted' : null;
    }
    if (this.spendingCapUsd === null) return null;
    return this.spendingMicroUsd(unitSeconds) >= decimalToMicro(this.spendingCapUsd) ? 'Spending cap reached' : null;
  }

  /** The `data` of GET /v3/users/me, amounts in credits. */
  userMe(unitSeconds: number): Record<string, unknown> {
    const unit = BigInt(unitSeconds);
    const perCredit = MICRO * unit;
    const remaining = (pool: bigint): number => {
      const left = pool * unit - this.totalMicroCs;
      return left > 0n ? ratioToNumber(left, perCredit) : 0;
    };
    const common = {
      username: this.username,
      email: this.email,
      first_name: this.firstName,
      last_name: this.lastName,
      billing_type: this.billingType,
      subscription: null,
    };
    if (this.billingType === 'wallet') {
      return {
        ...common,
        wallet: { currency: 'credits', remaining_balance: remaining(this.walletMicroCredits), auto_reload: null },
        usage_based: null,
      };
    }
    return {
      ...common,
      wallet: null,
      usage_based: {
        included_credits: ratioToNumber(this.includedMicroCredits, MICRO),
        remaining_credits: remaining(this.includedMicroCredits),
        spending_cap_usd: this.spendingCapUsd,
        spending_current_usd: ratioToNumber(this.spendingMicroUsd(unitSeconds), MICRO),
      },
    };
  }
}

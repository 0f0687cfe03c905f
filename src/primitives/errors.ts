// Billing input that cannot be allocated. It is the project's ValidationError (a typed, expected
// failure), with a machine-readable reason so callers and tests can tell the cases apart.
import { ValidationError } from '../errors.js';

export const BILLING_ERROR_REASONS = [
  'INVALID_AMOUNT',
  'INVALID_TERMS',
  'INVALID_POLICY',
  'INVALID_ORG_TREE',
  'INVALID_USAGE',
  'INVALID_SHARES',
  'INVALID_PERIOD',
  'INVALID_TIME_ZONE',
] as const;
export type BillingErrorReason = (typeof BILLING_ERROR_REASONS)[number];

export class BillingValidationError extends ValidationError {
  readonly reason: BillingErrorReason;
  constructor(reason: BillingErrorReason, field: string, message: string) {
    super(field, message);
    this.name = 'BillingValidationError';
    this.reason = reason;
  }
}

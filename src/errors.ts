// The closed set of expected failures. GraphQL exposes each as a typed error in a result union;
// anything else is unexpected and masked.
export abstract class DomainError extends Error {
  abstract readonly code: string;
}

export class ValidationError extends DomainError {
  readonly code = 'VALIDATION_FAILED';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'ValidationError';
  }
}

export class NotFoundError extends DomainError {
  readonly code = 'NOT_FOUND';
  constructor(readonly entity: string, readonly id: string) {
    super(`${entity} ${id} not found`);
    this.name = 'NotFoundError';
  }
}

export class ForbiddenError extends DomainError {
  readonly code = 'FORBIDDEN';
  constructor(message = 'not allowed for this caller') {
    super(message);
    this.name = 'ForbiddenError';
  }
}

/** What a refusal names, for humans: the unit, the window, and the amounts in credit-seconds and USD. */
export interface RefusalDetails {
  /** Name of the unit whose budget (or whose account pool) refused. */
  readonly unitName: string;
  /** The window the limit applies to: `MONTHLY 2026-12`, `CONTRACT_TERM 2026-01..2026-12`, `LIFETIME`, … */
  readonly window: string;
  /** The whole sentence, with the amounts in credit-seconds and (where the account has a price) USD. */
  readonly message: string;
}

/**
 * BUDGET: a HARD budget of a unit; POOL: the account pool; TAG: a budget on a tag value (a campaign) within a unit;
 * PERSON: a budget on a person within a unit.
 */
export type RefusalReason = 'BUDGET' | 'POOL' | 'TAG' | 'PERSON';

/** The group a TAG or PERSON budget covers. */
export type BudgetGroup = { readonly tagKey: string; readonly tagValue: string } | { readonly person: string };

const REFUSALS: Record<RefusalReason, string> = {
  BUDGET: 'the job would exceed a HARD budget on the project path',
  POOL: "the job would exceed the account's pool, and a budget on the path does not allow overage",
  TAG: 'the job would exceed a budget on one of its tag values',
  PERSON: 'the job would exceed a budget on its person',
};

export class BudgetExceededError extends DomainError {
  readonly code = 'BUDGET_EXCEEDED';
  constructor(
    readonly budgetId: string | null,
    readonly orgUnitId: string,
    readonly limitMicroCs: bigint,
    readonly availableMicroCs: bigint,
    readonly requestedMicroCs: bigint,
    readonly reason: RefusalReason,
    readonly details: RefusalDetails | null = null,
    /** TAG and PERSON refusals: the tag value or the person whose budget refused. */
    readonly group: BudgetGroup | null = null,
  ) {
    super(details?.message ?? REFUSALS[reason]);
    this.name = 'BudgetExceededError';
  }

  /** The same refusal, described. */
  withDetails(details: RefusalDetails): BudgetExceededError {
    return new BudgetExceededError(this.budgetId, this.orgUnitId, this.limitMicroCs, this.availableMicroCs, this.requestedMicroCs, this.reason, details, this.group);
  }
}

export class ConcurrencyLimitError extends DomainError {
  readonly code = 'CONCURRENCY_LIMIT';
  constructor(
    readonly limit: number,
    readonly inFlight: number,
    readonly retryAfterSeconds: number,
    /** Jobs of the account waiting in its queue; the free slots, if any, are theirs (src/jobs/queue.ts). */
    readonly waiting = 0,
  ) {
    super(
      inFlight < limit
        ? `the account's free concurrency slots (${inFlight} of ${limit} in flight) are not this job's: due to the ${waiting} job${waiting === 1 ? '' : 's'} waiting in its queue, or beyond its unit's maximum`
        : `the account already has ${inFlight} of ${limit} concurrent jobs in flight${waiting > 0 ? ` and ${waiting} waiting` : ''}`,
    );
    this.name = 'ConcurrencyLimitError';
  }
}

export class IdempotencyConflictError extends DomainError {
  readonly code = 'IDEMPOTENCY_CONFLICT';
  constructor(readonly existingJobId: string) {
    super('this idempotency key was already used with a different request');
    this.name = 'IdempotencyConflictError';
  }
}

export class UpstreamError extends DomainError {
  readonly code = 'UPSTREAM_ERROR';
  constructor(
    readonly upstreamCode: string,
    message: string,
  ) {
    super(message);
    this.name = 'UpstreamError';
  }
}

/** The rules a unit policy can set (docs/governance.md); CREDIT_SECONDS_PER_HOUR: one job larger than an hourly rate limit. */
export const POLICY_RULES = [
  'ALLOWED_KINDS',
  'ALLOWED_PRODUCTS',
  'MAX_RESOLUTION',
  'MAX_LENGTH_SECONDS',
  'MAX_COST_CREDIT_SECONDS',
  'ALLOWED_LANGUAGES',
  'JOBS_PER_MINUTE',
  'CREDIT_SECONDS_PER_HOUR',
] as const;
export type PolicyRule = (typeof POLICY_RULES)[number];

/**
 * A unit policy refuses the job (or a policy change would loosen an ancestor's rule): the rule, the unit that set it
 * (a service token's own limit: the token and its project), the limit and the job's (or the new policy's) value, as text.
 */
export class PolicyViolationError extends DomainError {
  readonly code = 'POLICY_VIOLATION';
  constructor(
    readonly rule: PolicyRule,
    readonly orgUnitId: string,
    readonly unitName: string | null,
    readonly limit: string,
    readonly actual: string,
    message: string,
    readonly serviceTokenId: string | null = null,
  ) {
    super(message);
    this.name = 'PolicyViolationError';
  }
}

/**
 * A rate limit of a unit on the path (or of the calling service token: the token and its project) is reached: retry
 * after the given wait.
 */
export class RateLimitedError extends DomainError {
  readonly code = 'RATE_LIMITED';
  constructor(
    readonly rule: 'JOBS_PER_MINUTE' | 'CREDIT_SECONDS_PER_HOUR',
    readonly orgUnitId: string,
    readonly unitName: string | null,
    readonly limit: string,
    readonly retryAfterSeconds: number,
    message: string,
    readonly serviceTokenId: string | null = null,
  ) {
    super(message);
    this.name = 'RateLimitedError';
  }
}

// Expected failures as typed GraphQL errors (plugin-errors unions). Only these classes are exposed.
import { builder } from './builder.js';
import {
  BudgetExceededError,
  ConcurrencyLimitError,
  DomainError,
  ForbiddenError,
  IdempotencyConflictError,
  NotFoundError,
  PolicyViolationError,
  POLICY_RULES,
  RateLimitedError,
  UpstreamError,
  ValidationError,
} from '../errors.js';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { accountTotalsVisible, budgetCountersVisible } from './visibility.js';

export const ErrorInterface = builder.interfaceRef<DomainError>('Error').implement({
  description: 'An expected failure, returned inside a mutation result union.',
  fields: (t) => ({
    message: t.exposeString('message', { description: 'What went wrong, for humans.' }),
    code: t.exposeString('code', { description: 'A stable machine-readable code.' }),
  }),
});

builder.objectType(ValidationError, {
  name: 'ValidationError',
  description: 'The input was refused; nothing was written.',
  interfaces: [ErrorInterface],
  fields: (t) => ({ field: t.exposeString('field', { description: 'The input field at fault, as a dotted path.' }) }),
});

builder.objectType(NotFoundError, {
  name: 'NotFoundError',
  description: 'The object does not exist, or the caller may not see it.',
  interfaces: [ErrorInterface],
  fields: (t) => ({ entity: t.exposeString('entity', { description: 'The kind of object looked for.' }) }),
});

builder.objectType(ForbiddenError, {
  name: 'ForbiddenError',
  description: 'The caller may see the object but not do this to it.',
  interfaces: [ErrorInterface],
});

builder.objectType(BudgetExceededError, {
  name: 'BudgetExceededError',
  description: 'Admitting the job would exceed a HARD budget (or the account pool where overage is not allowed).',
  interfaces: [ErrorInterface],
  fields: (t) => ({
    orgUnitId: t.id({ description: 'Global id of the unit whose budget refused the job.', resolve: (e) => encodeGlobalID('OrgUnit', e.orgUnitId) }),
    budgetId: t.id({
      nullable: true,
      description: 'Global id of the refusing budget: a Budget, or a GroupBudget for reason TAG or PERSON (null for a credit package pool).',
      resolve: (e) => (e.budgetId ? encodeGlobalID(e.group ? 'GroupBudget' : 'Budget', e.budgetId) : null),
    }),
    reason: t.exposeString('reason', {
      description: "BUDGET: a unit's HARD budget; POOL: the account pool; TAG: the budget of one of the job's tag values; PERSON: the budget of the job's person.",
    }),
    tagKey: t.string({ nullable: true, description: 'Reason TAG: the key of the tag value whose budget refused.', resolve: (e) => (e.group && 'tagKey' in e.group ? e.group.tagKey : null) }),
    tagValue: t.string({ nullable: true, description: 'Reason TAG: the tag value whose budget refused.', resolve: (e) => (e.group && 'tagKey' in e.group ? e.group.tagValue : null) }),
    person: t.string({ nullable: true, description: 'Reason PERSON: the person whose budget refused.', resolve: (e) => (e.group && 'person' in e.group ? e.group.person : null) }),
    orgUnitName: t.string({ nullable: true, description: 'Name of the unit whose budget (or whose account pool) refused the job.', resolve: (e) => e.details?.unitName ?? null }),
    window: t.string({
      nullable: true,
      description: 'The window the limit applies to: `MONTHLY 2026-12`, `CONTRACT_TERM 2026-01..2026-12`, `LIFETIME`, `included pool 2026-12` or `credit package term …`.',
      resolve: (e) => e.details?.window ?? null,
    }),
    limitCreditSeconds: t.field({
      type: 'CreditSeconds',
      nullable: true,
      description:
        "The limit that binds. Null when the caller may not see it: a budget above the caller's own subtree, or the account pool for a caller who may not read the account's totals (with availableCreditSeconds it would tell others' usage).",
      resolve: async (e, _a, ctx) =>
        (e.reason === 'POOL' ? accountTotalsVisible(ctx) : await budgetCountersVisible(ctx, { orgUnitId: e.orgUnitId })) ? e.limitMicroCs : null,
    }),
    availableCreditSeconds: t.field({ type: 'CreditSeconds', description: 'What is left under it now.', resolve: (e) => e.availableMicroCs }),
    requestedCreditSeconds: t.field({ type: 'CreditSeconds', description: 'The hold the job needed.', resolve: (e) => e.requestedMicroCs }),
  }),
});

builder.objectType(ConcurrencyLimitError, {
  name: 'ConcurrencyLimitError',
  description: "No concurrency slot of the account is free for this job now: the account's concurrent-jobs limit is reached, the free slots are due to jobs waiting in its queue, or the job's unit is at its maximum (setConcurrencyShares); try again later.",
  interfaces: [ErrorInterface],
  fields: (t) => ({
    limit: t.exposeInt('limit', { description: 'Concurrent jobs the account allows.' }),
    inFlight: t.exposeInt('inFlight', { description: 'Jobs in flight now.' }),
    retryAfterSeconds: t.exposeInt('retryAfterSeconds', {
      description: "A suggested wait before retrying: when the job would be expected to start had it been queued now (Job.queue's estimate).",
    }),
    waiting: t.exposeInt('waiting', { description: "Jobs waiting in the account's queue: free slots, when inFlight is below limit, are due to them." }),
  }),
});

builder.objectType(IdempotencyConflictError, {
  name: 'IdempotencyConflictError',
  description: 'The idempotency key was used before with a different request.',
  interfaces: [ErrorInterface],
  fields: (t) => ({
    existingJobId: t.id({ description: 'Global id of the job the key belongs to.', resolve: (e) => encodeGlobalID('Job', e.existingJobId) }),
  }),
});

builder.objectType(UpstreamError, {
  name: 'UpstreamError',
  description: 'HeyGen refused the request.',
  interfaces: [ErrorInterface],
  fields: (t) => ({ upstreamCode: t.exposeString('upstreamCode', { description: "HeyGen's error code." }) }),
});

export const PolicyRuleEnum = builder.enumType('PolicyRule', {
  description: 'A rule of a unit policy (docs/governance.md).',
  values: POLICY_RULES,
});

builder.objectType(PolicyViolationError, {
  name: 'PolicyViolationError',
  description: "A unit policy on the project's path refuses the job (nothing was written), or a policy change would loosen an ancestor's rule.",
  interfaces: [ErrorInterface],
  fields: (t) => ({
    rule: t.field({ type: PolicyRuleEnum, description: 'The rule.', resolve: (e) => e.rule }),
    orgUnitId: t.id({
      description: "Global id of the unit that set the rule (a service token's own rate limit: the token's project).",
      resolve: (e) => encodeGlobalID('OrgUnit', e.orgUnitId),
    }),
    serviceTokenId: t.id({
      nullable: true,
      description: "Global id of the calling service token when the rule is the token's own rate limit.",
      resolve: (e) => (e.serviceTokenId ? encodeGlobalID('ServiceToken', e.serviceTokenId) : null),
    }),
    orgUnitName: t.string({ nullable: true, description: 'Name of that unit.', resolve: (e) => e.unitName }),
    limit: t.exposeString('limit', { description: 'What the rule allows, in words: `AVATAR_VIDEO, TTS`, `1080p`, `120 s`, `500 cs`.' }),
    actual: t.exposeString('actual', { description: 'What the job (or the new policy) asked for, in the same words.' }),
  }),
});

builder.objectType(RateLimitedError, {
  name: 'RateLimitedError',
  description: 'A rate limit of a unit on the path (or of the calling service token) is reached; nothing was written. Retry after retryAfterSeconds.',
  interfaces: [ErrorInterface],
  fields: (t) => ({
    rule: t.field({ type: PolicyRuleEnum, description: 'JOBS_PER_MINUTE or CREDIT_SECONDS_PER_HOUR.', resolve: (e) => e.rule }),
    orgUnitId: t.id({
      description: "Global id of the unit whose limit is reached (a service token's own limit: the token's project).",
      resolve: (e) => encodeGlobalID('OrgUnit', e.orgUnitId),
    }),
    serviceTokenId: t.id({
      nullable: true,
      description: "Global id of the calling service token when the limit is the token's own.",
      resolve: (e) => (e.serviceTokenId ? encodeGlobalID('ServiceToken', e.serviceTokenId) : null),
    }),
    orgUnitName: t.string({ nullable: true, description: 'Name of that unit.', resolve: (e) => e.unitName }),
    limit: t.exposeString('limit', { description: 'The limit in words: `60 jobs per minute`, `500 credit-seconds per hour`.' }),
    retryAfterSeconds: t.exposeInt('retryAfterSeconds', { description: 'Seconds until the window has room for this job, computed from the window.' }),
  }),
});

export const MUTATION_ERRORS = [ValidationError, NotFoundError, ForbiddenError];
export const SUBMIT_ERRORS = [
  ...MUTATION_ERRORS,
  BudgetExceededError,
  ConcurrencyLimitError,
  IdempotencyConflictError,
  UpstreamError,
  PolicyViolationError,
  RateLimitedError,
];

// Unit policies and rate limits (docs/governance.md): OrgUnit.policy / effectivePolicy, setUnitPolicy,
// clearUnitPolicy, and a service token's own rate limits.
import { eq } from 'drizzle-orm';
import { builder } from './builder.js';
import { MUTATION_ERRORS, PolicyRuleEnum } from './errors.js';
import { decodeId } from './ids.js';
import { OrgUnitRef } from './org.js';
import { JobKindEnum } from './jobs.js';
import { ServiceTokenRef } from './auth.js';
import { visibleUnit, requireVisibleUnit } from './visibility.js';
import { RESOLUTIONS, serviceTokenRateLimitsTable, serviceTokensTable, unitPoliciesTable } from '../db/schema.js';
import { PolicyViolationError, NotFoundError, type PolicyRule } from '../errors.js';
import { PRODUCTS } from '../pricing/model.js';
import { clearUnitPolicy, creditSecondsInput, effectiveOf, policiesOnPath, setTokenRateLimit, setUnitPolicy, type EffectivePolicy, type EffectiveRule, type TokenRateLimitRow, type UnitPolicyRow } from '../org/policies.js';
import { recordAudit } from '../audit/audit.js';
import type { OrgUnitRow } from '../org/units.js';

const ResolutionEnum = builder.enumType('Resolution', {
  description: 'An output resolution, lowest first: `720p`, `1080p`, `4k`.',
  values: Object.fromEntries(RESOLUTIONS.map((r) => [`R${r.toUpperCase()}`, { value: r, description: r }])) as Record<string, { value: (typeof RESOLUTIONS)[number] }>,
});
const BilledProductEnum = builder.enumType('BilledProduct', {
  description: 'A product of the pricing model (the engine an output is billed as): docs/pricing.md.',
  values: PRODUCTS,
});

const UnitPolicyRef = builder.objectRef<UnitPolicyRow>('UnitPolicy').implement({
  description: "A unit's own policy: each field is one rule (null: the unit sets none; its ancestors' rules still apply).",
  fields: (t) => ({
    allowedKinds: t.field({ type: [JobKindEnum], nullable: true, description: 'Job kinds the subtree may submit.', resolve: (p) => p.allowedKinds }),
    allowedProducts: t.field({
      type: [BilledProductEnum],
      nullable: true,
      description: 'Products (engines) a job may be billed at: every candidate product of a job must be here.',
      resolve: (p) => p.allowedProducts as (typeof PRODUCTS)[number][] | null,
    }),
    maxResolution: t.field({ type: ResolutionEnum, nullable: true, description: 'Highest output resolution.', resolve: (p) => p.maxResolution as (typeof RESOLUTIONS)[number] | null }),
    maxLengthSeconds: t.exposeInt('maxLengthSeconds', { nullable: true, description: 'Longest single output, in seconds, as the hold estimates it.' }),
    maxCostCreditSeconds: t.field({ type: 'CreditSeconds', nullable: true, description: 'Largest hold of one job.', resolve: (p) => p.maxCostMicroCs }),
    allowedLanguages: t.exposeStringList('allowedLanguages', { nullable: true, description: 'Target languages of translations and proofreads (compared without case).' }),
    jobsPerMinute: t.exposeInt('jobsPerMinute', { nullable: true, description: 'Jobs the whole subtree may have admitted in any 60 s.' }),
    creditSecondsPerHour: t.field({
      type: 'CreditSeconds',
      nullable: true,
      description: 'Credit-seconds (holds) the whole subtree may have admitted in any hour.',
      resolve: (p) => p.creditMicroCsPerHour,
    }),
    updatedAt: t.field({ type: 'DateTime', description: 'When it was last set.', resolve: (p) => p.updatedAt }),
  }),
});

interface RuleSource {
  rule: PolicyRule;
  setBy: string[];
}
const PolicyRuleSourceRef = builder.objectRef<RuleSource>('PolicyRuleSource').implement({
  description: 'A rule in effect and the units on the path that set it.',
  fields: (t) => ({
    rule: t.field({ type: PolicyRuleEnum, description: 'The rule.', resolve: (s) => s.rule }),
    setBy: t.field({
      type: [OrgUnitRef],
      description: 'A set rule: every unit whose set is intersected, root first; a maximum: the unit that gives the smallest (those the caller may see).',
      resolve: async (s, _a, ctx) => (await Promise.all(s.setBy.map((id) => visibleUnit(ctx, id)))).filter((u): u is OrgUnitRow => u !== null),
    }),
  }),
});

const RULE_OF: Record<keyof EffectivePolicy, PolicyRule> = {
  allowedKinds: 'ALLOWED_KINDS',
  allowedProducts: 'ALLOWED_PRODUCTS',
  maxResolution: 'MAX_RESOLUTION',
  maxLengthSeconds: 'MAX_LENGTH_SECONDS',
  maxCostMicroCs: 'MAX_COST_CREDIT_SECONDS',
  allowedLanguages: 'ALLOWED_LANGUAGES',
  jobsPerMinute: 'JOBS_PER_MINUTE',
  creditMicroCsPerHour: 'CREDIT_SECONDS_PER_HOUR',
};

const value = <T,>(rule: EffectiveRule<T> | null): T | null => rule?.value ?? null;

const EffectivePolicyRef = builder.objectRef<EffectivePolicy>('EffectivePolicy').implement({
  description:
    "The rules a unit's jobs must meet: every unit's on the path (root … unit), so the sets intersect and the maxima take the smallest. Rate limits are counted per unit over its whole subtree; the smallest is shown.",
  fields: (t) => ({
    allowedKinds: t.field({ type: [JobKindEnum], nullable: true, description: 'Job kinds allowed.', resolve: (p) => value(p.allowedKinds) }),
    allowedProducts: t.field({
      type: [BilledProductEnum],
      nullable: true,
      description: 'Products allowed.',
      resolve: (p) => value(p.allowedProducts) as (typeof PRODUCTS)[number][] | null,
    }),
    maxResolution: t.field({ type: ResolutionEnum, nullable: true, description: 'Highest resolution.', resolve: (p) => value(p.maxResolution) }),
    maxLengthSeconds: t.int({ nullable: true, description: 'Longest single output, in seconds.', resolve: (p) => value(p.maxLengthSeconds) }),
    maxCostCreditSeconds: t.field({ type: 'CreditSeconds', nullable: true, description: 'Largest hold of one job.', resolve: (p) => value(p.maxCostMicroCs) }),
    allowedLanguages: t.stringList({ nullable: true, description: 'Target languages allowed.', resolve: (p) => value(p.allowedLanguages) }),
    jobsPerMinute: t.int({ nullable: true, description: 'The smallest jobs-per-minute limit on the path.', resolve: (p) => value(p.jobsPerMinute) }),
    creditSecondsPerHour: t.field({
      type: 'CreditSeconds',
      nullable: true,
      description: 'The smallest credit-seconds-per-hour limit on the path.',
      resolve: (p) => value(p.creditMicroCsPerHour),
    }),
    rules: t.field({
      type: [PolicyRuleSourceRef],
      description: 'Each rule in effect with the units that set it.',
      resolve: (p) =>
        (Object.keys(RULE_OF) as (keyof EffectivePolicy)[]).flatMap((k) => {
          const rule = p[k];
          return rule ? [{ rule: RULE_OF[k], setBy: rule.setBy }] : [];
        }),
    }),
  }),
});

builder.objectFields(OrgUnitRef, (t) => ({
  policy: t.field({
    type: UnitPolicyRef,
    nullable: true,
    description: "This unit's own policy (null: it sets none). See effectivePolicy for what binds its jobs.",
    resolve: async (u, _a, ctx) => (await ctx.db.select().from(unitPoliciesTable).where(eq(unitPoliciesTable.orgUnitId, u.id)))[0] ?? null,
  }),
  effectivePolicy: t.field({
    type: EffectivePolicyRef,
    description: 'The rules in effect on this unit: its own and every ancestor\'s, with the unit that set each.',
    resolve: async (u, _a, ctx) => effectiveOf(await policiesOnPath(ctx.db, u.path)),
  }),
}));

const TokenRateLimitRef = builder.objectRef<TokenRateLimitRow>('ServiceTokenRateLimit').implement({
  description: "A service token's own rate limits, on top of those of its project's path.",
  fields: (t) => ({
    jobsPerMinute: t.exposeInt('jobsPerMinute', { nullable: true, description: 'Jobs the token may have admitted in any 60 s.' }),
    creditSecondsPerHour: t.field({ type: 'CreditSeconds', nullable: true, description: 'Credit-seconds (holds) in any hour.', resolve: (r) => r.creditMicroCsPerHour }),
  }),
});

builder.objectField(ServiceTokenRef, 'rateLimit', (t) =>
  t.field({
    type: TokenRateLimitRef,
    nullable: true,
    description: "The token's own rate limits (null: none).",
    resolve: async (s, _a, ctx) => (await ctx.db.select().from(serviceTokenRateLimitsTable).where(eq(serviceTokenRateLimitsTable.tokenId, s.id)))[0] ?? null,
  }),
);

const POLICY_ERRORS = [...MUTATION_ERRORS, PolicyViolationError];

builder.mutationFields((t) => ({
  setUnitPolicy: t.fieldWithInput({
    type: builder.simpleObject('SetUnitPolicyPayload', {
      description: 'The policy as set.',
      fields: (f) => ({
        orgUnit: f.field({ type: OrgUnitRef, description: 'The unit (its policy and effectivePolicy).' }),
        policy: f.field({ type: UnitPolicyRef, description: "The unit's own policy." }),
      }),
    }),
    errors: { types: POLICY_ERRORS },
    authScopes: (_r, { input }) => ({ canSetPolicy: decodeId(String(input.orgUnitId), 'OrgUnit') }),
    description:
      "Sets (replaces) a unit's own policy: ADMIN and FINANCE anywhere; a MANAGER on units below its own. An omitted rule is not set. A rule looser than one in effect above the unit is refused (PolicyViolationError naming the ancestor): a child cannot loosen a parent's rule. Audited.",
    input: {
      orgUnitId: t.input.id({ required: true, description: 'Global id of the unit.' }),
      allowedKinds: t.input.field({ type: [JobKindEnum], required: false, description: 'Job kinds allowed.' }),
      allowedProducts: t.input.field({ type: [BilledProductEnum], required: false, description: 'Products (engines) allowed.' }),
      maxResolution: t.input.field({ type: ResolutionEnum, required: false, description: 'Highest output resolution.' }),
      maxLengthSeconds: t.input.int({ required: false, description: 'Longest single output, in whole seconds.' }),
      maxCostCreditSeconds: t.input.field({ type: 'CreditSeconds', required: false, description: 'Largest hold of one job.' }),
      allowedLanguages: t.input.stringList({ required: false, description: 'Target languages of translations allowed.' }),
      jobsPerMinute: t.input.int({ required: false, description: 'Jobs the subtree may have admitted in any 60 s.' }),
      creditSecondsPerHour: t.input.field({ type: 'CreditSeconds', required: false, description: 'Credit-seconds the subtree may have admitted in any hour.' }),
    },
    resolve: async (_r, { input }, ctx) => {
      const actor = ctx.actor!;
      const unit = await requireVisibleUnit(ctx, decodeId(String(input.orgUnitId), 'OrgUnit'));
      const policy = await ctx.db.transaction(async (tx) => {
        const [before] = await tx.select().from(unitPoliciesTable).where(eq(unitPoliciesTable.orgUnitId, unit.id)).for('update');
        const after = await setUnitPolicy(
          tx,
          unit,
          {
            allowedKinds: input.allowedKinds ?? null,
            allowedProducts: input.allowedProducts ?? null,
            maxResolution: input.maxResolution ?? null,
            maxLengthSeconds: input.maxLengthSeconds ?? null,
            maxCostMicroCs: creditSecondsInput('maxCostCreditSeconds', input.maxCostCreditSeconds ?? null),
            allowedLanguages: input.allowedLanguages ?? null,
            jobsPerMinute: input.jobsPerMinute ?? null,
            creditMicroCsPerHour: creditSecondsInput('creditSecondsPerHour', input.creditSecondsPerHour ?? null),
          },
          actor.subject,
          ctx.now,
        );
        await recordAudit(tx, actor, { action: 'unitPolicy.set', entityType: 'OrgUnit', entityId: unit.id, before: before ?? null, after });
        return after;
      });
      return { orgUnit: unit, policy };
    },
  }),
  clearUnitPolicy: t.fieldWithInput({
    type: builder.simpleObject('ClearUnitPolicyPayload', {
      description: 'The unit, without a policy of its own.',
      fields: (f) => ({ orgUnit: f.field({ type: OrgUnitRef, description: 'The unit.' }) }),
    }),
    errors: { types: MUTATION_ERRORS },
    authScopes: (_r, { input }) => ({ canSetPolicy: decodeId(String(input.orgUnitId), 'OrgUnit') }),
    description: "Removes a unit's own policy (its ancestors' rules still apply): who may set it. Audited when there was one.",
    input: { orgUnitId: t.input.id({ required: true, description: 'Global id of the unit.' }) },
    resolve: async (_r, { input }, ctx) => {
      const unit = await requireVisibleUnit(ctx, decodeId(String(input.orgUnitId), 'OrgUnit'));
      await ctx.db.transaction(async (tx) => {
        const before = await clearUnitPolicy(tx, unit.id);
        if (before) await recordAudit(tx, ctx.actor!, { action: 'unitPolicy.clear', entityType: 'OrgUnit', entityId: unit.id, before, after: null });
      });
      return { orgUnit: unit };
    },
  }),
  setServiceTokenRateLimit: t.fieldWithInput({
    type: builder.simpleObject('SetServiceTokenRateLimitPayload', {
      description: 'The token with its rate limits.',
      fields: (f) => ({ serviceToken: f.field({ type: ServiceTokenRef, description: 'The token record (see rateLimit).' }) }),
    }),
    errors: { types: MUTATION_ERRORS },
    // Those who manage the token's project (who issue and revoke it); a token of a unit the caller may not read is not found.
    authScopes: async (_r, { input }, ctx) => {
      const id = decodeId(String(input.serviceTokenId), 'ServiceToken');
      const [row] = await ctx.db.select({ orgUnitId: serviceTokensTable.orgUnitId }).from(serviceTokensTable).where(eq(serviceTokensTable.id, id));
      const unit = row ? await visibleUnit(ctx, row.orgUnitId) : null;
      if (!unit) throw new NotFoundError('ServiceToken', String(input.serviceTokenId));
      return { canManage: unit.id };
    },
    description:
      "Sets a service token's own rate limits (ADMIN; a MANAGER of its project or above): jobs per minute and credit-seconds per hour of that token's submissions, checked with its project path's. Both omitted: removes them. Audited.",
    input: {
      serviceTokenId: t.input.id({ required: true, description: 'Global id of the token.' }),
      jobsPerMinute: t.input.int({ required: false, description: 'Jobs the token may have admitted in any 60 s.' }),
      creditSecondsPerHour: t.input.field({ type: 'CreditSeconds', required: false, description: 'Credit-seconds it may have admitted in any hour.' }),
    },
    resolve: async (_r, { input }, ctx) => {
      const id = decodeId(String(input.serviceTokenId), 'ServiceToken');
      return ctx.db.transaction(async (tx) => {
        const [token] = await tx.select().from(serviceTokensTable).where(eq(serviceTokensTable.id, id));
        if (!token) throw new NotFoundError('ServiceToken', String(input.serviceTokenId));
        const [before] = await tx.select().from(serviceTokenRateLimitsTable).where(eq(serviceTokenRateLimitsTable.tokenId, id)).for('update');
        const after = await setTokenRateLimit(tx, id, { jobsPerMinute: input.jobsPerMinute ?? null, creditMicroCsPerHour: creditSecondsInput('creditSecondsPerHour', input.creditSecondsPerHour ?? null) }, ctx.actor!.subject, ctx.now);
        await recordAudit(tx, ctx.actor!, { action: 'serviceToken.rateLimit', entityType: 'ServiceToken', entityId: id, before: before ?? null, after });
        return { serviceToken: token };
      });
    },
  }),
}));

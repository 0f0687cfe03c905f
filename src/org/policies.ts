// Unit policies (docs/governance.md): what jobs a unit's subtree may submit, and how fast. Admission enforces them in
// its transaction (gateway_check_governance: every unit's rules on the job's path, so the effective policy is the
// intersection of the sets and the minimum of the maxima along the path); this module writes them, refuses a rule
// that would be looser than an ancestor's (it would have no effect), and computes the effective policy for display.
import { eq, inArray } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { JOB_KINDS, RESOLUTIONS, orgUnitsTable, serviceTokenRateLimitsTable, unitPoliciesTable, type JobKind, type Resolution } from '../db/schema.js';
import { PolicyViolationError, ValidationError, type PolicyRule } from '../errors.js';
import { formatCreditSeconds, secondsToMicro } from '../primitives/money.js';
import { MAX_INPUT_MICRO_CS } from '../validation.js';
import { PRODUCTS } from '../pricing/model.js';

export type UnitPolicyRow = typeof unitPoliciesTable.$inferSelect;
export type TokenRateLimitRow = typeof serviceTokenRateLimitsTable.$inferSelect;

/** A unit's own rules; null: the unit sets none (its ancestors' rules still apply). */
export interface UnitPolicyInput {
  allowedKinds: JobKind[] | null;
  allowedProducts: string[] | null;
  maxResolution: Resolution | null;
  maxLengthSeconds: number | null;
  maxCostMicroCs: bigint | null;
  allowedLanguages: string[] | null;
  jobsPerMinute: number | null;
  creditMicroCsPerHour: bigint | null;
}

type ListRule = 'allowedKinds' | 'allowedProducts' | 'allowedLanguages';
type MaxRule = 'maxResolution' | 'maxLengthSeconds' | 'maxCostMicroCs' | 'jobsPerMinute' | 'creditMicroCsPerHour';

const LIST_RULES: Record<ListRule, PolicyRule> = {
  allowedKinds: 'ALLOWED_KINDS',
  allowedProducts: 'ALLOWED_PRODUCTS',
  allowedLanguages: 'ALLOWED_LANGUAGES',
};
const MAX_RULES: Record<MaxRule, PolicyRule> = {
  maxResolution: 'MAX_RESOLUTION',
  maxLengthSeconds: 'MAX_LENGTH_SECONDS',
  maxCostMicroCs: 'MAX_COST_CREDIT_SECONDS',
  jobsPerMinute: 'JOBS_PER_MINUTE',
  creditMicroCsPerHour: 'CREDIT_SECONDS_PER_HOUR',
};

/** Languages compare without case (HeyGen's names, `Spanish`, or codes, `es-ES`). */
const languageKey = (language: string) => language.toLowerCase();
const keyOf = (rule: ListRule, value: string) => (rule === 'allowedLanguages' ? languageKey(value) : value);

/** Orders a maximum's values: resolutions by RESOLUTIONS, numbers as numbers. */
function rank(rule: MaxRule, value: string | number | bigint): bigint {
  return rule === 'maxResolution' ? BigInt(RESOLUTIONS.indexOf(value as Resolution)) : BigInt(value);
}

/** A rule in effect on a unit: its value and the units on the path that set it (root first). */
export interface EffectiveRule<T> {
  value: T;
  setBy: string[];
}

export type EffectivePolicy = {
  [K in ListRule]: EffectiveRule<NonNullable<UnitPolicyInput[K]>> | null;
} & {
  [K in MaxRule]: EffectiveRule<NonNullable<UnitPolicyInput[K]>> | null;
};

/**
 * The policy in effect under these rows (the units of one path, root first): a set rule is the intersection of every
 * unit's set (set by all of them), a maximum the smallest (set by the highest unit that gives it).
 */
export function effectiveOf(rows: readonly UnitPolicyRow[]): EffectivePolicy {
  const policy = {} as Record<string, EffectiveRule<unknown> | null>;
  for (const rule of Object.keys(LIST_RULES) as ListRule[]) {
    let effective: EffectiveRule<string[]> | null = null;
    for (const row of rows) {
      const values = row[rule] as string[] | null;
      if (values === null) continue;
      if (effective === null) effective = { value: [...values], setBy: [row.orgUnitId] };
      else {
        const allowed = new Set(values.map((v) => keyOf(rule, v)));
        effective = { value: effective.value.filter((v) => allowed.has(keyOf(rule, v))), setBy: [...effective.setBy, row.orgUnitId] };
      }
    }
    policy[rule] = effective;
  }
  for (const rule of Object.keys(MAX_RULES) as MaxRule[]) {
    let effective: EffectiveRule<string | number | bigint> | null = null;
    for (const row of rows) {
      const value = row[rule];
      if (value === null) continue;
      if (effective === null || rank(rule, value) < rank(rule, effective.value)) effective = { value, setBy: [row.orgUnitId] };
    }
    policy[rule] = effective;
  }
  return policy as EffectivePolicy;
}

/** The policy rows of these units, in the order of `path` (root first). */
export async function policiesOnPath(db: Db, path: readonly string[]): Promise<UnitPolicyRow[]> {
  if (path.length === 0) return [];
  const rows = await db.select().from(unitPoliciesTable).where(inArray(unitPoliciesTable.orgUnitId, [...path]));
  return rows.sort((a, b) => path.indexOf(a.orgUnitId) - path.indexOf(b.orgUnitId));
}

/** A credit-seconds input (a CreditSeconds decimal) in micro-credit-seconds; null stays null. */
export function creditSecondsInput(field: string, text: string | null): bigint | null {
  if (text === null) return null;
  let micro: bigint;
  try {
    if (!/^\d{1,15}(\.\d{1,6})?$/.test(text.trim())) throw new Error('format');
    micro = secondsToMicro(text.trim());
  } catch {
    throw new ValidationError(field, `${field} must be a positive decimal with at most 6 decimals`);
  }
  if (micro > MAX_INPUT_MICRO_CS) throw new ValidationError(field, `${field} is too large`);
  return micro;
}

function ruleText(rule: MaxRule, value: string | number | bigint): string {
  if (rule === 'maxCostMicroCs' || rule === 'creditMicroCsPerHour') return `${formatCreditSeconds(BigInt(value))} cs`;
  if (rule === 'maxLengthSeconds') return `${value} s`;
  return String(value);
}

/** Languages one policy may list (HeyGen translates into a few hundred). */
const MAX_LANGUAGES = 500;

function validate(input: UnitPolicyInput): void {
  const positive = (field: string, value: number | bigint | null) => {
    if (value !== null && value <= 0) throw new ValidationError(field, `${field} must be greater than 0 (omit it to set no such rule)`);
  };
  positive('maxLengthSeconds', input.maxLengthSeconds);
  positive('maxCostCreditSeconds', input.maxCostMicroCs);
  positive('jobsPerMinute', input.jobsPerMinute);
  positive('creditSecondsPerHour', input.creditMicroCsPerHour);
  if (input.allowedKinds?.some((k) => !JOB_KINDS.includes(k))) throw new ValidationError('allowedKinds', 'allowedKinds must be job kinds');
  if (input.allowedProducts?.some((p) => !(PRODUCTS as readonly string[]).includes(p))) {
    throw new ValidationError('allowedProducts', `allowedProducts must be among ${PRODUCTS.join(', ')}`);
  }
  if (input.maxResolution !== null && !RESOLUTIONS.includes(input.maxResolution)) throw new ValidationError('maxResolution', `maxResolution must be one of ${RESOLUTIONS.join(', ')}`);
  if ((input.allowedLanguages?.length ?? 0) > MAX_LANGUAGES) throw new ValidationError('allowedLanguages', `at most ${MAX_LANGUAGES} languages`);
  for (const language of input.allowedLanguages ?? []) {
    if (!/^[\p{L}\p{N} ()_.-]{2,64}$/u.test(language)) throw new ValidationError('allowedLanguages', 'a language is 2 to 64 letters, digits, spaces or ( ) _ . -');
  }
}

/**
 * Refuses a rule looser than the one in effect above the unit: a set with a member the ancestors exclude, a maximum
 * above theirs. It would have no effect (every ancestor's rule is checked at admission anyway), so it is an error.
 */
function refuseLoosening(input: UnitPolicyInput, rows: readonly UnitPolicyRow[], names: ReadonlyMap<string, string>): void {
  const named = (id: string) => names.get(id) ?? id;
  const above = effectiveOf(rows);
  for (const rule of Object.keys(LIST_RULES) as ListRule[]) {
    const mine = input[rule] as string[] | null;
    const theirs = above[rule] as EffectiveRule<string[]> | null;
    if (mine === null || theirs === null) continue;
    const allowed = new Set(theirs.value.map((v) => keyOf(rule, v)));
    const extra = mine.find((v) => !allowed.has(keyOf(rule, v)));
    if (extra === undefined) continue;
    // The unit that excludes it: the first on the path whose own set lacks it.
    const by = rows.find((r) => r[rule] !== null && !(r[rule] as string[]).some((v) => keyOf(rule, v) === keyOf(rule, extra)))!.orgUnitId;
    const limit = theirs.value.join(', ');
    throw new PolicyViolationError(LIST_RULES[rule], by, named(by), limit, extra,
      `refused: ${LIST_RULES[rule]} above this unit allows ${limit || 'nothing'} (set by ${theirs.setBy.map((id) => `"${named(id)}"`).join(', ')}); a unit below cannot allow ${extra}`);
  }
  for (const rule of Object.keys(MAX_RULES) as MaxRule[]) {
    const mine = input[rule];
    const theirs = above[rule];
    if (mine === null || theirs === null || rank(rule, mine) <= rank(rule, theirs.value)) continue;
    const by = theirs.setBy[0]!;
    throw new PolicyViolationError(MAX_RULES[rule], by, named(by), ruleText(rule, theirs.value), ruleText(rule, mine),
      `refused: ${MAX_RULES[rule]} is ${ruleText(rule, theirs.value)} on "${named(by)}"; a unit below cannot loosen it to ${ruleText(rule, mine)}`);
  }
}

/** Sets (replaces) a unit's own policy; a rule looser than an ancestor's is a PolicyViolationError. */
export async function setUnitPolicy(
  tx: Db,
  unit: { id: string; path: readonly string[] },
  input: UnitPolicyInput,
  updatedBy: string,
  now: Date,
): Promise<UnitPolicyRow> {
  validate(input);
  const ancestors = unit.path.slice(0, -1);
  const above = await policiesOnPath(tx, ancestors);
  if (above.length > 0) {
    const names = new Map(
      (await tx.select({ id: orgUnitsTable.id, name: orgUnitsTable.name }).from(orgUnitsTable).where(inArray(orgUnitsTable.id, ancestors))).map((u) => [u.id, u.name]),
    );
    refuseLoosening(input, above, names);
  }
  const values = { ...input, updatedBy, updatedAt: now };
  const [row] = await tx
    .insert(unitPoliciesTable)
    .values({ orgUnitId: unit.id, ...values })
    .onConflictDoUpdate({ target: unitPoliciesTable.orgUnitId, set: values })
    .returning();
  return row!;
}

/** Removes a unit's own policy; answers the row removed (null: it had none). */
export async function clearUnitPolicy(tx: Db, unitId: string): Promise<UnitPolicyRow | null> {
  const [row] = await tx.delete(unitPoliciesTable).where(eq(unitPoliciesTable.orgUnitId, unitId)).returning();
  return row ?? null;
}

/** Sets a service token's own rate limits (both null: removes them); answers the row, or null. */
export async function setTokenRateLimit(
  tx: Db,
  tokenId: string,
  limits: { jobsPerMinute: number | null; creditMicroCsPerHour: bigint | null },
  updatedBy: string,
  now: Date,
): Promise<TokenRateLimitRow | null> {
  if (limits.jobsPerMinute !== null && limits.jobsPerMinute <= 0) throw new ValidationError('jobsPerMinute', 'jobsPerMinute must be greater than 0 (omit it to set no limit)');
  if (limits.creditMicroCsPerHour !== null && limits.creditMicroCsPerHour <= 0n) {
    throw new ValidationError('creditSecondsPerHour', 'creditSecondsPerHour must be greater than 0 (omit it to set no limit)');
  }
  if (limits.jobsPerMinute === null && limits.creditMicroCsPerHour === null) {
    await tx.delete(serviceTokenRateLimitsTable).where(eq(serviceTokenRateLimitsTable.tokenId, tokenId));
    return null;
  }
  const values = { ...limits, updatedBy, updatedAt: now };
  const [row] = await tx
    .insert(serviceTokenRateLimitsTable)
    .values({ tokenId, ...values })
    .onConflictDoUpdate({ target: serviceTokenRateLimitsTable.tokenId, set: values })
    .returning();
  return row!;
}

// Who is calling, resolved once per request from the verified token.
export const ROLES = ['ADMIN', 'FINANCE', 'MANAGER', 'MEMBER', 'SERVICE'] as const;
export type Role = (typeof ROLES)[number];

export interface Actor {
  /** Stable subject of the token (`admin:<name>`, `service:<tokenId>`, or the IdP subject). */
  readonly subject: string;
  readonly role: Role;
  /** The unit the role applies to: a project for SERVICE, a subtree root for MANAGER and MEMBER. */
  readonly unitId: string | null;
  /** Root … unitId, inclusive (empty when unitId is null). */
  readonly unitPath: readonly string[];
  /** jti of the token, for audit and revocation. */
  readonly tokenId: string | null;
  /** The HTTP request this caller made (for the audit trail); set by the GraphQL context. */
  readonly requestId?: string;
}

/** The minimum a visibility decision needs to know about a unit. */
export interface UnitPath {
  readonly id: string;
  /** Root … unit, inclusive. */
  readonly path: readonly string[];
}

/** Whether the actor's role reaches every unit (no subtree restriction). */
export function seesEverything(actor: Actor): boolean {
  return actor.role === 'ADMIN' || actor.role === 'FINANCE';
}

/**
 * Units a caller may read: everything for ADMIN and FINANCE; the subtree of its unit for MANAGER and MEMBER;
 * for SERVICE its own project and the units above it (its path), so that an app can read the budgets that bind it.
 */
export function canReadUnit(actor: Actor, unit: UnitPath): boolean {
  if (seesEverything(actor)) return true;
  if (!actor.unitId) return false;
  if (actor.role === 'SERVICE') return actor.unitPath.includes(unit.id);
  // MANAGER and MEMBER: their subtree, and the units above it (read-only context such as the budgets that bind them).
  return unit.path.includes(actor.unitId) || actor.unitPath.includes(unit.id);
}

/** Whether the caller may read jobs of this project (a narrower rule than reading the unit itself). */
export function canReadJobsOf(actor: Actor, project: UnitPath): boolean {
  if (seesEverything(actor)) return true;
  if (!actor.unitId) return false;
  if (actor.role === 'SERVICE') return actor.unitId === project.id;
  return project.path.includes(actor.unitId);
}

/**
 * Whether the caller may read a unit's costs (its chargeback line): the same subtree rule as jobs. A MEMBER or
 * MANAGER sees the lines of its own subtree, a SERVICE token its project's line; ADMIN and FINANCE see all.
 */
export const canReadCostsOf = canReadJobsOf;

/**
 * Whether the caller may read an account's totals (period usage, overage, projected invoice, HeyGen's balance):
 * they are the sum over every unit, so only a caller who may read the costs of every unit may see them (ADMIN,
 * FINANCE, or a MANAGER/MEMBER of the organisation's root). Anyone else could subtract its own usage and learn its
 * siblings', which OrgUnit.usage refuses to show.
 */
export function canReadAccountTotals(actor: Actor): boolean {
  if (seesEverything(actor)) return true;
  return (actor.role === 'MANAGER' || actor.role === 'MEMBER') && actor.unitPath.length === 1;
}

/** Whether the caller may submit jobs for this project (and cancel its jobs that were never forwarded). */
export function canSubmitFor(actor: Actor, project: UnitPath): boolean {
  if (actor.role === 'ADMIN') return true;
  if (actor.role === 'SERVICE') return actor.unitId === project.id;
  if (actor.role === 'MEMBER' || actor.role === 'MANAGER') return !!actor.unitId && project.path.includes(actor.unitId);
  return false;
}

/**
 * Whether the caller may administer this unit: add units under it, issue and revoke service tokens for its
 * projects. ADMIN anywhere; a MANAGER in its own subtree (its unit included).
 */
export function canManageUnit(actor: Actor, unit: UnitPath): boolean {
  if (actor.role === 'ADMIN') return true;
  if (actor.role === 'MANAGER') return !!actor.unitId && unit.path.includes(actor.unitId);
  return false;
}

/**
 * Whether the caller may set budgets on this unit. ADMIN and FINANCE anywhere; a MANAGER strictly below its own
 * unit: the cap on the manager's own unit is set from above, so a manager cannot lift the cap that binds it.
 */
export function canSetBudgetOn(actor: Actor, unit: UnitPath): boolean {
  if (actor.role === 'ADMIN' || actor.role === 'FINANCE') return true;
  return actor.role === 'MANAGER' && !!actor.unitId && unit.id !== actor.unitId && unit.path.includes(actor.unitId);
}

/**
 * Whether the caller may set or clear the policy of this unit (docs/governance.md): the same rule as budgets, so that
 * a manager cannot clear the rules set on its own unit from above.
 */
export const canSetPolicyOn = canSetBudgetOn;

/** Whether the caller may list service tokens at all (ADMIN, FINANCE, MANAGER); which ones: canListServiceTokensOf. */
export function canListServiceTokens(actor: Actor): boolean {
  return actor.role === 'ADMIN' || actor.role === 'FINANCE' || actor.role === 'MANAGER';
}

/** Whether the caller may see the service-token records of this unit: those who manage it, and FINANCE. */
export function canListServiceTokensOf(actor: Actor, unit: UnitPath): boolean {
  return actor.role === 'FINANCE' || canManageUnit(actor, unit);
}

/**
 * Whether the caller holds the keys: creates accounts, rotates their API keys, assigns accounts to units and
 * creates the organization. ADMIN only (FINANCE reads everything but cannot create accounts, keys or tokens).
 */
export function canAdminister(actor: Actor): boolean {
  return actor.role === 'ADMIN';
}

/** Whether the caller runs billing: contract terms, committed shares, usage adjustments, closing periods, wallet syncs. */
export function canRunBilling(actor: Actor): boolean {
  return actor.role === 'ADMIN' || actor.role === 'FINANCE';
}

/** Whether the caller may read the audit trail (it names every unit, token and account: ADMIN and FINANCE only). */
export function canReadAuditLog(actor: Actor): boolean {
  return actor.role === 'ADMIN' || actor.role === 'FINANCE';
}

/**
 * Whether the caller manages notification channels and rules on this unit (events of its subtree): ADMIN and
 * FINANCE everywhere, a MANAGER in its own subtree.
 */
export function canManageNotificationsOn(actor: Actor, unit: UnitPath): boolean {
  return seesEverything(actor) || (actor.role === 'MANAGER' && !!actor.unitId && unit.path.includes(actor.unitId));
}

/**
 * Whether the caller may ask for a raise of a budget on this unit: a caller the budget binds that cannot set it
 * itself. A SERVICE token of a project under the unit, a MEMBER whose subtree holds or lies under the unit, a
 * MANAGER of the unit or of one under it (a MANAGER above the unit, FINANCE and ADMIN set budgets directly).
 */
export function canRequestBudgetIncreaseOn(actor: Actor, unit: UnitPath): boolean {
  if (actor.role !== 'SERVICE' && actor.role !== 'MEMBER' && actor.role !== 'MANAGER') return false;
  return canReadUnit(actor, unit) && !canSetBudgetOn(actor, unit);
}

/** Whether the caller may approve or reject requests for a budget on this unit: who may set it (canSetBudgetOn). */
export const canDecideBudgetRequestOn = canSetBudgetOn;

/**
 * Whether the caller may move limit between budgets of these two units: who may set both, which for a MANAGER means
 * its unit is a common ancestor strictly above both (the caps on its own unit are set from above).
 */
export function canTransferBudgetBetween(actor: Actor, from: UnitPath, to: UnitPath): boolean {
  return canSetBudgetOn(actor, from) && canSetBudgetOn(actor, to);
}

/** Whether the caller may read a budget request: the one who asked, and who may decide it. */
export function canReadBudgetRequest(actor: Actor, request: { readonly requestedBySubject: string }, unit: UnitPath): boolean {
  return request.requestedBySubject === actor.subject || canDecideBudgetRequestOn(actor, unit);
}

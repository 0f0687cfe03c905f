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

/** Whether the caller may submit jobs for this project. */
export function canSubmitFor(actor: Actor, project: UnitPath): boolean {
  if (actor.role === 'ADMIN') return true;
  if (actor.role === 'SERVICE') return actor.unitId === project.id;
  if (actor.role === 'MEMBER' || actor.role === 'MANAGER') return !!actor.unitId && project.path.includes(actor.unitId);
  return false;
}

/** Whether the caller may administer (budgets, tokens) this unit. */
export function canManageUnit(actor: Actor, unit: UnitPath): boolean {
  if (actor.role === 'ADMIN') return true;
  if (actor.role === 'MANAGER') return !!actor.unitId && unit.path.includes(actor.unitId);
  return false;
}

// Scope-auth scopes: each one is a rule of src/auth/actor.ts, evaluated once per request and argument.
// Scopes that take an id load the object first: one the caller may not read throws NotFoundError (the same
// answer as for an id that does not exist), so a refusal never tells an outsider that the object exists.
import { AuthScopeFailureType, type AuthFailure } from '@pothos/plugin-scope-auth';
import type { GraphQLContext } from './context.js';
import { requireVisibleUnit } from './visibility.js';
import {
  canAdminister,
  canListServiceTokens,
  canManageUnit,
  canReadAuditLog,
  canRunBilling,
  canSetBudgetOn,
  canSetPolicyOn,
  canSubmitFor,
  type Actor,
  type UnitPath,
} from '../auth/actor.js';

export interface AuthScopes {
  /** Any verified caller. */
  authenticated: boolean;
  /** canAdminister: accounts, API keys, the organization, assigning accounts. */
  admin: boolean;
  /** canRunBilling: terms, shares, adjustments, closing periods, wallet syncs. */
  finance: boolean;
  /** canReadAuditLog. */
  auditReader: boolean;
  /** canListServiceTokens (which ones: visibleServiceTokensFilter). */
  tokenLister: boolean;
  /** canManageUnit on the org unit with this (raw) id. */
  canManage: string;
  /** canSetBudgetOn the org unit with this (raw) id. */
  canSetBudget: string;
  /** canSetPolicyOn the org unit with this (raw) id. */
  canSetPolicy: string;
  /** canSubmitFor the project with this (raw) id. */
  canSubmitFor: string;
}

type ScopeLoaders = { [K in keyof AuthScopes]: AuthScopes[K] extends boolean ? boolean : (param: AuthScopes[K]) => Promise<boolean> };

export function authScopesFor(ctx: GraphQLContext): ScopeLoaders {
  const actor = ctx.actor;
  const role = (rule: (a: Actor) => boolean) => actor !== null && rule(actor);
  const onUnit = (rule: (a: Actor, unit: UnitPath) => boolean) => async (unitId: string) => {
    const unit = await requireVisibleUnit(ctx, unitId);
    return actor !== null && rule(actor, unit);
  };
  return {
    authenticated: actor !== null,
    admin: role(canAdminister),
    finance: role(canRunBilling),
    auditReader: role(canReadAuditLog),
    tokenLister: role(canListServiceTokens),
    canManage: onUnit(canManageUnit),
    canSetBudget: onUnit(canSetBudgetOn),
    canSetPolicy: onUnit(canSetPolicyOn),
    canSubmitFor: onUnit(canSubmitFor),
  };
}

const REFUSALS: Record<keyof AuthScopes, string> = {
  authenticated: 'authentication is required',
  admin: 'only an ADMIN may do this',
  finance: 'only ADMIN and FINANCE may do this',
  auditReader: 'only ADMIN and FINANCE read the audit log',
  tokenLister: 'only ADMIN, FINANCE and MANAGER callers list service tokens',
  canManage: 'only an ADMIN, or a MANAGER of this unit or of one above it, may do this',
  canSetBudget: 'only ADMIN, FINANCE, or a MANAGER of a unit above this one, may set its budgets',
  canSetPolicy: 'only ADMIN, FINANCE, or a MANAGER of a unit above this one, may set its policy',
  canSubmitFor: 'this caller cannot submit or cancel jobs for this project',
};

function failedScope(failure: AuthFailure): string | null {
  if (failure.kind === AuthScopeFailureType.AuthScope || failure.kind === AuthScopeFailureType.GrantedScope) return failure.scope;
  if (failure.kind === AuthScopeFailureType.AnyAuthScopes || failure.kind === AuthScopeFailureType.AllAuthScopes) {
    for (const f of failure.failures) {
      const scope = failedScope(f);
      if (scope) return scope;
    }
  }
  return null;
}

/** The message of the ForbiddenError a refused scope turns into. */
export function refusalMessage(failure: AuthFailure): string {
  const scope = failedScope(failure);
  return (scope && REFUSALS[scope as keyof AuthScopes]) || 'not allowed for this caller';
}

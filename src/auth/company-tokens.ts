// Tokens from the company's identity provider: verified against its JWKS (fetched once, cached, refetched
// on an unknown kid no more often than the cooldown allows, which is how key rotation is picked up), then
// mapped from claims to a gateway role and unit by an ordered list of mappings.
import { createRemoteJWKSet, jwtVerify, errors as joseErrors, type JWTPayload } from 'jose';
import type { Role } from './actor.js';

export interface CompanyTokenSettings {
  jwksUrl: string;
  /** Accepted `iss` values. */
  issuers: readonly string[];
  audience: string;
  /** Asymmetric algorithms only: an HS* entry would let the public key act as a shared secret. */
  algorithms: readonly string[];
  clockToleranceSeconds: number;
  /** How long a fetched JWKS is trusted before it is fetched again. */
  cacheMaxAgeMs: number;
  /** Least time between two fetches (an unknown kid does not trigger a fetch storm). */
  cooldownMs: number;
  timeoutMs: number;
}

export interface ClaimMapping {
  /** Claim to read, dotted for nested claims (`realm_access.roles`). */
  claim: string;
  /** Value that must be the claim, or one element of it when it is an array. */
  value: string;
  role: Exclude<Role, 'SERVICE'>;
  /** Unit the role applies to (required for MANAGER and MEMBER). */
  orgUnitId: string | null;
}

export class CompanyTokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CompanyTokenError';
  }
}

const SYMMETRIC = /^HS/i;

export interface CompanyTokenVerifier {
  readonly settings: CompanyTokenSettings;
  verify(token: string): Promise<JWTPayload>;
}

export function createCompanyTokenVerifier(settings: CompanyTokenSettings): CompanyTokenVerifier {
  if (settings.algorithms.length === 0 || settings.algorithms.some((a) => SYMMETRIC.test(a) || a.toLowerCase() === 'none')) {
    throw new Error('company token algorithms must be asymmetric (RS*, PS*, ES*, EdDSA)');
  }
  const jwks = createRemoteJWKSet(new URL(settings.jwksUrl), {
    cacheMaxAge: settings.cacheMaxAgeMs,
    cooldownDuration: settings.cooldownMs,
    timeoutDuration: settings.timeoutMs,
  });
  return {
    settings,
    async verify(token) {
      try {
        const { payload } = await jwtVerify(token, jwks, {
          algorithms: [...settings.algorithms],
          issuer: [...settings.issuers],
          audience: settings.audience,
          clockTolerance: settings.clockToleranceSeconds,
          requiredClaims: ['exp', 'sub'],
        });
        return payload;
      } catch (error) {
        if (error instanceof joseErrors.JWTExpired) throw new CompanyTokenError('token expired');
        const unreachable = error instanceof joseErrors.JWKSTimeout || !(error instanceof joseErrors.JOSEError);
        if (unreachable) throw new CompanyTokenError('identity provider keys unavailable');
        throw new CompanyTokenError('invalid token');
      }
    },
  };
}

function claimValues(payload: JWTPayload, path: string): string[] {
  let value: unknown = payload;
  for (const part of path.split('.')) {
    if (!value || typeof value !== 'object') return [];
    value = (value as Record<string, unknown>)[part];
  }
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return [];
}

const PRECEDENCE: Record<ClaimMapping['role'], number> = { ADMIN: 0, FINANCE: 1, MANAGER: 2, MEMBER: 3 };

/**
 * The grant a token's claims earn: of all matching mappings, the most privileged role wins (ADMIN, FINANCE,
 * MANAGER, MEMBER), ties going to the earliest mapping. No match: null (the caller is refused).
 */
export function grantFromClaims(payload: JWTPayload, mappings: readonly ClaimMapping[]): ClaimMapping | null {
  let best: ClaimMapping | null = null;
  for (const m of mappings) {
    if (!claimValues(payload, m.claim).includes(m.value)) continue;
    if (!best || PRECEDENCE[m.role] < PRECEDENCE[best.role]) best = m;
  }
  return best;
}

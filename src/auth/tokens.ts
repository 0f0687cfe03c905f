// The gateway's own tokens: an Ed25519 signing key generated on first start, kept encrypted in the
// database (so every replica signs and verifies with the same key), ADMIN tokens for operators and
// project-scoped SERVICE tokens whose jti is checked against the database once, then kept in memory while
// the revocation listener (LISTEN/NOTIFY, src/db/notifications.ts) is live: a revocation in any process
// reaches every process's cache as soon as PostgreSQL delivers its notification, and while the listener is
// down every request reads the token record again (a listener that died never lets a revoked token through).
import { createHash, randomUUID } from 'node:crypto';
import { and, eq, inArray, isNull, sql } from 'drizzle-orm';
import {
  SignJWT,
  createLocalJWKSet,
  decodeJwt,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
  errors as joseErrors,
  type JWK,
  type JSONWebKeySet,
} from 'jose';
import { z } from 'zod';
import type { Db } from '../db/client.js';
import { orgUnitsTable, roleMappingsTable, serviceTokensTable, signingKeysTable } from '../db/schema.js';
import { CompanyTokenError, grantFromClaims, type ClaimMapping, type CompanyTokenVerifier } from './company-tokens.js';
import type { SecretBox } from '../secrets/secret-box.js';
import { LISTENER_APPLICATION_NAME, type Notifications } from '../db/notifications.js';
import { ROLES, type Actor, type Role } from './actor.js';
import { setCallbackSecret } from './callback-secrets.js';

const ALG = 'EdDSA';
const SIGNING_KEY_LOCK = 72_410_332;
const CLOCK_TOLERANCE_SECONDS = 5;

export class AuthenticationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuthenticationError';
  }
}

const claimsSchema = z.object({
  sub: z.string().min(1),
  jti: z.string().min(1),
  role: z.enum(ROLES),
  unit: z.string().uuid().optional(),
});

export interface TokenService {
  issueAdminToken(name: string, ttlSeconds?: number): Promise<string>;
  /**
   * A gateway-signed token for a person with a role (FINANCE, or MANAGER / MEMBER of a unit), for operators
   * without a company identity provider. Not stored: it lives until it expires, so keep the TTL short.
   */
  issueOperatorToken(input: { name: string; role: Exclude<Role, 'SERVICE'>; unitId?: string | null; ttlSeconds?: number }): Promise<string>;
  /** Also gives the token its callback signing secret (returned here, its only showing). */
  issueServiceToken(
    db: Db,
    input: { orgUnitId: string; name: string; expiresAt: Date; createdBy: string },
  ): Promise<{ id: string; token: string; callbackSecret: string }>;
  /** Verifies a bearer token and resolves the caller; throws AuthenticationError with a safe message. */
  authenticate(db: Db, token: string): Promise<Actor>;
  /** Drops a service token from this process's cache at once (called after a revocation commits here). */
  forget(tokenId: string): void;
  /**
   * Around a revocation made by this process: `expect(id)` before its transaction, then `awaitEveryProcess()` after
   * the commit resolves once every gateway process listening on the database has dropped the token (each
   * acknowledges the notice), or after `timeoutMs` (a process that did not answer: its listener is being replaced,
   * and its heartbeat sends it back to reading the token record).
   */
  expectRevocation(tokenId: string, db: Db): { awaitEveryProcess(timeoutMs?: number): Promise<void>; cancel(): void };
  /** Stops the periodic re-check. */
  close(): void;
}

/** The PostgreSQL channel a revocation is announced on (by a trigger on service_tokens.revoked_at). */
export const REVOCATION_CHANNEL = 'gateway_service_token_revoked';
/** Each process acknowledges a revocation notice it applied on this channel (payload: the token id). */
export const REVOCATION_ACK_CHANNEL = 'gateway_service_token_revoked_ack';

interface CachedServiceToken {
  unitId: string;
  path: string[];
  lastUsedAt: number | null;
  /** The listener's epoch the entry was read under: an entry of an older epoch is read again. */
  epoch: number;
}

/** Entries kept per process (tokens in use); the oldest is dropped beyond it. */
const TOKEN_CACHE_MAX = 10_000;
const LAST_USED_EVERY_MS = 60_000;

export function signingKeyContext(kid: string): string {
  return `signing_key:${kid}`;
}

/** Loads the active signing key, creating it once (under an advisory lock) if the database has none. */
async function loadOrCreateSigningKey(db: Db, box: SecretBox) {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${SIGNING_KEY_LOCK})`);
    const [existing] = await tx.select().from(signingKeysTable).where(eq(signingKeysTable.active, true)).limit(1);
    if (existing) return existing;
    const { privateKey, publicKey } = await generateKeyPair(ALG, { crv: 'Ed25519', extractable: true });
    const kid = randomUUID();
    const privateJwk = await exportJWK(privateKey);
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: ALG, use: 'sig' };
    const [row] = await tx
      .insert(signingKeysTable)
      .values({ kid, alg: ALG, privateKeyCiphertext: box.encrypt(JSON.stringify(privateJwk), signingKeyContext(kid)), publicJwk })
      .returning();
    return row!;
  });
}

export interface CompanyIdentity {
  verifier: CompanyTokenVerifier;
  /** Mappings from configuration; those in the role_mappings table are added to them. */
  configMappings: readonly ClaimMapping[];
}

/** A company token's grant: its claims matched against the configured and stored mappings. */
async function companyActor(tx: Db, company: CompanyIdentity, token: string): Promise<Actor> {
  let payload;
  try {
    payload = await company.verifier.verify(token);
  } catch (error) {
    throw new AuthenticationError(error instanceof CompanyTokenError ? error.message : 'invalid token');
  }
  const stored = await tx
    .select({ claim: roleMappingsTable.claim, value: roleMappingsTable.value, role: roleMappingsTable.role, orgUnitId: roleMappingsTable.orgUnitId })
    .from(roleMappingsTable)
    .orderBy(roleMappingsTable.createdAt);
  const grant = grantFromClaims(payload, [...company.configMappings, ...stored]);
  if (!grant) throw new AuthenticationError('no gateway role is mapped to this identity');
  let unitPath: string[] = [];
  if (grant.orgUnitId) {
    const [unit] = await tx.select({ path: orgUnitsTable.path }).from(orgUnitsTable).where(eq(orgUnitsTable.id, grant.orgUnitId));
    if (!unit) throw new AuthenticationError('the mapped unit does not exist');
    unitPath = unit.path;
  }
  return { subject: `idp:${payload.sub}`, role: grant.role, unitId: grant.orgUnitId, unitPath, tokenId: payload.jti ?? null };
}

export async function createTokenService(
  db: Db,
  box: SecretBox,
  opts: {
    issuer: string;
    audience: string;
    company?: CompanyIdentity | null;
    /** The revocation listener; without one (the embedded database) every request reads the token record. */
    revocations?: Notifications | null;
    /** How often the cached tokens are checked against the database anyway (a fallback for a lost notification). */
    recheckMs?: number;
  },
): Promise<TokenService> {
  const active = await loadOrCreateSigningKey(db, box);
  const privateKey = await importJWK(JSON.parse(box.decrypt(active.privateKeyCiphertext, signingKeyContext(active.kid))) as JWK, ALG);
  const keys = await db.select({ publicJwk: signingKeysTable.publicJwk }).from(signingKeysTable);
  const jwks = createLocalJWKSet({ keys: keys.map((k) => k.publicJwk) } as JSONWebKeySet);

  // Service tokens that passed the database check, by jti; and unit paths (units never move or disappear).
  const feed = opts.revocations ?? null;
  const cache = new Map<string, CachedServiceToken>();
  const unitPaths = new Map<string, string[]>();
  /** Counts revocations seen: a read that started before one must not fill the cache. */
  let revocations = 0;
  const forget = (id: string) => {
    revocations++;
    cache.delete(id);
  };
  feed?.on(REVOCATION_CHANNEL, (id) => {
    forget(id);
    feed.send(REVOCATION_ACK_CHANNEL, id);
  });
  // Revocations this process made and waits on: token id → backend pids of the listeners that acknowledged it.
  const awaited = new Map<string, { acks: Set<number>; changed: () => void }>();
  feed?.on(REVOCATION_ACK_CHANNEL, (id, pid) => {
    const waiting = awaited.get(id);
    if (!waiting) return;
    waiting.acks.add(pid);
    waiting.changed();
  });
  // Gateway tokens whose signature and claims were verified, by a hash of the token (the token itself is not kept):
  // the same token verifies the same way every time, except for its validity window, which is checked again on every
  // use exactly as jwtVerify checks it. Saves the Ed25519 verification (a WebCrypto job) and the claims' parsing on
  // every request after a caller's first; revocation is checked below as before.
  const verified = new Map<string, { claims: z.infer<typeof claimsSchema>; exp: number; nbf: number | undefined }>();
  const remember = <V>(map: Map<string, V>, key: string, value: V) => {
    map.delete(key);
    map.set(key, value);
    if (map.size > TOKEN_CACHE_MAX) map.delete(map.keys().next().value!);
  };
  // The fallback: re-read the revocation state of every cached token now and then, one statement.
  let rechecking = false;
  const recheck = feed
    ? setInterval(() => {
        if (rechecking || cache.size === 0) return;
        rechecking = true;
        const ids = [...cache.keys()];
        db.select({ id: serviceTokensTable.id })
          .from(serviceTokensTable)
          .where(and(inArray(serviceTokensTable.id, ids), isNull(serviceTokensTable.revokedAt)))
          .then(
            (rows) => {
              const valid = new Set(rows.map((r) => r.id));
              for (const id of ids) if (!valid.has(id)) forget(id);
            },
            () => cache.clear(),
          )
          .finally(() => {
            rechecking = false;
          });
      }, opts.recheckMs ?? 30_000)
    : null;
  recheck?.unref();

  const sign = (claims: Record<string, unknown>, subject: string, jti: string, expiresAt: Date) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: ALG, kid: active.kid, typ: 'JWT' })
      .setIssuer(opts.issuer)
      .setAudience(opts.audience)
      .setSubject(subject)
      .setJti(jti)
      .setIssuedAt()
      .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
      .sign(privateKey);

  return {
    async issueAdminToken(name, ttlSeconds = 12 * 3600) {
      return sign({ role: 'ADMIN' }, `admin:${name}`, randomUUID(), new Date(Date.now() + ttlSeconds * 1000));
    },
    async issueOperatorToken({ name, role, unitId = null, ttlSeconds = 12 * 3600 }) {
      if ((role === 'MANAGER' || role === 'MEMBER') !== (unitId !== null)) {
        throw new Error('MANAGER and MEMBER tokens need a unit; ADMIN and FINANCE tokens have none');
      }
      return sign({ role, ...(unitId ? { unit: unitId } : {}) }, `${role.toLowerCase()}:${name}`, randomUUID(), new Date(Date.now() + ttlSeconds * 1000));
    },
    async issueServiceToken(tx, input) {
      const [row] = await tx
        .insert(serviceTokensTable)
        .values({ orgUnitId: input.orgUnitId, name: input.name, expiresAt: input.expiresAt, createdBy: input.createdBy })
        .returning({ id: serviceTokensTable.id });
      const id = row!.id;
      const token = await sign({ role: 'SERVICE', unit: input.orgUnitId }, `service:${id}`, id, input.expiresAt);
      const callbackSecret = await setCallbackSecret(tx, box, id, new Date());
      return { id, token, callbackSecret };
    },
    async authenticate(tx, token) {
      const key = createHash('sha256').update(token).digest('base64');
      let data = verified.get(key);
      if (data) {
        // jose's checks of the window (src: jwt_claims_set), with the same tolerance.
        const now = Math.floor(Date.now() / 1000);
        if (data.exp <= now - CLOCK_TOLERANCE_SECONDS || (data.nbf !== undefined && data.nbf > now + CLOCK_TOLERANCE_SECONDS)) {
          verified.delete(key);
          data = undefined;
        }
      }
      if (!data) {
        // Route by the (not yet trusted) issuer; each path then verifies with its own keys and rules.
        let issuer: unknown;
        try {
          issuer = decodeJwt(token).iss;
        } catch {
          throw new AuthenticationError('invalid token');
        }
        if (opts.company && typeof issuer === 'string' && opts.company.verifier.settings.issuers.includes(issuer)) {
          return companyActor(tx, opts.company, token);
        }
        let payload;
        try {
          ({ payload } = await jwtVerify(token, jwks, {
            algorithms: [ALG],
            issuer: opts.issuer,
            audience: opts.audience,
            clockTolerance: CLOCK_TOLERANCE_SECONDS,
            requiredClaims: ['exp', 'iat', 'jti', 'sub'],
          }));
        } catch (error) {
          if (error instanceof joseErrors.JWTExpired) throw new AuthenticationError('token expired');
          throw new AuthenticationError('invalid token');
        }
        const claims = claimsSchema.safeParse(payload);
        if (!claims.success) throw new AuthenticationError('invalid token claims');
        data = { claims: claims.data, exp: payload.exp!, nbf: payload.nbf };
        remember(verified, key, data);
      }
      const { sub, jti, role, unit } = data.claims;
      if (role === 'ADMIN' || role === 'FINANCE') {
        if (unit) throw new AuthenticationError('invalid token claims');
        return { subject: sub, role, unitId: null, unitPath: [], tokenId: jti };
      }
      if (!unit) throw new AuthenticationError('invalid token claims');
      if (role === 'MANAGER' || role === 'MEMBER') {
        let path = unitPaths.get(unit);
        if (!path) {
          const [scope] = await tx.select({ path: orgUnitsTable.path }).from(orgUnitsTable).where(eq(orgUnitsTable.id, unit));
          if (!scope) throw new AuthenticationError('the token names a unit that does not exist');
          path = scope.path;
          remember(unitPaths, unit, path);
        }
        return { subject: sub, role, unitId: unit, unitPath: path, tokenId: jti };
      }
      const now = Date.now();
      const cached = cache.get(jti);
      if (cached && feed?.live && cached.epoch === feed.epoch && cached.unitId === unit) {
        // last_used_at is advisory: written at most once a minute per token to keep reads cheap.
        if (cached.lastUsedAt === null || now - cached.lastUsedAt > LAST_USED_EVERY_MS) {
          cached.lastUsedAt = now;
          await tx.update(serviceTokensTable).set({ lastUsedAt: new Date(now) }).where(eq(serviceTokensTable.id, jti));
        }
        return { subject: sub, role, unitId: unit, unitPath: cached.path, tokenId: jti };
      }
      const epoch = feed?.epoch;
      const seen = revocations;
      const [row] = await tx
        .select({ id: serviceTokensTable.id, lastUsedAt: serviceTokensTable.lastUsedAt, path: orgUnitsTable.path })
        .from(serviceTokensTable)
        .innerJoin(orgUnitsTable, eq(orgUnitsTable.id, serviceTokensTable.orgUnitId))
        .where(and(eq(serviceTokensTable.id, jti), eq(serviceTokensTable.orgUnitId, unit), isNull(serviceTokensTable.revokedAt)));
      if (!row) throw new AuthenticationError('token revoked');
      let lastUsedAt = row.lastUsedAt?.getTime() ?? null;
      if (lastUsedAt === null || now - lastUsedAt > LAST_USED_EVERY_MS) {
        lastUsedAt = now;
        await tx.update(serviceTokensTable).set({ lastUsedAt: new Date(now) }).where(eq(serviceTokensTable.id, jti));
      }
      // Cached only if the listener was live through the read and no revocation arrived meanwhile (it could be this one).
      if (feed?.live && feed.epoch === epoch && revocations === seen) {
        remember(cache, jti, { unitId: unit, path: row.path, lastUsedAt, epoch });
      }
      return { subject: sub, role, unitId: unit, unitPath: row.path, tokenId: jti };
    },
    forget,
    expectRevocation(tokenId, pool) {
      const waiting = { acks: new Set<number>(), changed: () => {} };
      if (feed) awaited.set(tokenId, waiting);
      const cancel = () => {
        if (awaited.get(tokenId) === waiting) awaited.delete(tokenId);
      };
      return {
        cancel,
        async awaitEveryProcess(timeoutMs = 3_000) {
          if (!feed) return;
          const deadline = Date.now() + timeoutMs;
          try {
            // The listeners now on the database (each names itself once it listens); re-read while waiting, since
            // one that went away will never answer.
            for (;;) {
              const listeners = await pool.execute<{ pid: number }>(
                sql`select pid from pg_stat_activity where datname = current_database() and application_name = ${LISTENER_APPLICATION_NAME}`,
              );
              const pids = (listeners.rows as { pid: number }[]).map((r) => Number(r.pid));
              if (pids.every((pid) => waiting.acks.has(pid))) return;
              const left = deadline - Date.now();
              if (left <= 0) return;
              await new Promise<void>((resolve) => {
                const timer = setTimeout(resolve, Math.min(left, 100));
                waiting.changed = () => {
                  clearTimeout(timer);
                  resolve();
                };
              });
            }
          } finally {
            cancel();
          }
        },
      };
    },
    close() {
      if (recheck) clearInterval(recheck);
      cache.clear();
    },
  };
}

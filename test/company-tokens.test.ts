// Company identity-provider tokens: verified against a real JWKS server, mapped to roles by claims.
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, UnsecuredJWT, exportJWK, exportSPKI, generateKeyPair, type JWK, type CryptoKey } from 'jose';
import { createHmac } from 'node:crypto';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { createTree, type Tree } from './support/fixtures.js';

const ISSUER = 'https://idp.example.com';
const AUDIENCE = 'heygen-gateway-api';

interface IdpKey {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
  publicPem: string;
}

async function idpKey(kid: string): Promise<IdpKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' }, publicPem: await exportSPKI(publicKey) };
}

let jwks: Server;
let jwksUrl = '';
let served: IdpKey[] = [];
let fetches = 0;
let h: Harness;
let tree: Tree;
let key1: IdpKey;
let key2: IdpKey;
let stranger: IdpKey;

function sign(key: IdpKey, claims: Record<string, unknown> = {}, opts: { exp?: string | number; nbf?: number; iss?: string; aud?: string; kid?: string } = {}) {
  const jwt = new SignJWT({ groups: ['finance'], ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: opts.kid ?? key.kid })
    .setIssuer(opts.iss ?? ISSUER)
    .setAudience(opts.aud ?? AUDIENCE)
    .setSubject('alice@example.com')
    .setIssuedAt()
    .setExpirationTime(opts.exp ?? '10m');
  if (opts.nbf !== undefined) jwt.setNotBefore(opts.nbf);
  return jwt.sign(key.privateKey);
}

async function viewer(token: string) {
  return h.gql(`{ viewer { subject role orgUnit { id } } }`, {}, token);
}

beforeAll(async () => {
  key1 = await idpKey('key-1');
  key2 = await idpKey('key-2');
  stranger = await idpKey('key-1'); // same kid as a real key, different key material
  served = [key1];
  jwks = createServer((req, res) => {
    fetches++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: served.map((k) => k.publicJwk) }));
  });
  await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
  const address = jwks.address();
  jwksUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/.well-known/jwks.json`;
  h = await startHarness({
    workers: false,
    env: {
      JWT_JWKS_URL: jwksUrl,
      JWT_COMPANY_ISSUERS: ISSUER,
      JWT_COMPANY_AUDIENCE: AUDIENCE,
      JWT_CLOCK_TOLERANCE_SECONDS: '5',
      JWKS_COOLDOWN_MS: '400',
      JWKS_CACHE_MAX_AGE_MS: '600000',
      ROLE_MAPPINGS: JSON.stringify([{ claim: 'groups', value: 'finance', role: 'FINANCE' }]),
    },
  });
  tree = await createTree(h);
});

afterAll(async () => {
  await h?.close();
  await new Promise<void>((r) => jwks?.close(() => r()));
});

describe('company tokens', () => {
  it('a valid token is accepted with the role its claims map to (config mapping), fetching the JWKS once', async () => {
    const token = await sign(key1);
    const r = await viewer(token);
    expect(r.data.viewer).toEqual({ subject: 'idp:alice@example.com', role: 'FINANCE', orgUnit: null });
    expect((await viewer(token)).data.viewer.role).toBe('FINANCE');
    expect(fetches).toBe(1);
  });

  it('stored mappings grant scoped roles; the most privileged match wins; no match is refused', async () => {
    const create = await h.gql(
      `mutation($input: CreateRoleMappingInput!) { createRoleMapping(input: $input) { __typename ... on CreateRoleMappingPayload { roleMapping { id role } } ... on Error { code message } } }`,
      { input: { claim: 'realm_access.roles', value: 'video-lead', role: 'MANAGER', orgUnitId: tree.teamId } },
    );
    expect(create.data.createRoleMapping.roleMapping.role).toBe('MANAGER');
    const manager = await viewer(await sign(key1, { groups: [], realm_access: { roles: ['video-lead'] } }));
    expect(manager.data.viewer).toEqual({ subject: 'idp:alice@example.com', role: 'MANAGER', orgUnit: { id: tree.teamId } });
    const both = await viewer(await sign(key1, { groups: ['finance'], realm_access: { roles: ['video-lead'] } }));
    expect(both.data.viewer.role).toBe('FINANCE');
    const nobody = await viewer(await sign(key1, { groups: ['marketing'] }));
    expect(nobody.status).toBe(401);
    expect(nobody.errors?.[0].extensions.code).toBe('UNAUTHENTICATED');
  });

  it('refuses unknown keys, alg none, HS256 with the public key, expired, not yet valid, wrong issuer or audience, unknown kid', async () => {
    const now = Math.floor(Date.now() / 1000);
    const refused: Record<string, string> = {
      'unknown key with a known kid': await sign(stranger),
      'alg none': new UnsecuredJWT({ groups: ['finance'] }).setIssuer(ISSUER).setAudience(AUDIENCE).setSubject('eve').setIssuedAt().setExpirationTime('10m').encode(),
      'HS256 keyed with the public key': hs256WithPublicKey(key1.publicPem),
      expired: await sign(key1, {}, { exp: now - 60 }),
      'not yet valid': await sign(key1, {}, { nbf: now + 600 }),
      'wrong issuer': await sign(key1, {}, { iss: 'https://evil.example.com' }),
      'wrong audience': await sign(key1, {}, { aud: 'another-api' }),
      'kid not in the set': await sign(key1, {}, { kid: 'key-404' }),
    };
    for (const [name, token] of Object.entries(refused)) {
      const r = await viewer(token);
      expect(r.status, name).toBe(401);
      expect(r.errors?.[0].extensions.code, name).toBe('UNAUTHENTICATED');
      expect(r.data ?? null, name).toBeNull();
    }
  });

  it('picks up a key rotation, and does not fetch the JWKS more than the cooldown allows', async () => {
    served = [key1, key2];
    const rotated = await sign(key2);
    // The first unknown kid refetches once the cooldown since the last fetch has passed.
    await waitFor(async () => (await viewer(rotated)).status === 200, 5000, 100);
    const afterRotation = fetches;
    const stormStarted = Date.now();
    // Known kids are served from the cache; a storm of unknown kids costs at most one fetch per cooldown (400 ms)
    // that passed during the storm: on a loaded machine the storm may span several cooldowns, never 20 fetches.
    for (let i = 0; i < 10; i++) expect((await viewer(rotated)).status).toBe(200);
    for (let i = 0; i < 20; i++) expect((await viewer(await sign(key1, {}, { kid: `bogus-${i}` }))).status).toBe(401);
    const cooldownsElapsed = Math.floor((Date.now() - stormStarted) / 400);
    expect(fetches - afterRotation).toBeLessThanOrEqual(1 + cooldownsElapsed);
    expect(fetches - afterRotation).toBeLessThan(20);
    // The old key is retired at the IdP: once the set is fetched again, its tokens are refused.
    served = [key2];
    const old = await sign(key1);
    await waitFor(async () => {
      await viewer(await sign(key1, {}, { kid: 'force-refresh' }));
      return (await viewer(old)).status === 401;
    }, 5000, 150);
  });

  it('gateway-signed tokens keep working next to company tokens', async () => {
    expect((await viewer(h.adminToken)).data.viewer.role).toBe('ADMIN');
  });
});

function hs256WithPublicKey(publicPem: string): string {
  const encode = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const input = `${encode({ alg: 'HS256', typ: 'JWT', kid: 'key-1' })}.${encode({ iss: ISSUER, aud: AUDIENCE, sub: 'eve', groups: ['finance'], iat: now, exp: now + 600 })}`;
  return `${input}.${createHmac('sha256', publicPem).update(input).digest('base64url')}`;
}

// Identity and access (docs/architecture.md, Identity and roles): every GraphQL call carries a verified Bearer JWT; a SERVICE token sees
// its own project and the units above it, and nothing of another team (other ids read as not found).
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq, sql } from 'drizzle-orm';
import { SignJWT, UnsecuredJWT, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { startHarness, type Harness } from './support/harness.js';
import { createAccount, createTree, issueServiceToken, SUBMIT, avatarRequest, type Tree } from './support/fixtures.js';
import { queryRows } from '../src/db/client.js';
import { signingKeysTable } from '../src/db/schema.js';

let h: Harness;
let tree: Tree;
/** The gateway's real signing key (decrypted from the database), to build tokens that differ from a valid one in one way only. */
let realKey: CryptoKey;
let realKid: string;

const PROBE = `{ viewer { subject role } accounts { id apiKeyHint } }`;

interface RawResponse {
  status: number;
  headers: Headers;
  body: { data?: any; errors?: any[] };
}

async function post(query: string, variables: Record<string, unknown>, authorization: string | null): Promise<RawResponse> {
  const res = await fetch(`${h.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization !== null ? { authorization } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as RawResponse['body'] };
}

function expectUnauthenticated(r: RawResponse) {
  expect(r.status).toBe(401);
  expect(r.body.data).toBeUndefined();
  expect(r.body.errors).toHaveLength(1);
  expect(r.body.errors![0].extensions.code).toBe('UNAUTHENTICATED');
}

interface Claims {
  iss?: string;
  aud?: string;
  sub?: string;
  jti?: string;
  role?: string;
  unit?: string;
  iat?: number;
  exp?: number;
}

/** Claims exactly like an ADMIN token of the gateway (src/auth/tokens.ts), overridable one at a time. */
function adminClaims(overrides: Claims = {}): Required<Omit<Claims, 'unit'>> {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: h.config.jwt.issuer,
    aud: h.config.jwt.audience,
    sub: 'admin:forged',
    jti: randomUUID(),
    role: 'ADMIN',
    iat: now,
    exp: now + 3600,
    ...overrides,
  } as Required<Omit<Claims, 'unit'>>;
}

async function signWith(key: CryptoKey, claims: Claims, kid: string | undefined = realKid): Promise<string> {
  const { iss, aud, sub, jti, iat, exp, ...rest } = claims;
  let jwt = new SignJWT(rest as Record<string, unknown>).setProtectedHeader({ alg: 'EdDSA', typ: 'JWT', ...(kid ? { kid } : {}) });
  if (iss !== undefined) jwt = jwt.setIssuer(iss);
  if (aud !== undefined) jwt = jwt.setAudience(aud);
  if (sub !== undefined) jwt = jwt.setSubject(sub);
  if (jti !== undefined) jwt = jwt.setJti(jti);
  if (iat !== undefined) jwt = jwt.setIssuedAt(iat);
  if (exp !== undefined) jwt = jwt.setExpirationTime(exp);
  return jwt.sign(key);
}

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

async function countRows(table: string): Promise<number> {
  const [row] = await queryRows<{ n: number }>(h.services.db, sql.raw(`select count(*)::int as n from ${table}`));
  return Number(row!.n);
}

/**
 * Rows that only a request can write. Ledger entries are counted as HOLDs (only admission writes them):
 * background settlement of earlier jobs adds DEBIT and RELEASE entries at any moment.
 */
async function counts() {
  const names = ['jobs', 'org_units', 'budgets', 'accounts', 'account_terms', 'service_tokens'];
  const result: Record<string, number> = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await countRows(n)] as const)));
  result.ledger_holds = await countRows(`ledger_entries where entry_type = 'HOLD'`);
  return result;
}

beforeAll(async () => {
  h = await startHarness({ sim: { fixedDurationSeconds: 10 } });
  tree = await createTree(h);
  const [active] = await h.services.db.select().from(signingKeysTable).where(eq(signingKeysTable.active, true));
  realKid = active!.kid;
  const jwk = JSON.parse(h.services.box.decrypt(active!.privateKeyCiphertext, `signing_key:${active!.kid}`)) as JWK;
  realKey = (await importJWK(jwk, 'EdDSA')) as CryptoKey;
});
afterAll(async () => h?.close());

describe('authentication: every GraphQL call needs a valid Bearer JWT', () => {
  it('control: the harness admin token and a token built here with the real key and real claims are accepted', async () => {
    const a = await post(PROBE, {}, `Bearer ${h.adminToken}`);
    expect(a.status).toBe(200);
    expect(a.body.errors).toBeUndefined();
    expect(a.body.data.viewer).toEqual({ subject: 'admin:test', role: 'ADMIN' });

    const forged = await signWith(realKey, adminClaims());
    const b = await post(PROBE, {}, `Bearer ${forged}`);
    expect(b.status).toBe(200);
    expect(b.body.errors).toBeUndefined();
    expect(b.body.data.viewer).toEqual({ subject: 'admin:forged', role: 'ADMIN' });
  });

  it('no Authorization header → 401 UNAUTHENTICATED, no data', async () => {
    const r = await post(PROBE, {}, null);
    expectUnauthenticated(r);
    expect(r.headers.get('www-authenticate')).toBe('Bearer');
  });

  it('a header that is not a Bearer token (Basic, empty Bearer, garbage) → 401', async () => {
    expectUnauthenticated(await post(PROBE, {}, `Basic ${Buffer.from('admin:admin').toString('base64')}`));
    expectUnauthenticated(await post(PROBE, {}, 'Bearer '));
    expectUnauthenticated(await post(PROBE, {}, 'Bearer not.a.jwt'));
    expectUnauthenticated(await post(PROBE, {}, h.adminToken)); // the token without the Bearer scheme
  });

  it('an expired token (real key, real claims, exp an hour ago) → 401', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await signWith(realKey, adminClaims({ iat: now - 7200, exp: now - 3600 }));
    expectUnauthenticated(await post(PROBE, {}, `Bearer ${token}`));
    // The gateway's own issuer refuses its expired tokens too.
    const own = await h.services.tokens.issueAdminToken('expired', -120);
    expectUnauthenticated(await post(PROBE, {}, `Bearer ${own}`));
  });

  it('a token signed by another Ed25519 key → 401, whether it names the real kid, no kid, or a kid of its own', async () => {
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    for (const kid of [realKid, undefined, randomUUID()]) {
      const token = await signWith(privateKey as CryptoKey, adminClaims(), kid);
      expectUnauthenticated(await post(PROBE, {}, `Bearer ${token}`));
    }
  });

  it('a valid token whose signature bytes were tampered with → 401', async () => {
    const token = await signWith(realKey, adminClaims());
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const flipped = Buffer.from(signature, 'base64url');
    flipped[0] = flipped[0]! ^ 0xff;
    expectUnauthenticated(await post(PROBE, {}, `Bearer ${header}.${payload}.${flipped.toString('base64url')}`));
    // And a valid signature over another payload (role escalated from SERVICE to ADMIN).
    const other = await signWith(realKey, { ...adminClaims(), role: 'SERVICE', unit: randomUUID() } as Claims);
    const escalated = b64url({ ...JSON.parse(Buffer.from(other.split('.')[1]!, 'base64url').toString()), role: 'ADMIN' });
    expectUnauthenticated(await post(PROBE, {}, `Bearer ${header}.${escalated}.${signature}`));
  });

  it('alg: none (jose UnsecuredJWT, and one built by hand, with and without a trailing signature) → 401', async () => {
    const c = adminClaims();
    const unsecured = new UnsecuredJWT({ role: 'ADMIN' })
      .setIssuer(c.iss)
      .setAudience(c.aud)
      .setSubject(c.sub)
      .setJti(c.jti)
      .setIssuedAt(c.iat)
      .setExpirationTime(c.exp)
      .encode();
    expect(unsecured.endsWith('.')).toBe(true);
    expectUnauthenticated(await post(PROBE, {}, `Bearer ${unsecured}`));

    const byHand = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(c)}.`;
    expectUnauthenticated(await post(PROBE, {}, `Bearer ${byHand}`));
    const noneWithKid = `${b64url({ alg: 'none', typ: 'JWT', kid: realKid })}.${b64url(c)}.`;
    expectUnauthenticated(await post(PROBE, {}, `Bearer ${noneWithKid}`));
    const real = await signWith(realKey, c);
    const noneWithRealSignature = `${b64url({ alg: 'none', typ: 'JWT', kid: realKid })}.${b64url(c)}.${real.split('.')[2]}`;
    expectUnauthenticated(await post(PROBE, {}, `Bearer ${noneWithRealSignature}`));
  });

  it('algorithm confusion: HS256 keyed with the public JWK → 401', async () => {
    const [active] = await h.services.db.select().from(signingKeysTable).where(eq(signingKeysTable.kid, realKid));
    const secret = new TextEncoder().encode(JSON.stringify(active!.publicJwk));
    const c = adminClaims();
    const token = await new SignJWT({ role: 'ADMIN' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: realKid })
      .setIssuer(c.iss)
      .setAudience(c.aud)
      .setSubject(c.sub)
      .setJti(c.jti)
      .setIssuedAt(c.iat)
      .setExpirationTime(c.exp)
      .sign(secret);
    expectUnauthenticated(await post(PROBE, {}, `Bearer ${token}`));
  });

  it('a wrong audience, or none → 401 (real key, everything else valid)', async () => {
    expectUnauthenticated(await post(PROBE, {}, `Bearer ${await signWith(realKey, adminClaims({ aud: 'some-other-service' }))}`));
    const { aud: _aud, ...noAud } = adminClaims();
    expectUnauthenticated(await post(PROBE, {}, `Bearer ${await signWith(realKey, noAud)}`));
  });

  it('a wrong issuer, or none → 401 (real key, everything else valid)', async () => {
    expectUnauthenticated(await post(PROBE, {}, `Bearer ${await signWith(realKey, adminClaims({ iss: 'https://evil.example.com' }))}`));
    const { iss: _iss, ...noIss } = adminClaims();
    expectUnauthenticated(await post(PROBE, {}, `Bearer ${await signWith(realKey, noIss)}`));
  });

  it('real key but claims the gateway never issues (unknown role, SERVICE without unit, SERVICE with an unlisted jti, bad unit, no jti, no exp) → 401', async () => {
    const bad: Claims[] = [
      adminClaims({ role: 'ROOT' }),
      adminClaims({ role: 'SERVICE' }),
      // A real project, but a jti the gateway never issued (not in service_tokens).
      { ...adminClaims({ role: 'SERVICE', sub: 'service:forged' }), unit: decodeGlobalID(tree.projectId).id },
      { ...adminClaims({ role: 'SERVICE' }), unit: 'not-a-uuid' },
    ];
    for (const claims of bad) expectUnauthenticated(await post(PROBE, {}, `Bearer ${await signWith(realKey, claims)}`));
    const { jti: _jti, ...noJti } = adminClaims();
    expectUnauthenticated(await post(PROBE, {}, `Bearer ${await signWith(realKey, noJti)}`));
    const { exp: _exp, ...noExp } = adminClaims();
    expectUnauthenticated(await post(PROBE, {}, `Bearer ${await signWith(realKey, noExp)}`));
  });

  it('a mutation with a refused token writes nothing', async () => {
    const before = await counts();
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const forged = await signWith(privateKey as CryptoKey, adminClaims());
    const r = await post(
      `mutation($input: CreateOrgUnitInput!) { createOrgUnit(input: $input) { __typename } }`,
      { input: { kind: 'TEAM', name: 'Forged', parentId: tree.deptId } },
      `Bearer ${forged}`,
    );
    expectUnauthenticated(r);
    const r2 = await post(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } }, null);
    expectUnauthenticated(r2);
    expect(await counts()).toEqual(before);
  });
});

describe('SERVICE tokens: one project, and the units above it', () => {
  let service: { token: string; id: string };
  let ownJobId: string;
  let otherJobId: string;

  beforeAll(async () => {
    service = await issueServiceToken(h, tree.projectId, 'onboarding-app');
    const other = await h.gql(SUBMIT, { input: { projectId: tree.otherProjectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } });
    expect(other.errors).toBeUndefined();
    expect(other.data.submitJob.__typename).toBe('SubmitJobPayload');
    otherJobId = other.data.submitJob.job.id;
  });

  it('viewer is the SERVICE of project A', async () => {
    const r = await h.gql(`{ viewer { role subject orgUnit { id } } }`, {}, service.token);
    expect(r.status).toBe(200);
    expect(r.errors).toBeUndefined();
    expect(r.data.viewer.role).toBe('SERVICE');
    expect(r.data.viewer.orgUnit).toEqual({ id: tree.projectId });
  });

  it('submits jobs for project A', async () => {
    const r = await h.gql(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest(), idempotencyKey: 'svc-1' } }, service.token);
    expect(r.status).toBe(200);
    expect(r.errors).toBeUndefined();
    expect(r.data.submitJob.__typename).toBe('SubmitJobPayload');
    expect(r.data.submitJob.replayed).toBe(false);
    expect(r.data.submitJob.job.status).toBe('SUBMITTED');
    expect(r.data.submitJob.job.estimatedCreditSeconds).toBe('52.8');
    ownJobId = r.data.submitJob.job.id;
    const read = await h.gql(`query($id: ID!) { job(id: $id) { id project { id } } }`, { id: ownJobId }, service.token);
    expect(read.data.job).toEqual({ id: ownJobId, project: { id: tree.projectId } });
  });

  it("reads project A and its path (team, department, organization)", async () => {
    const r = await h.gql(
      `query($id: ID!) { orgUnit(id: $id) { id kind name parent { id } path { id kind } } }`,
      { id: tree.projectId },
      service.token,
    );
    expect(r.errors).toBeUndefined();
    expect(r.data.orgUnit).toEqual({
      id: tree.projectId,
      kind: 'PROJECT',
      name: 'Onboarding',
      parent: { id: tree.teamId },
      path: [
        { id: tree.orgId, kind: 'ORGANIZATION' },
        { id: tree.deptId, kind: 'DEPARTMENT' },
        { id: tree.teamId, kind: 'TEAM' },
        { id: tree.projectId, kind: 'PROJECT' },
      ],
    });
    for (const id of [tree.teamId, tree.deptId, tree.orgId]) {
      const a = await h.gql(`query($id: ID!) { orgUnit(id: $id) { id } node(id: $id) { id } }`, { id }, service.token);
      expect(a.errors).toBeUndefined();
      expect(a.data).toEqual({ orgUnit: { id }, node: { id } });
    }
    const list = await h.gql(`{ orgUnits(first: 50) { edges { node { id } } } }`, {}, service.token);
    expect(list.data.orgUnits.edges.map((e: any) => e.node.id).sort()).toEqual([tree.orgId, tree.deptId, tree.teamId, tree.projectId].sort());
  });

  it("another team's project B (and that team) read as null through orgUnit and node", async () => {
    for (const id of [tree.otherProjectId, tree.otherTeamId]) {
      const r = await h.gql(`query($id: ID!) { orgUnit(id: $id) { id name } node(id: $id) { id } }`, { id }, service.token);
      expect(r.status).toBe(200);
      expect(r.errors).toBeUndefined();
      expect(r.data).toEqual({ orgUnit: null, node: null });
    }
    // The same ids are readable by the admin: null above is visibility, not absence.
    const admin = await h.gql(`query($id: ID!) { orgUnit(id: $id) { id } }`, { id: tree.otherProjectId });
    expect(admin.data.orgUnit).toEqual({ id: tree.otherProjectId });
  });

  it('submitJob for project B → NotFoundError (not Forbidden), nothing written', async () => {
    const before = await counts();
    const r = await h.gql(SUBMIT, { input: { projectId: tree.otherProjectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } }, service.token);
    expect(r.status).toBe(200);
    expect(r.errors).toBeUndefined();
    expect(r.data.submitJob.__typename).toBe('NotFoundError');
    expect(r.data.submitJob.code).toBe('NOT_FOUND');
    // A parent unit the token can read is not a project it may submit for either.
    const team = await h.gql(SUBMIT, { input: { projectId: tree.teamId, kind: 'AVATAR_VIDEO', request: avatarRequest() } }, service.token);
    expect(team.errors).toBeUndefined();
    expect(['NotFoundError', 'ValidationError', 'ForbiddenError']).toContain(team.data.submitJob.__typename);
    const after = await counts();
    expect(after).toEqual(before);
  });

  it("B's jobs are invisible: filtered connection, unfiltered connection, job(id), node(id), cancelJob", async () => {
    const filtered = await h.gql(
      `query($p: ID!) { jobs(first: 100, filter: { projectId: $p }) { edges { node { id } } } }`,
      { p: tree.otherProjectId },
      service.token,
    );
    expect(filtered.errors).toBeUndefined();
    expect(filtered.data.jobs.edges).toEqual([]);

    const all = await h.gql(`{ jobs(first: 100) { edges { node { id project { id } } } } }`, {}, service.token);
    expect(all.errors).toBeUndefined();
    const ids = all.data.jobs.edges.map((e: any) => e.node.id);
    expect(ids).toContain(ownJobId);
    expect(ids).not.toContain(otherJobId);
    expect(new Set(all.data.jobs.edges.map((e: any) => e.node.project.id))).toEqual(new Set([tree.projectId]));

    // The admin does see B's job in the same connection.
    const adminAll = await h.gql(`{ jobs(first: 100) { edges { node { id } } } }`);
    expect(adminAll.data.jobs.edges.map((e: any) => e.node.id)).toContain(otherJobId);

    const one = await h.gql(`query($id: ID!) { job(id: $id) { id } node(id: $id) { id } }`, { id: otherJobId }, service.token);
    expect(one.errors).toBeUndefined();
    expect(one.data).toEqual({ job: null, node: null });

    const cancel = await h.gql(
      `mutation($id: ID!) { cancelJob(input: { jobId: $id }) { __typename ... on Error { code } } }`,
      { id: otherJobId },
      service.token,
    );
    expect(cancel.errors).toBeUndefined();
    expect(cancel.data.cancelJob).toEqual({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
  });

  it('cannot createOrgUnit, setBudget, createAccount or issueServiceToken: typed Forbidden/NotFound, nothing written', async () => {
    const before = await counts();
    const call = async (query: string, input: Record<string, unknown>, field: string) => {
      const r = await h.gql(query, { input }, service.token);
      expect(r.status).toBe(200);
      expect(r.errors).toBeUndefined();
      return r.data[field] as { __typename: string; code: string };
    };
    const ORG = `mutation($input: CreateOrgUnitInput!) { createOrgUnit(input: $input) { __typename ... on Error { code } } }`;
    const BUDGET = `mutation($input: SetBudgetInput!) { setBudget(input: $input) { __typename ... on Error { code } } }`;
    const ACCOUNT = `mutation($input: CreateAccountInput!) { createAccount(input: $input) { __typename ... on Error { code } } }`;
    const TOKEN = `mutation($input: IssueServiceTokenInput!) { issueServiceToken(input: $input) { __typename ... on Error { code } } }`;

    expect(await call(ORG, { kind: 'PROJECT', name: 'Sneaky', parentId: tree.teamId }, 'createOrgUnit')).toEqual({ __typename: 'ForbiddenError', code: 'FORBIDDEN' });
    expect(await call(ORG, { kind: 'PROJECT', name: 'Sneaky', parentId: tree.otherTeamId }, 'createOrgUnit')).toEqual({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
    expect(await call(ORG, { kind: 'ORGANIZATION', name: 'Rogue' }, 'createOrgUnit')).toEqual({ __typename: 'ForbiddenError', code: 'FORBIDDEN' });

    const budget = { window: 'MONTHLY', limitCreditSeconds: '1000000' };
    for (const orgUnitId of [tree.projectId, tree.teamId, tree.orgId]) {
      expect(await call(BUDGET, { ...budget, orgUnitId }, 'setBudget')).toEqual({ __typename: 'ForbiddenError', code: 'FORBIDDEN' });
    }
    expect(await call(BUDGET, { ...budget, orgUnitId: tree.otherProjectId }, 'setBudget')).toEqual({ __typename: 'NotFoundError', code: 'NOT_FOUND' });

    expect(
      await call(
        ACCOUNT,
        {
          name: 'Rogue account',
          billingModel: 'USAGE_BASED',
          usageBased: { mmcUsd: '1', includedCreditSeconds: '1', contractRateUsd: '1', overageRateUsd: '1' },
          apiKey: 'sk_rogue_key_123456',
          baseUrl: h.sim.url,
        },
        'createAccount',
      ),
    ).toEqual({ __typename: 'ForbiddenError', code: 'FORBIDDEN' });

    expect(await call(TOKEN, { orgUnitId: tree.projectId, name: 'second' }, 'issueServiceToken')).toEqual({ __typename: 'ForbiddenError', code: 'FORBIDDEN' });
    expect(await call(TOKEN, { orgUnitId: tree.otherProjectId, name: 'stolen' }, 'issueServiceToken')).toEqual({ __typename: 'NotFoundError', code: 'NOT_FOUND' });

    expect(await counts()).toEqual(before);
  });

  it('cannot revoke its own token or read token records', async () => {
    const r = await h.gql(
      `mutation($id: ID!) { revokeServiceToken(input: { serviceTokenId: $id }) { __typename ... on Error { code } } }`,
      { id: service.id },
      service.token,
    );
    expect(r.errors).toBeUndefined();
    expect(r.data.revokeServiceToken).toEqual({ __typename: 'ForbiddenError', code: 'FORBIDDEN' });
    const node = await h.gql(`query($id: ID!) { node(id: $id) { id } }`, { id: service.id }, service.token);
    expect(node.data.node).toBeNull();
    const still = await h.gql(`{ viewer { role } }`, {}, service.token);
    expect(still.status).toBe(200);
    expect(still.data.viewer.role).toBe('SERVICE');
  });

  it('sees the account its project draws on, and no other', async () => {
    const otherAccountId = await createAccount(h, { name: 'Other contract', apiKey: 'sk_test_other_contract_01' });
    const list = await h.gql(`{ accounts { id } }`, {}, service.token);
    expect(list.errors).toBeUndefined();
    expect(list.data.accounts).toEqual([{ id: tree.accountId }]);
    const other = await h.gql(`query($id: ID!) { node(id: $id) { id } }`, { id: otherAccountId }, service.token);
    expect(other.data.node).toBeNull();
    const own = await h.gql(`query($id: ID!) { node(id: $id) { id } }`, { id: tree.accountId }, service.token);
    expect(own.data.node).toEqual({ id: tree.accountId });
  });

  it('ids of units that do not exist read like ids of other teams', async () => {
    const ghost = encodeGlobalID('OrgUnit', randomUUID());
    const r = await h.gql(`query($id: ID!) { orgUnit(id: $id) { id } node(id: $id) { id } }`, { id: ghost }, service.token);
    expect(r.data).toEqual({ orgUnit: null, node: null });
    const s = await h.gql(SUBMIT, { input: { projectId: ghost, kind: 'AVATAR_VIDEO', request: avatarRequest() } }, service.token);
    expect(s.data.submitJob.__typename).toBe('NotFoundError');
  });
});

describe('revocation', () => {
  it('a revoked service token is refused (401) on the next request; another token of the same project still works', async () => {
    const doomed = await issueServiceToken(h, tree.projectId, 'doomed');
    const survivor = await issueServiceToken(h, tree.projectId, 'survivor');
    const ok = await post(`{ viewer { role } }`, {}, `Bearer ${doomed.token}`);
    expect(ok.status).toBe(200);
    expect(ok.body.data.viewer.role).toBe('SERVICE');

    const revoke = await h.gql(
      `mutation($id: ID!) { revokeServiceToken(input: { serviceTokenId: $id }) { __typename ... on RevokeServiceTokenPayload { serviceToken { id revokedAt } } ... on Error { code } } }`,
      { id: doomed.id },
    );
    expect(revoke.errors).toBeUndefined();
    expect(revoke.data.revokeServiceToken.__typename).toBe('RevokeServiceTokenPayload');
    expect(revoke.data.revokeServiceToken.serviceToken.id).toBe(doomed.id);
    expect(typeof revoke.data.revokeServiceToken.serviceToken.revokedAt).toBe('string');

    expectUnauthenticated(await post(`{ viewer { role } }`, {}, `Bearer ${doomed.token}`));
    const before = await counts();
    expectUnauthenticated(
      await post(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } }, `Bearer ${doomed.token}`),
    );
    expect(await counts()).toEqual(before);

    const other = await post(`{ viewer { role } }`, {}, `Bearer ${survivor.token}`);
    expect(other.status).toBe(200);
    expect(other.body.data.viewer.role).toBe('SERVICE');
  });
});

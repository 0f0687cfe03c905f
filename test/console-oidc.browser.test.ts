// The console's company sign-in (OIDC authorization code + PKCE) in a real browser, through a fake identity provider
// started here on port 0: discovery, /authorize that approves at once and sends the browser back with a code, /token
// that checks the PKCE verifier against the challenge and answers with an ID token signed by a key whose JWKS it
// serves. The gateway process trusts that IdP (company tokens, a claim mapped to MANAGER of a team) and offers it to
// the console. The browser may reach the gateway and that IdP, and no other host.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { startHarness, type Harness } from './support/harness.js';
import { spawnGateway, type GatewayProcess } from './support/processes.js';
import { createTree, type Tree } from './support/fixtures.js';
import { generateMasterKey } from '../src/secrets/secret-box.js';

const CHROMIUM = '/usr/bin/chromium';
const CLIENT_ID = 'budget-console';
const WAIT = { timeout: 15_000, interval: 100 };

interface Grant {
  challenge: string;
  method: string;
  nonce: string;
  redirectUri: string;
  clientId: string;
}

/** The fake IdP: what it was asked, and switches for the hostile cases. */
interface FakeIdp {
  url: string;
  server: Server;
  authorizeRequests: URLSearchParams[];
  tokenRequests: URLSearchParams[];
  issuedTokens: string[];
  /** Sends the browser back with this state instead of the one it was given. */
  forgeState: string | null;
  /** The one redirect URI registered for the client (set once the gateway's port is known). */
  redirectUri: string;
  corsOrigin: string;
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function startFakeIdp(): Promise<FakeIdp> {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  const grants = new Map<string, Grant>();
  const idp = { authorizeRequests: [], tokenRequests: [], issuedTokens: [], forgeState: null, redirectUri: '', corsOrigin: '' } as unknown as FakeIdp;
  idp.server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url!, idp.url);
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json', 'access-control-allow-origin': idp.corsOrigin, 'cache-control': 'no-store' });
        res.end(JSON.stringify(body));
      };
      if (req.method === 'OPTIONS') {
        res.writeHead(204, {
          'access-control-allow-origin': idp.corsOrigin,
          'access-control-allow-methods': 'GET, POST',
          'access-control-allow-headers': 'content-type, accept, authorization, dpop',
        });
        return res.end();
      }
      if (url.pathname === '/.well-known/openid-configuration') {
        return json(200, {
          issuer: idp.url,
          authorization_endpoint: `${idp.url}/authorize`,
          token_endpoint: `${idp.url}/token`,
          jwks_uri: `${idp.url}/jwks`,
          response_types_supported: ['code'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['RS256'],
          code_challenge_methods_supported: ['S256'],
          token_endpoint_auth_methods_supported: ['none'],
        });
      }
      if (url.pathname === '/jwks') return json(200, { keys: [jwk] });
      if (url.pathname === '/authorize') {
        const q = url.searchParams;
        idp.authorizeRequests.push(q);
        if (q.get('client_id') !== CLIENT_ID || q.get('redirect_uri') !== idp.redirectUri || q.get('response_type') !== 'code') {
          res.writeHead(400, { 'content-type': 'text/plain' });
          return res.end('bad authorization request');
        }
        // Approves at once (the user is "already signed in" at the IdP).
        const code = randomBytes(16).toString('base64url');
        grants.set(code, {
          challenge: q.get('code_challenge') ?? '',
          method: q.get('code_challenge_method') ?? '',
          nonce: q.get('nonce') ?? '',
          redirectUri: q.get('redirect_uri')!,
          clientId: q.get('client_id')!,
        });
        const back = new URL(idp.redirectUri);
        back.searchParams.set('code', code);
        back.searchParams.set('state', idp.forgeState ?? q.get('state') ?? '');
        res.writeHead(302, { location: back.toString() });
        return res.end();
      }
      if (url.pathname === '/token' && req.method === 'POST') {
        const form = await readForm(req);
        idp.tokenRequests.push(form);
        const grant = grants.get(form.get('code') ?? '');
        grants.delete(form.get('code') ?? '');
        const verifier = form.get('code_verifier') ?? '';
        const ok =
          grant &&
          form.get('grant_type') === 'authorization_code' &&
          form.get('client_id') === grant.clientId &&
          form.get('redirect_uri') === grant.redirectUri &&
          grant.method === 'S256' &&
          createHash('sha256').update(verifier).digest('base64url') === grant.challenge;
        if (!ok) return json(400, { error: 'invalid_grant', error_description: 'code, redirect_uri or code_verifier do not match' });
        const idToken = await new SignJWT({ nonce: grant.nonce, groups: ['video-leads'], name: 'Vera Lead' })
          .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
          .setIssuer(idp.url)
          .setAudience(CLIENT_ID)
          .setSubject('vera@example.com')
          .setIssuedAt()
          .setExpirationTime('10m')
          .sign(privateKey);
        idp.issuedTokens.push(idToken);
        return json(200, { access_token: randomBytes(24).toString('base64url'), token_type: 'Bearer', expires_in: 600, id_token: idToken, scope: 'openid profile email' });
      }
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    })().catch((error: unknown) => {
      res.writeHead(500);
      res.end(String(error));
    });
  });
  await new Promise<void>((resolve) => idp.server.listen(0, '127.0.0.1', resolve));
  idp.url = `http://127.0.0.1:${(idp.server.address() as AddressInfo).port}`;
  return idp;
}

let h: Harness;
let idp: FakeIdp;
let gateway: GatewayProcess;
let browser: Browser;
let tree: Tree;
const foreign: string[] = [];
const consoleErrors: string[] = [];
/** Bearer tokens the console sent to /graphql. */
const bearers: string[] = [];

async function newPage(name: string): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
  // Exactly two hosts are allowed: the gateway and the fake IdP.
  const allowed = new Set([new URL(gateway.url).origin, new URL(idp.url).origin]);
  context.on('request', (request) => {
    const url = new URL(request.url());
    if (/^(https?|wss?):$/.test(url.protocol) && !allowed.has(url.origin)) foreign.push(`${name}: ${request.url()}`);
    if (url.origin === new URL(gateway.url).origin && url.pathname === '/graphql') {
      const auth = request.headers().authorization;
      if (auth) bearers.push(auth.replace(/^Bearer /, ''));
    }
  });
  context.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(`${name}: ${message.text()}`);
  });
  context.on('weberror', (error) => consoleErrors.push(`${name}: ${error.error().message}`));
  await context.route((url) => url.protocol.startsWith('http') && !allowed.has(url.origin), (route) => route.abort());
  return { context, page: await context.newPage() };
}

beforeAll(async () => {
  const masterKey = generateMasterKey();
  h = await startHarness({ env: { GATEWAY_MASTER_KEY: masterKey } });
  tree = await createTree(h);
  idp = await startFakeIdp();
  gateway = await spawnGateway({
    DATABASE_URL: h.database.url,
    GATEWAY_MASTER_KEY: masterKey,
    HEYGEN_BASE_URL: h.sim.url,
    WORKERS_ENABLED: 'false',
    RATE_LIMIT_PER_MINUTE: '0',
    JWT_JWKS_URL: `${idp.url}/jwks`,
    JWT_COMPANY_ISSUERS: idp.url,
    JWT_COMPANY_AUDIENCE: CLIENT_ID,
    ROLE_MAPPINGS: JSON.stringify([{ claim: 'groups', value: 'video-leads', role: 'MANAGER', orgUnitId: decodeGlobalID(tree.teamId).id }]),
    CONSOLE_OIDC_ISSUER: idp.url,
    CONSOLE_OIDC_CLIENT_ID: CLIENT_ID,
    CONSOLE_OIDC_SCOPES: 'openid profile email',
  });
  idp.redirectUri = `${gateway.url}/console/`;
  idp.corsOrigin = new URL(gateway.url).origin;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
});

afterEach(() => {
  expect(foreign, 'requests to hosts other than the gateway and the IdP').toEqual([]);
  expect(consoleErrors, 'browser console errors').toEqual([]);
});

afterAll(async () => {
  await browser?.close();
  await gateway?.stop();
  await new Promise((resolve) => idp?.server.close(resolve));
  await h?.close();
});

describe('console sign-in with the company IdP (OIDC, authorization code + PKCE)', () => {
  it('names the IdP in /console/config.json and lets the console connect to it and nowhere else', async () => {
    const config = await fetch(`${gateway.url}/console/config.json`);
    expect(config.status).toBe(200);
    expect(await config.json()).toEqual({ oidc: { issuer: idp.url, clientId: CLIENT_ID, scopes: ['openid', 'profile', 'email'], token: 'id_token' } });
    const csp = (await fetch(`${gateway.url}/console/`)).headers.get('content-security-policy')!;
    const connect = csp.split('; ').find((d) => d.startsWith('connect-src '));
    expect(connect).toBe(`connect-src 'self' ${idp.url}`);
  });

  it('signs in through the IdP, sees the overview as the mapped role, and signs out', async () => {
    const { context, page } = await newPage('oidc');
    await page.goto(`${gateway.url}/console/`);
    await page.getByRole('button', { name: 'Sign in with your company account' }).click();
    await page.getByTestId('whoami').waitFor(WAIT);
    const whoami = await page.getByTestId('whoami').textContent();
    expect(whoami).toContain('idp:vera@example.com');
    expect(whoami).toContain('MANAGER');
    expect(whoami).toContain('Video');

    // The authorization request carried an S256 challenge, a state and a nonce; the code went back with the verifier.
    expect(idp.authorizeRequests).toHaveLength(1);
    const authorize = idp.authorizeRequests[0]!;
    expect(authorize.get('code_challenge_method')).toBe('S256');
    expect(authorize.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(authorize.get('state')).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(authorize.get('nonce')).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(authorize.get('scope')).toBe('openid profile email');
    expect(idp.tokenRequests).toHaveLength(1);
    expect(idp.tokenRequests[0]!.has('client_secret')).toBe(false);
    // The ID token is the console's Bearer; the address bar no longer holds the code.
    expect(idp.issuedTokens).toHaveLength(1);
    expect(bearers.length).toBeGreaterThan(0);
    expect(new Set(bearers)).toEqual(new Set(idp.issuedTokens));
    expect(new URL(page.url()).search).toBe('');

    // The overview of the mapped unit's subtree: its project, not the sibling team.
    await page.locator('[data-unit-name]').first().waitFor(WAIT);
    const units = await page.locator('[data-unit-name]').evaluateAll((els) => els.map((e) => e.getAttribute('data-unit-name')));
    expect(units).toEqual(expect.arrayContaining(['Video', 'Onboarding']));
    expect(units).not.toContain('Social');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in with your company account' }).waitFor(WAIT);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    await page.reload();
    await page.getByLabel('Gateway token').waitFor(WAIT);
    expect(await page.getByTestId('whoami').count()).toBe(0);
    await context.close();
  });

  it('refuses an answer whose state is not the one this tab sent, without exchanging the code', async () => {
    const { context, page } = await newPage('forged-state');
    idp.forgeState = 'forged-state-value-from-elsewhere';
    const tokenCalls = idp.tokenRequests.length;
    try {
      await page.goto(`${gateway.url}/console/`);
      await page.getByRole('button', { name: 'Sign in with your company account' }).click();
      await expect.poll(() => page.getByRole('alert').first().textContent(), WAIT).toContain('(state): it was refused');
    } finally {
      idp.forgeState = null;
    }
    expect(idp.tokenRequests.length).toBe(tokenCalls);
    expect(await page.getByTestId('whoami').count()).toBe(0);
    expect(new URL(page.url()).search).toBe('');
    // A callback nobody started in this tab is refused too (no pending sign-in).
    await page.goto(`${gateway.url}/console/?code=abc&state=xyz`);
    await expect.poll(() => page.getByRole('alert').first().textContent(), WAIT).toContain('No sign-in was started');
    expect(idp.tokenRequests.length).toBe(tokenCalls);
    await context.close();
  });

  it('keeps token sign-in available next to the IdP', async () => {
    const { context, page } = await newPage('token');
    const token = await h.services.tokens.issueOperatorToken({ name: 'fiona', role: 'FINANCE' });
    await page.goto(`${gateway.url}/console/`);
    await page.getByLabel('Gateway token').fill(token);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByTestId('whoami').waitFor(WAIT);
    expect(await page.getByTestId('whoami').textContent()).toContain('FINANCE');
    await context.close();
  });
});

// The console's OIDC settings: refused at start when the console could not use them (the gateway would not accept
// what the IdP returns, or the browser would talk to it in clear over a network), and the CSP names that IdP only.
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { CONSOLE_CSP, consoleConfig, consoleCsp } from '../src/http/console.js';

const company = {
  JWT_JWKS_URL: 'https://idp.example.com/jwks',
  JWT_COMPANY_ISSUERS: 'https://idp.example.com',
  JWT_COMPANY_AUDIENCE: 'budget-console',
};
const load = (env: Record<string, string>) => loadConfig(env, { requireMasterKey: false });

describe('console OIDC configuration', () => {
  it('is off unless an issuer is set', () => {
    expect(load({}).consoleOidc).toBeNull();
    expect(consoleCsp(null)).toBe(CONSOLE_CSP);
    expect(consoleConfig(null)).toEqual({ oidc: null });
  });

  it('reads issuer, client id, scopes and the token to send', () => {
    const config = load({ ...company, CONSOLE_OIDC_ISSUER: 'https://idp.example.com', CONSOLE_OIDC_CLIENT_ID: 'budget-console', CONSOLE_OIDC_SCOPES: 'openid email groups' });
    expect(config.consoleOidc).toEqual({ issuer: 'https://idp.example.com', clientId: 'budget-console', scopes: ['openid', 'email', 'groups'], token: 'id_token' });
    const csp = consoleCsp(config.consoleOidc);
    expect(csp).toContain("connect-src 'self' https://idp.example.com;");
    expect(csp.match(/idp\.example\.com/g)).toHaveLength(1);
  });

  it.each([
    ['no client id', { ...company, CONSOLE_OIDC_ISSUER: 'https://idp.example.com' }, /CONSOLE_OIDC_CLIENT_ID/],
    ['a client id without issuer', { CONSOLE_OIDC_CLIENT_ID: 'x' }, /CONSOLE_OIDC_ISSUER: required/],
    ['plain http to another host', { ...company, JWT_COMPANY_ISSUERS: 'http://idp.example.com', CONSOLE_OIDC_ISSUER: 'http://idp.example.com', CONSOLE_OIDC_CLIENT_ID: 'budget-console' }, /must be https/],
    ['an issuer the gateway does not trust', { ...company, CONSOLE_OIDC_ISSUER: 'https://other.example.com', CONSOLE_OIDC_CLIENT_ID: 'budget-console' }, /JWT_COMPANY_ISSUERS/],
    ['no company tokens at all', { CONSOLE_OIDC_ISSUER: 'https://idp.example.com', CONSOLE_OIDC_CLIENT_ID: 'budget-console' }, /JWT_COMPANY_ISSUERS/],
    ['ID tokens the gateway would refuse (audience)', { ...company, JWT_COMPANY_AUDIENCE: 'api', CONSOLE_OIDC_ISSUER: 'https://idp.example.com', CONSOLE_OIDC_CLIENT_ID: 'budget-console' }, /JWT_COMPANY_AUDIENCE/],
    ['scopes without openid', { ...company, CONSOLE_OIDC_ISSUER: 'https://idp.example.com', CONSOLE_OIDC_CLIENT_ID: 'budget-console', CONSOLE_OIDC_SCOPES: 'email' }, /openid/],
  ])('refuses %s', (_name, env, message) => {
    expect(() => load(env)).toThrow(ConfigError);
    expect(() => load(env)).toThrow(message);
  });

  it('allows plain http on localhost and access tokens with their own audience', () => {
    const env = { JWT_JWKS_URL: 'http://127.0.0.1:9/jwks', JWT_COMPANY_ISSUERS: 'http://127.0.0.1:9', JWT_COMPANY_AUDIENCE: 'api' };
    const config = load({ ...env, CONSOLE_OIDC_ISSUER: 'http://127.0.0.1:9', CONSOLE_OIDC_CLIENT_ID: 'budget-console', CONSOLE_OIDC_TOKEN: 'access_token' });
    expect(config.consoleOidc?.token).toBe('access_token');
  });
});

// Sign-in with the company's identity provider: OpenID Connect authorization code flow with PKCE (S256), as a
// public client (no secret), through oauth4webapi. The gateway's GET /console/config.json names the IdP; the IdP's
// discovery document names its endpoints. What is pending between the redirect and the callback (PKCE verifier,
// state, nonce) lives in this tab's sessionStorage and is used once. The token the gateway accepts (the ID token by
// default: its audience is the client id) becomes the console's Bearer, like a pasted gateway token.
import * as oauth from 'oauth4webapi';

export interface OidcConfig {
  issuer: string;
  clientId: string;
  scopes: string[];
  token: 'id_token' | 'access_token';
}

const PENDING = 'gateway-console-oidc';

/** The IdP the gateway offers, or null (token sign-in only). */
export async function loadOidcConfig(): Promise<OidcConfig | null> {
  const res = await fetch(new URL('/console/config.json', window.location.origin), { headers: { accept: 'application/json' } });
  if (!res.ok) return null;
  const body = (await res.json()) as { oidc: OidcConfig | null };
  return body.oidc ?? null;
}

/** The callback is the console itself: the IdP returns to /console/?code=…&state=… */
const redirectUri = () => new URL('/console/', window.location.origin).toString();

// The gateway only offers plain http for an IdP on localhost (its configuration refuses anything else).
const options = (issuer: URL) => ({ [oauth.allowInsecureRequests]: issuer.protocol === 'http:' });

async function discover(config: OidcConfig): Promise<oauth.AuthorizationServer> {
  const issuer = new URL(config.issuer);
  const response = await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...options(issuer) });
  return oauth.processDiscoveryResponse(issuer, response);
}

/** Sends the browser to the IdP. */
export async function startOidcSignIn(config: OidcConfig): Promise<void> {
  const as = await discover(config);
  if (!as.authorization_endpoint) throw new Error('the identity provider names no authorization endpoint');
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  sessionStorage.setItem(PENDING, JSON.stringify({ codeVerifier, state, nonce, issuer: config.issuer }));
  const url = new URL(as.authorization_endpoint);
  url.searchParams.set('client_id', config.clientId);
  url.searchParams.set('redirect_uri', redirectUri());
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('scope', config.scopes.join(' '));
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(codeVerifier));
  url.searchParams.set('code_challenge_method', 'S256');
  url.searchParams.set('state', state);
  url.searchParams.set('nonce', nonce);
  window.location.assign(url.toString());
}

/** Whether this load is the IdP's answer (a code or an error, with a state). */
export function isOidcCallback(): boolean {
  const params = new URLSearchParams(window.location.search);
  return params.has('state') && (params.has('code') || params.has('error'));
}

/**
 * Finishes the sign-in from the callback: checks the state, exchanges the code (with the PKCE verifier) at the token
 * endpoint, checks the ID token's issuer, audience, expiry and nonce, and returns the token to send to the gateway.
 * The address bar is cleaned and the pending values are dropped whatever happens. Throws with words on any failure.
 */
export async function completeOidcSignIn(config: OidcConfig): Promise<string> {
  const current = new URL(window.location.href);
  const raw = sessionStorage.getItem(PENDING);
  sessionStorage.removeItem(PENDING);
  history.replaceState(null, '', current.pathname + current.hash);
  if (!raw) throw new Error('No sign-in was started in this tab: start again.');
  const pending = JSON.parse(raw) as { codeVerifier: string; state: string; nonce: string; issuer: string };
  if (pending.issuer !== config.issuer) throw new Error('The identity provider changed during sign-in: start again.');
  const as = await discover(config);
  const client: oauth.Client = { client_id: config.clientId };
  let params: URLSearchParams;
  try {
    params = oauth.validateAuthResponse(as, client, current.searchParams, pending.state);
  } catch (error) {
    if (error instanceof oauth.AuthorizationResponseError) {
      throw new Error(`The identity provider refused the sign-in: ${error.error_description ?? error.error}.`);
    }
    throw new Error('The sign-in answer did not match the sign-in this tab started (state): it was refused.');
  }
  const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri(), pending.codeVerifier, options(new URL(config.issuer)));
  let result: oauth.TokenEndpointResponse;
  try {
    result = await oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: pending.nonce, requireIdToken: true });
  } catch (error) {
    if (error instanceof oauth.ResponseBodyError) throw new Error(`The identity provider refused the code: ${error.error_description ?? error.error}.`);
    throw new Error(`The identity provider's answer was refused (${(error as Error).message}).`);
  }
  const token = config.token === 'id_token' ? result.id_token : result.access_token;
  if (!token) throw new Error(`The identity provider returned no ${config.token}.`);
  return token;
}

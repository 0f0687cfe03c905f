// The budget console (src/console, built by Vite into dist/console/) at /console, and the offline GraphiQL page.
// Static files only: the console speaks the public GraphQL API like any other caller. Hashed assets are cached for
// a year (immutable), index.html is revalidated on every load; every answer carries a Content-Security-Policy that
// allows this origin only (no CDN, no third-party host).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Hono, MiddlewareHandler } from 'hono';
import { serveStatic } from '@hono/node-server/serve-static';
import type { GraphiQLOptions } from 'graphql-yoga';
import type { ObservedEnv } from './observe.js';
import type { ConsoleOidcSettings } from '../config.js';
import { PACKAGE_ROOT } from '../primitives/package-root.js';

/** <root>/dist/console/, from source (tsx) and from the build alike. */
export const CONSOLE_DIR = `${join(PACKAGE_ROOT, 'dist', 'console')}/`;

/** The console's CSP; with OIDC sign-in, the browser may also reach the IdP's origin (discovery, token endpoint), and no other. */
export const consoleCsp = (oidc: ConsoleOidcSettings | null): string =>
  CONSOLE_CSP.replace("connect-src 'self'", oidc ? `connect-src 'self' ${new URL(oidc.issuer).origin}` : "connect-src 'self'");

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  // ECharts and React set element styles at run time.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** GraphiQL runs one inline script (the bundled app) and Monaco's web workers from blob: URLs. */
export const GRAPHIQL_CSP = [
  "default-src 'none'",
  "script-src 'self' 'unsafe-inline' blob:",
  "worker-src 'self' blob:",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

const securityHeaders = (csp: string): Record<string, string> => ({
  'content-security-policy': csp,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
});

/** What the console needs to offer OIDC sign-in (public: no secret; the client is a public one, using PKCE). */
export const consoleConfig = (oidc: ConsoleOidcSettings | null) => ({
  oidc: oidc && { issuer: oidc.issuer, clientId: oidc.clientId, scopes: oidc.scopes, token: oidc.token },
});

export function mountConsole(app: Hono<ObservedEnv>, oidc: ConsoleOidcSettings | null): void {
  const csp = consoleCsp(oidc);
  const headers: MiddlewareHandler<ObservedEnv> = async (c, next) => {
    await next();
    for (const [name, value] of Object.entries(securityHeaders(csp))) c.header(name, value);
    if (c.res.status === 200 || c.res.status === 206 || c.res.status === 304) {
      c.header('cache-control', c.req.path.startsWith('/console/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache');
    }
  };
  app.get('/console', (c) => c.redirect('/console/', 308));
  app.use('/console/*', headers);
  app.get('/console/config.json', (c) => c.json(consoleConfig(oidc)));
  if (!existsSync(CONSOLE_DIR)) {
    app.get('/console/*', (c) => c.text('The console is not built: run `npm run build`.', 503));
    return;
  }
  app.get(
    '/console/*',
    serveStatic({ root: CONSOLE_DIR, precompressed: true, rewriteRequestPath: (path) => path.slice('/console'.length) || '/' }),
  );
  // Unknown paths under /console/ are 404s (the console routes in the fragment: #/unit/…), never index.html.
}

/**
 * GraphiQL from the bundled @graphql-yoga/render-graphiql (no CDN). Reached from the console as
 * `/graphql#token=…`: the fragment never reaches the server; a small script moves the token into GraphiQL's
 * headers and takes it off the address bar. The 9 MB page is built once, on first use.
 */
let graphiqlPage: Promise<(options: GraphiQLOptions) => string> | null = null;

export async function renderGraphiQLOffline(options: GraphiQLOptions): Promise<string> {
  graphiqlPage ??= import('@graphql-yoga/render-graphiql').then((m) => m.renderGraphiQL as (options: GraphiQLOptions) => string);
  const html = (await graphiqlPage)({ ...options, title: 'Gateway GraphiQL' });
  const marker = 'YogaGraphiQL.renderYogaGraphiQL(';
  const at = html.lastIndexOf(marker);
  if (at < 0) throw new Error('unexpected GraphiQL page: no renderYogaGraphiQL call');
  const helper = `function __renderWithToken(root, opts) {
          var token = new URLSearchParams(window.location.hash.slice(1)).get('token');
          if (token) {
            history.replaceState(null, '', window.location.pathname + window.location.search);
            var headers = JSON.stringify({ authorization: 'Bearer ' + token }, null, 2);
            opts = Object.assign({}, opts, { headers: headers, defaultHeaders: headers, shouldPersistHeaders: false });
          }
          return YogaGraphiQL.renderYogaGraphiQL(root, opts);
        }
        `;
  return html.slice(0, at) + helper + '__renderWithToken(' + html.slice(at + marker.length);
}

export const graphiqlSecurityHeaders = () => securityHeaders(GRAPHIQL_CSP);

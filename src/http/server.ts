// The HTTP surface: /graphql (and GraphiQL), /console (the budget console), /v3/* (HeyGen-compatible), /metrics, /webhooks/heygen/:accountId[/callback], /reports/chargeback(.focus).csv, /healthz, /readyz.
// Requests are parsed by @hono/node-server (a malformed URL, host or body is its 400) and routed by Hono; every
// route runs under one error boundary (`onError`), so no request can take the process down, and every request is
// logged, measured and traced by one middleware (src/http/observe.ts).
import { timingSafeEqual } from 'node:crypto';
import type { Server } from 'node:http';
import { createAdaptorServer } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { createGraphQLServer } from './yoga.js';
import { createMetrics } from './metrics.js';
import { handleHeygenWebhook } from './webhooks.js';
import { handleChargebackCsv } from './reports.js';
import { capGraphQLResponse, readBodyCapped } from './limits.js';
import { declaredLength } from '../streams.js';
import { checkReadiness, isDatabaseUnavailable } from '../db/client.js';
import { unavailableResponse } from './unavailable.js';
import { observeRequests, type ObservedEnv } from './observe.js';
import { createV3Front } from './v3/front.js';
import type { Services } from '../app.js';
import { graphiqlSecurityHeaders, mountConsole } from './console.js';

const MAX_WEBHOOK_BYTES = 1 << 20;

function metricsAllowed(token: string | undefined, header: string | undefined): boolean {
  if (!token) return true;
  const given = Buffer.from(header ?? '');
  const expected = Buffer.from(`Bearer ${token}`);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Methods whose requests may carry a body (GET and HEAD never do). */
const bodyMethod = (method: string) => method !== 'GET' && method !== 'HEAD';

// A body refused unread leaves the connection in an unknown state: it is closed after the answer.
const graphqlTooLarge = (c: Context) =>
  c.json({ errors: [{ message: 'request body too large', extensions: { code: 'PAYLOAD_TOO_LARGE' } }] }, 413, { connection: 'close' });

/** The routes, as a fetch handler (also usable without a socket: `app.request(...)`). */
export function createHttpApp(services: Services): Hono<ObservedEnv> {
  const yoga = createGraphQLServer(services);
  const metrics = createMetrics(services);
  const app = new Hono<ObservedEnv>();
  // First, on every route: the request id, the request log line, the latency histogram and the request's span.
  // It also holds the bound on requests in flight: past it, a request is shed (503 OVERLOADED) before anything reads it.
  app.use('*', observeRequests(services));

  app.all('/graphql', async (c) => {
    let request = c.req.raw;
    // Oversized bodies are refused before anything parses them (declared length, or counted while streaming). A body
    // of declared length within the limit is left for Yoga to read: Node's parser delivers exactly that many bytes,
    // and the request @hono/node-server made reads them from the socket, without web streams or a copy.
    const declared = bodyMethod(request.method) ? declaredLength(request.headers.get('content-length')) : 0;
    if (declared !== null && declared > services.config.graphql.maxBodyBytes) return graphqlTooLarge(c);
    if (declared === null && request.body) {
      const body = await readBodyCapped(request, services.config.graphql.maxBodyBytes);
      if (!body) return graphqlTooLarge(c);
      request = new Request(request.url, { method: request.method, headers: request.headers, body: new Uint8Array(body) });
    }
    // handleRequest, not fetch: fetch races the answer against the request's signal, which @hono/node-server ties to
    // the connection, so a caller hanging up would end the request here while its operation ran on, out of the bound
    // on requests in flight and of the request log (test/http-disconnect.test.ts).
    const response = await capGraphQLResponse(await yoga.handleRequest(request, { requestInfo: c.get('requestInfo') }), services.config.graphql.maxResponseBytes);
    // GraphiQL's page (an HTML answer): same-origin only, like the console.
    if (response.headers.get('content-type')?.startsWith('text/html')) {
      const headers = new Headers(response.headers);
      for (const [name, value] of Object.entries(graphiqlSecurityHeaders())) headers.set(name, value);
      return new Response(response.body, { status: response.status, headers });
    }
    return response;
  });

  mountConsole(app, services.config.consoleOidc);

  app.get('/healthz', (c) => c.json({ status: 'ok' }));

  app.get('/readyz', async (c) => {
    // 503 while the database is away (or slower than the check's timeout), 200 again once it answers.
    const checks = await checkReadiness(services.db);
    const ready = checks.database && checks.migrations;
    return c.json({ status: ready ? 'ready' : 'not ready', checks }, ready ? 200 : 503);
  });

  app.get('/metrics', async (c) => {
    if (!metricsAllowed(services.config.metricsToken, c.req.header('authorization'))) return c.json({ error: 'metrics token required' }, 401);
    return c.body(await metrics.metrics(), 200, { 'content-type': metrics.contentType });
  });

  const chargebackCsv = async (c: Context<ObservedEnv>) => {
    const info = c.get('requestInfo');
    const result = await handleChargebackCsv(services, new URL(c.req.url), c.req.header('authorization'), (subject) => (info.subject = subject));
    return c.body(result.body, result.status as 200, result.headers);
  };
  app.get('/reports/chargeback.csv', chargebackCsv);
  app.get('/reports/chargeback.focus.csv', chargebackCsv);

  const webhook = (route: 'endpoint' | 'callback') => async (c: Context<ObservedEnv>) => {
    const bytes = await readBodyCapped(c.req.raw, MAX_WEBHOOK_BYTES);
    if (!bytes) return c.json({ error: 'body too large' }, 413, { connection: 'close' });
    const body = Buffer.from(bytes);
    // Hono decodes the path parameter; a malformed %-escape stays as written and reads as an unknown account.
    const result = await handleHeygenWebhook(services, c.req.param('accountId') ?? '', body, c.req.header(), route);
    return c.json(result.body, result.status as 200);
  };
  app.post('/webhooks/heygen/:accountId', webhook('endpoint'));
  app.post('/webhooks/heygen/:accountId/callback', webhook('callback'));

  // The HeyGen-compatible front (src/http/v3/): its own authentication, error envelope and error boundary.
  app.route('/', createV3Front(services) as unknown as Hono<ObservedEnv>);

  app.notFound((c) => c.json({ error: 'not found' }, 404));
  app.onError((error, c) => {
    if (error instanceof HTTPException) return c.json({ error: error.message }, error.status);
    // The database is away (restart, failover): retryable, and logged by the pool's listener.
    if (isDatabaseUnavailable(error)) return unavailableResponse();
    services.logger.error({ err: error, path: c.req.path, method: c.req.method, requestId: c.get('requestInfo')?.id }, 'unhandled HTTP error');
    return c.json({ error: 'internal error' }, 500);
  });
  return app;
}

export function createHttpServer(services: Services): Server {
  const app = createHttpApp(services);
  const server = createAdaptorServer({
    fetch: app.fetch,
    // Keep Node's own Request/Response classes for the rest of the process (Yoga and fetch use them).
    overrideGlobalObjects: false,
  }) as Server;
  server.keepAliveTimeout = 5_000;
  return server;
}

export function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    });
  });
}

/** Stops accepting connections and waits for in-flight requests to finish. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

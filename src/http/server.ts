// The HTTP surface: /graphql, /metrics, /webhooks/heygen/:accountId[/callback], /reports/chargeback(.focus).csv, /healthz, /readyz.
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createGraphQLServer } from './yoga.js';
import { createMetrics } from './metrics.js';
import { handleHeygenWebhook } from './webhooks.js';
import { handleChargebackCsv } from './reports.js';
import { checkReadiness, isDatabaseUnavailable } from '../db/client.js';
import { sendUnavailable } from './unavailable.js';
import type { Services } from '../app.js';

const MAX_WEBHOOK_BYTES = 1 << 20;

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function metricsAllowed(token: string | undefined, header: string | undefined): boolean {
  if (!token) return true;
  const given = Buffer.from(header ?? '');
  const expected = Buffer.from(`Bearer ${token}`);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function toHeaders(req: IncomingMessage): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
  }
  return headers;
}

async function respondWith(res: ServerResponse, response: Response): Promise<void> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  const body = Buffer.from(await response.arrayBuffer());
  res.writeHead(response.status, { ...headers, 'content-length': String(body.length) });
  res.end(body);
}

export function createHttpServer(services: Services): Server {
  const yoga = createGraphQLServer(services);
  const metrics = createMetrics(services);
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    try {
      if (url.pathname === '/graphql') {
        // Oversized bodies are refused before anything parses them.
        const declared = Number(req.headers['content-length'] ?? 0);
        if (declared > services.config.graphql.maxBodyBytes) return send(res, 413, { errors: [{ message: 'request body too large', extensions: { code: 'PAYLOAD_TOO_LARGE' } }] });
        if (req.method !== 'POST') return void (await yoga(req, res));
        const body = await readBody(req, services.config.graphql.maxBodyBytes);
        if (!body) return send(res, 413, { errors: [{ message: 'request body too large', extensions: { code: 'PAYLOAD_TOO_LARGE' } }] });
        return await respondWith(res, await yoga.fetch(`http://localhost${req.url ?? '/graphql'}`, { method: 'POST', headers: toHeaders(req), body }));
      }
      if (url.pathname === '/healthz' && req.method === 'GET') return send(res, 200, { status: 'ok' });
      if (url.pathname === '/metrics' && req.method === 'GET') {
        if (!metricsAllowed(services.config.metricsToken, req.headers.authorization)) return send(res, 401, { error: 'metrics token required' });
        const text = await metrics.metrics();
        res.writeHead(200, { 'content-type': metrics.contentType });
        return void res.end(text);
      }
      if (url.pathname === '/readyz' && req.method === 'GET') {
        // 503 while the database is away (or slower than the check's timeout), 200 again once it answers.
        const checks = await checkReadiness(services.db);
        const ready = checks.database && checks.migrations;
        return send(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready', checks });
      }
      if ((url.pathname === '/reports/chargeback.csv' || url.pathname === '/reports/chargeback.focus.csv') && req.method === 'GET') {
        const result = await handleChargebackCsv(services, url, req.headers.authorization);
        res.writeHead(result.status, { ...result.headers, 'content-length': Buffer.byteLength(result.body) });
        return void res.end(result.body);
      }
      const webhook = /^\/webhooks\/heygen\/([^/]+)(\/callback)?$/.exec(url.pathname);
      if (webhook && req.method === 'POST') {
        const body = await readBody(req, MAX_WEBHOOK_BYTES);
        if (!body) return send(res, 413, { error: 'body too large' });
        const route = webhook[2] ? 'callback' : 'endpoint';
        const result = await handleHeygenWebhook(services, decodeURIComponent(webhook[1]!), body, req.headers, route);
        return send(res, result.status, result.body);
      }
      send(res, 404, { error: 'not found' });
    } catch (error) {
      if (isDatabaseUnavailable(error)) {
        if (!res.headersSent) sendUnavailable(res);
        else res.end();
        return;
      }
      services.logger.error({ err: error, path: url.pathname }, 'unhandled HTTP error');
      if (!res.headersSent) send(res, 500, { error: 'internal error' });
      else res.end();
    }
  });
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

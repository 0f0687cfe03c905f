// A whole gateway for a test: its own database, a simulator on port 0, the gateway HTTP server on port 0.
import type { Server } from 'node:http';
import { Writable } from 'node:stream';
import { loadConfig, type Config } from '../../src/config.js';
import { createServices, startBackgroundWork, stopServices, type Services } from '../../src/app.js';
import { closeServer, createHttpServer, listen } from '../../src/http/server.js';
import { createLogger } from '../../src/logging.js';
import { startSimulator, type Simulator, type SimulatorConfigPatch } from '../../src/heygen/simulator/server.js';
import { generateMasterKey } from '../../src/secrets/secret-box.js';
import { createTestDatabase, type TestDatabase } from './db.js';

export interface Harness {
  services: Services;
  config: Config;
  sim: Simulator;
  url: string;
  database: TestDatabase;
  adminToken: string;
  /** Every log line written, for secret-leak checks. */
  logs: string[];
  gql<T = any>(query: string, variables?: Record<string, unknown>, token?: string | null): Promise<{ status: number; data: T; errors?: any[] }>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  env?: Record<string, string>;
  sim?: SimulatorConfigPatch;
  simAccounts?: { apiKey: string; concurrencyLimit?: number }[];
  workers?: boolean;
  databaseUrl?: string;
  /** Send per-job callback_url pointing at this gateway, so the simulator delivers webhooks to it. */
  callbacks?: boolean;
  /** Embedded PGlite (in memory) instead of PostgreSQL. */
  embedded?: boolean;
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const database =
    opts.embedded || opts.databaseUrl ? { url: opts.databaseUrl ?? '', name: '', drop: async () => {} } : await createTestDatabase();
  const sim = await startSimulator({
    // Tests serve media on 127.0.0.1: the simulator, like the gateway below, may read it there.
    config: { renderMs: 50, mediaAllowPrivate: true, ...opts.sim },
    accounts: opts.simAccounts ?? [{ apiKey: 'sk_test_primary_key_0001', concurrencyLimit: 100 }],
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(chunk.toString());
      cb();
    },
  });
  const config = loadConfig({
    ...(opts.embedded ? { DATA_DIR: 'memory://' } : { DATABASE_URL: database.url }),
    GATEWAY_MASTER_KEY: generateMasterKey(),
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'debug',
    WORKERS_ENABLED: opts.workers === false ? 'false' : 'true',
    WORKER_INTERVAL_MS: '50',
    POLL_MIN_INTERVAL_MS: '100',
    POLL_MAX_INTERVAL_MS: '400',
    STATUS_READ_MIN_INTERVAL_MS: '100',
    HEYGEN_TIMEOUT_MS: '2000',
    HEYGEN_BASE_URL: sim.url,
    DB_POOL_SIZE: '20',
    NODE_ENV: 'test',
    // Tests make many requests with one token; the limit itself is tested in hardening.test.ts.
    RATE_LIMIT_PER_MINUTE: '0',
    MEDIA_PROBE_ALLOW_PRIVATE: 'true',
    MEDIA_PROBE_TIMEOUT_MS: '3000',
    ...opts.env,
  });
  const services = await createServices(config, { logger: createLogger('debug', sink) });
  const server: Server = createHttpServer(services);
  const port = await listen(server, 0, '127.0.0.1');
  const url = `http://127.0.0.1:${port}`;
  if (opts.callbacks) services.jobDeps.follow.publicUrl = url;
  startBackgroundWork(services);
  const adminToken = await services.tokens.issueAdminToken('test');
  return {
    services,
    config,
    sim,
    url,
    database,
    adminToken,
    logs,
    async gql(query, variables = {}, token = adminToken) {
      const res = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await res.json()) as { data: any; errors?: any[] };
      return { status: res.status, data: body.data, errors: body.errors };
    },
    async close() {
      services.live.close();
      await closeServer(server);
      await stopServices(services);
      await sim.close();
      await database.drop();
    },
  };
}

/** Polls until the predicate holds (no fixed sleeps). */
export async function waitFor<T>(fn: () => Promise<T | null | undefined | false>, timeoutMs = 10_000, stepMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error('waitFor: timed out');
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

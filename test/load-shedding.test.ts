// Load shedding (src/http/overload.ts): a real gateway process offered far more concurrent submissions than it can
// serve (500 at once, against a HeyGen that takes seconds to answer each create) serves HTTP_MAX_IN_FLIGHT of them,
// answers the others at once with the typed 503 (OVERLOADED, Retry-After) having written nothing for them, and its
// resident memory stays bounded by what it serves, not by what it is offered.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startHarness, type Harness } from './support/harness.js';
import { spawnGateway, type GatewayProcess } from './support/processes.js';
import { avatarRequest, createTree, issueServiceToken, SUBMIT, type Tree } from './support/fixtures.js';
import { expectCountersEqualLedger } from './support/invariants.js';
import { queryRows } from '../src/db/client.js';
import { loadConfig } from '../src/config.js';
import { Hono } from 'hono';
import { shedOverload } from '../src/http/overload.js';
import { createGatewayMetrics } from '../src/observability/metrics.js';

const OFFERED = 500;
/** The default of HTTP_MAX_IN_FLIGHT: the process under test runs with it. */
const LIMIT = loadConfig({}).httpMaxInFlight;
/** Each create takes this long at the simulator: the first LIMIT submissions are still in flight when the rest arrive. */
const UPSTREAM_LATENCY_MS = 3000;
// A script near HeyGen's 5,000-character limit, so that every request held in memory costs what a large real one does.
const SCRIPT = 'lorem '.repeat(816).trim();

function rssKb(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
}

interface Answer {
  status: number;
  retryAfter: string | undefined;
  body: any;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: OFFERED });

function submit(gatewayUrl: string, token: string, projectId: string): Promise<Answer> {
  const body = JSON.stringify({
    query: SUBMIT,
    variables: { input: { projectId, kind: 'AVATAR_VIDEO', request: avatarRequest(SCRIPT), idempotencyKey: randomUUID() } },
  });
  return new Promise((resolve, reject) => {
    const req = http.request(
      new URL('/graphql', gatewayUrl),
      { agent, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${token}` } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const retryAfter = res.headers['retry-after'];
          resolve({ status: res.statusCode ?? 0, retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter, body: JSON.parse(Buffer.concat(chunks).toString()) });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function metric(gatewayUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${gatewayUrl}/metrics`)).text();
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return Number(new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
}

describe('load shedding under concurrent submissions beyond capacity', () => {
  let h: Harness;
  let tree: Tree;
  let token: string;
  let gateway: GatewayProcess;

  beforeAll(async () => {
    // The test process does no background work: the child gateway does the submitting.
    h = await startHarness({
      workers: false,
      sim: { latencyMs: UPSTREAM_LATENCY_MS, autoComplete: false },
      simAccounts: [{ apiKey: 'sk_test_primary_key_0001', concurrencyLimit: 10_000 }],
    });
    tree = await createTree(h, { concurrencyLimit: 10_000 });
    token = (await issueServiceToken(h, tree.projectId)).token;
    gateway = await spawnGateway({
      DATABASE_URL: h.config.databaseUrl!,
      GATEWAY_MASTER_KEY: h.config.masterKey!,
      HEYGEN_BASE_URL: h.sim.url,
      WORKERS_ENABLED: 'false',
      WALLET_SYNC_ENABLED: 'false',
      RATE_LIMIT_PER_MINUTE: '0',
      // LOAD_SHEDDING_TEST_LIMIT=0 runs the same burst without the bound (it then fails, printing the RSS it reached).
      ...(process.env.LOAD_SHEDDING_TEST_LIMIT ? { HTTP_MAX_IN_FLIGHT: process.env.LOAD_SHEDDING_TEST_LIMIT } : {}),
    });
  }, 60_000);

  afterAll(async () => {
    agent.destroy();
    await gateway?.stop();
    await h?.close();
  });

  it(`serves ${LIMIT} at once, sheds the rest with a typed 503 that wrote nothing, and RSS stays bounded`, async () => {
    const pid = gateway.child.pid!;
    // Warm: the signing key, the token's check, plans and the JIT, so that RSS at rest is the process's, not its start's.
    for (let i = 0; i < 3; i++) expect((await submit(gateway.url, token, tree.projectId)).body.data.submitJob.__typename).toBe('SubmitJobPayload');
    const restingKb = rssKb(pid);
    let peakKb = restingKb;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peakKb = Math.max(peakKb, rssKb(pid));
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    const answers = await Promise.all(Array.from({ length: OFFERED }, () => submit(gateway.url, token, tree.projectId)));
    sampling = false;
    await sampler;
    peakKb = Math.max(peakKb, rssKb(pid));

    const served = answers.filter((a) => a.status === 200);
    const shed = answers.filter((a) => a.status === 503);
    console.log(`load shedding: ${served.length} served, ${shed.length} shed of ${OFFERED}; RSS ${Math.round(restingKb / 1024)} MB at rest, ${Math.round(peakKb / 1024)} MB at peak`);
    expect(served.length + shed.length).toBe(OFFERED);
    for (const a of served) expect(a.body.data.submitJob.__typename).toBe('SubmitJobPayload');
    // The first LIMIT arrivals are all served (none of them is answered before the simulator's latency has passed).
    expect(served.length).toBeGreaterThanOrEqual(LIMIT);
    expect(shed.length).toBeGreaterThan(0);
    for (const a of shed) {
      expect(a.retryAfter).toBe('1');
      expect(a.body).toEqual({ errors: [{ message: expect.stringMatching(/retry/), extensions: { code: 'OVERLOADED', retryAfterSeconds: 1 } }] });
    }
    expect(await metric(gateway.url, 'gateway_http_requests_shed_total')).toBe(shed.length);
    expect(await metric(gateway.url, 'gateway_http_requests_in_flight')).toBe(0);
    // Shed requests are measured (and logged) under the route they were sent to.
    expect(await metric(gateway.url, 'gateway_http_request_duration_seconds_count{method="POST",route="/graphql",status="503"}')).toBe(shed.length);

    // A shed submission wrote nothing: one job per served one (and the warm-up's), the ledger equal to the counters.
    const projectId = decodeGlobalID(tree.projectId).id;
    const [row] = await queryRows<{ n: number }>(h.services.db, sql`select count(*)::int as n from jobs where project_id = ${projectId}`);
    expect(row!.n).toBe(served.length + 3);
    await expectCountersEqualLedger(h.services.db);

    // Memory follows what is served: LIMIT requests in flight, not OFFERED.
    expect(peakKb - restingKb).toBeLessThan(60 * 1024);

    // The process serves again once the burst is over.
    expect((await submit(gateway.url, token, tree.projectId)).body.data.submitJob.__typename).toBe('SubmitJobPayload');
  }, 120_000);
});

describe('the shed answer, per surface', () => {
  it('is the typed 503 of each surface; probes are never shed; a slot is given back when its answer is ready', async () => {
    const metrics = createGatewayMetrics();
    const app = new Hono();
    app.use('*', shedOverload(1, metrics));
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    app.all('*', async (c) => {
      if (c.req.header('x-hold')) await held;
      return c.json({ ok: true });
    });
    const first = app.request('/graphql', { method: 'POST', headers: { 'x-hold': '1' } });
    await new Promise((r) => setTimeout(r, 10));
    expect((await metrics.httpRequestsInFlight.get()).values[0]!.value).toBe(1);

    const graphql = await app.request('/graphql', { method: 'POST' });
    expect(graphql.status).toBe(503);
    expect(graphql.headers.get('retry-after')).toBe('1');
    expect(await graphql.json()).toMatchObject({ errors: [{ extensions: { code: 'OVERLOADED', retryAfterSeconds: 1 } }] });
    const v3 = await app.request('/v3/videos', { method: 'POST' });
    expect(v3.status).toBe(503);
    expect(v3.headers.get('retry-after')).toBe('1');
    expect(await v3.json()).toMatchObject({ error: { code: 'service_unavailable', param: null, doc_url: null } });
    const webhook = await app.request('/webhooks/heygen/x', { method: 'POST' });
    expect(webhook.status).toBe(503);
    expect(await webhook.json()).toMatchObject({ code: 'OVERLOADED', retryAfterSeconds: 1 });
    for (const probe of ['/healthz', '/readyz', '/metrics']) expect((await app.request(probe)).status).toBe(200);
    expect((await metrics.httpRequestsShed.get()).values[0]!.value).toBe(3);

    release();
    expect((await first).status).toBe(200);
    expect((await metrics.httpRequestsInFlight.get()).values[0]!.value).toBe(0);
    expect((await app.request('/graphql', { method: 'POST' })).status).toBe(200);
  });

  it("HeyGen's webhooks are shed once half the bound is in flight; callers' requests keep the other half", async () => {
    const metrics = createGatewayMetrics();
    const app = new Hono();
    app.use('*', shedOverload(4, metrics));
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    app.all('*', async (c) => {
      await held;
      return c.json({ ok: true });
    });
    const hooks = [app.request('/webhooks/heygen/x', { method: 'POST' }), app.request('/webhooks/heygen/x/callback', { method: 'POST' })];
    await new Promise((r) => setTimeout(r, 10));
    // Two in flight: a third webhook is shed, while callers still get the two slots left.
    expect((await app.request('/webhooks/heygen/x', { method: 'POST' })).status).toBe(503);
    const callers = [app.request('/graphql', { method: 'POST' }), app.request('/v3/videos', { method: 'POST' })];
    await new Promise((r) => setTimeout(r, 10));
    expect((await metrics.httpRequestsInFlight.get()).values[0]!.value).toBe(4);
    expect((await app.request('/graphql', { method: 'POST' })).status).toBe(503);
    release();
    expect((await Promise.all([...hooks, ...callers])).map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect((await metrics.httpRequestsShed.get()).values[0]!.value).toBe(2);
  });

  it('HTTP_MAX_IN_FLIGHT: 128 by default, 0 turns the bound off, no negative', async () => {
    expect(loadConfig({}).httpMaxInFlight).toBe(128);
    expect(loadConfig({ HTTP_MAX_IN_FLIGHT: '0' }).httpMaxInFlight).toBe(0);
    expect(() => loadConfig({ HTTP_MAX_IN_FLIGHT: '-1' })).toThrow(/HTTP_MAX_IN_FLIGHT/);
    const metrics = createGatewayMetrics();
    const app = new Hono();
    app.use('*', shedOverload(0, metrics));
    app.all('*', (c) => c.json({ ok: true }));
    const answers = await Promise.all(Array.from({ length: 50 }, () => app.request('/graphql', { method: 'POST' })));
    expect(answers.every((a) => a.status === 200)).toBe(true);
  });
});

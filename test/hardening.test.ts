// Hostile queries are refused quickly with a clear error, and the process stays healthy.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness.js';
import { createTree } from './support/fixtures.js';
import { loadConfig } from '../src/config.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ workers: false, env: { INTROSPECTION: 'false', RATE_LIMIT_PER_MINUTE: '400', METRICS_TOKEN: 'metrics-secret-1' } });
  await createTree(h);
});
afterAll(async () => h?.close());

async function post(body: string, token: string | null = h.adminToken) {
  const started = Date.now();
  const res = await fetch(`${h.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body,
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null, ms: Date.now() - started, headers: res.headers };
}

async function expectHealthy() {
  const res = await fetch(`${h.url}/healthz`);
  expect(res.status).toBe(200);
}

function nested(depth: number): string {
  let q = 'id';
  for (let i = 0; i < depth; i++) q = `parent { ${q} }`;
  return `{ orgUnits(first: 1) { edges { node { ${q} } } } }`;
}

describe('hostile queries', () => {
  it('a deeply nested query is refused by depth (and a very deep one by cost as well)', async () => {
    const r = await post(JSON.stringify({ query: nested(14) }));
    expect(r.json.data).toBeUndefined();
    expect(r.json.errors[0].message).toMatch(/depth/i);
    const extreme = await post(JSON.stringify({ query: nested(200) }));
    expect(extreme.json.data).toBeUndefined();
    expect(extreme.json.errors[0].message).toMatch(/depth|cost/i);
    expect(extreme.ms).toBeLessThan(2000);
    await expectHealthy();
  });

  it('a query within limits still works', async () => {
    const r = await post(JSON.stringify({ query: nested(3) }));
    expect(r.json.errors).toBeUndefined();
  });

  it('a wide alias fan-out is refused', async () => {
    const aliases = Array.from({ length: 30 }, (_, i) => `a${i}: viewer { subject }`).join(' ');
    const r = await post(JSON.stringify({ query: `{ ${aliases} }` }));
    expect(r.json.data).toBeUndefined();
    expect(r.json.errors[0].message).toMatch(/alias/i);
    const huge = Array.from({ length: 5000 }, (_, i) => `a${i}: viewer { subject }`).join(' ');
    const wide = await post(JSON.stringify({ query: `{ ${huge} }` }));
    expect(wide.json.data).toBeUndefined();
    expect(wide.json.errors[0].message).toMatch(/alias|token/i);
    await expectHealthy();
  });

  it('a huge list request is refused or capped', async () => {
    const r = await post(JSON.stringify({ query: '{ orgUnits(first: 1000000) { edges { node { id } } } }' }));
    // Connections cap pages at 500: asking for more is an error, never a million-row read.
    expect(r.json.errors?.[0]?.message ?? '').toMatch(/500|first/i);
    await expectHealthy();
  });

  it('fragment cycles are refused by validation', async () => {
    const query = 'query { viewer { ...A } } fragment A on Viewer { ...B } fragment B on Viewer { ...A }';
    const r = await post(JSON.stringify({ query }));
    expect(r.json.data).toBeUndefined();
    expect(r.json.errors.map((e: { message: string }) => e.message).join(' ')).toMatch(/within itself/i);
    await expectHealthy();
  });

  it('too many tokens are refused', async () => {
    const fields = Array.from({ length: 4000 }, () => 'subject').join(' ');
    const r = await post(JSON.stringify({ query: `{ viewer { ${fields} } }` }));
    expect(r.json.data).toBeUndefined();
    expect(r.json.errors[0].message).toMatch(/token/i);
    await expectHealthy();
  });

  it('an oversized body is refused with 413 before it is parsed', async () => {
    const r = await post(JSON.stringify({ query: '{ viewer { subject } }', variables: { pad: 'x'.repeat(400 * 1024) } }));
    expect(r.status).toBe(413);
    expect(r.json.errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
    await expectHealthy();
  });

  it('the body cap is the only one (Yoga has none of its own), so it cannot be set above 25 MiB', () => {
    expect(loadConfig({ GRAPHQL_MAX_BODY_BYTES: String(25 * 1024 * 1024) }).graphql.maxBodyBytes).toBe(25 * 1024 * 1024);
    expect(() => loadConfig({ GRAPHQL_MAX_BODY_BYTES: String(25 * 1024 * 1024 + 1) })).toThrow(/GRAPHQL_MAX_BODY_BYTES/);
  });

  it('a body sent without a length (chunked) is counted while read: refused with 413 past the limit, served within it', async () => {
    const chunked = async (body: string) => {
      const bytes = new TextEncoder().encode(body);
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let at = 0; at < bytes.length; at += 16 * 1024) controller.enqueue(bytes.subarray(at, at + 16 * 1024));
          controller.close();
        },
      });
      const res = await fetch(`${h.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${h.adminToken}` },
        body: stream,
        duplex: 'half',
      } as RequestInit);
      return { status: res.status, json: (await res.json()) as any };
    };
    const big = await chunked(JSON.stringify({ query: '{ viewer { subject } }', variables: { pad: 'x'.repeat(400 * 1024) } }));
    expect(big.status).toBe(413);
    expect(big.json.errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
    const small = await chunked(JSON.stringify({ query: '{ viewer { subject } }' }));
    expect(small.status).toBe(200);
    expect(small.json.data.viewer.subject).toEqual(expect.any(String));
    await expectHealthy();
  });

  it('batched requests are not accepted', async () => {
    const r = await post(JSON.stringify([{ query: '{ viewer { subject } }' }, { query: '{ viewer { subject } }' }]));
    expect(r.status).toBeGreaterThanOrEqual(400);
    await expectHealthy();
  });

  it('introspection is off when configured off, and refused errors do not suggest field names', async () => {
    const r = await post(JSON.stringify({ query: '{ __schema { types { name } } }' }));
    expect(r.json.errors[0].extensions.code).toBe('INTROSPECTION_DISABLED');
    const typo = await post(JSON.stringify({ query: '{ viewr { subject } }' }));
    expect(typo.json.errors[0].message).not.toMatch(/Did you mean/);
  });
});

describe('metrics', () => {
  it('/metrics needs the metrics token when one is configured', async () => {
    expect((await fetch(`${h.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${h.url}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    const ok = await fetch(`${h.url}/metrics`, { headers: { authorization: 'Bearer metrics-secret-1' } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('gateway_jobs');
  });
});

describe('per-caller rate limit', () => {
  it('past the limit a caller gets HTTP 429 with Retry-After, others are unaffected', async () => {
    const token = await h.services.tokens.issueAdminToken('noisy');
    const statuses: number[] = [];
    for (let i = 0; i < 410; i++) statuses.push((await post(JSON.stringify({ query: '{ viewer { subject } }' }), token)).status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(400);
    const limited = await post(JSON.stringify({ query: '{ viewer { subject } }' }), token);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.json.errors[0].extensions.code).toBe('RATE_LIMITED');
    const other = await post(JSON.stringify({ query: '{ viewer { subject } }' }));
    expect(other.status).toBe(200);
    await expectHealthy();
  });
});

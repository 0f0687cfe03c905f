// Hostile input against a running gateway, as an attacker would send it: the known corpus of issue 8 and a generated
// one (raw request lines and headers over TCP, URL escapes, JSON bodies, GraphQL documents and variables). After
// every case: no 5xx, no INTERNAL_SERVER_ERROR; after all of them: the process still answers, nothing was logged at
// error level, no log line carries SQL, and no refused write left a row behind.
import { connect } from 'node:net';
import { sql } from 'drizzle-orm';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryRows } from '../src/db/client.js';
import { startHarness, type Harness } from './support/harness.js';
import { createTree, issueServiceToken, SUBMIT, avatarRequest, type Tree } from './support/fixtures.js';

let h: Harness;
let tree: Tree;
let service: string;
let port: number;
let countsBefore: Record<string, number>;
const statuses: { label: string; status: number }[] = [];
const internal: string[] = [];

const TABLES = ['accounts', 'org_units', 'budgets', 'jobs', 'job_items', 'ledger_entries', 'audit_events', 'service_tokens', 'role_mappings'];

async function rowCounts(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const table of TABLES) {
    const [row] = await queryRows<{ n: number }>(h.services.db, sql`select count(*)::int as n from ${sql.identifier(table)}`);
    out[table] = Number(row!.n);
  }
  return out;
}

beforeAll(async () => {
  h = await startHarness({ workers: false });
  tree = await createTree(h);
  service = (await issueServiceToken(h, tree.projectId)).token;
  port = Number(new URL(h.url).port);
  countsBefore = await rowCounts();
}, 60_000);
afterAll(async () => h?.close());

/** Sends bytes on a fresh TCP connection, half-closes, and returns the status code of the answer (0: none). */
function raw(bytes: string | Buffer): Promise<number> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(Buffer.concat(chunks).toString('latin1'));
      resolve(match ? Number(match[1]) : 0);
    };
    const timer = setTimeout(done, 3000);
    socket.on('data', (c) => {
      chunks.push(c);
      // One answer is enough: a keep-alive connection would otherwise wait for the timeout.
      if (/\r\n\r\n/.test(Buffer.concat(chunks).toString('latin1'))) setTimeout(done, 20);
    });
    socket.on('error', done);
    socket.on('close', done);
    socket.write(bytes, () => socket.end());
  });
}

async function record(label: string, status: number, body = ''): Promise<void> {
  statuses.push({ label, status });
  if (body.includes('INTERNAL_SERVER_ERROR')) internal.push(`${label}: ${body.slice(0, 300)}`);
}

async function http(label: string, path: string, init: RequestInit = {}): Promise<{ status: number; text: string }> {
  const res = await fetch(`${h.url}${path}`, init);
  const text = await res.text();
  await record(label, res.status, text);
  return { status: res.status, text };
}

async function gql(label: string, body: unknown, token: string | null = h.adminToken) {
  const r = await http(label, '/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  let json: any = null;
  try {
    json = JSON.parse(r.text);
  } catch {
    /* not JSON: checked by status */
  }
  return { ...r, json };
}

const globalId = (type: string, id: string) => Buffer.from(`${type}:${id}`).toString('base64');

function nestedJson(depth: number): unknown {
  let v: unknown = 'x';
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
}

describe('the hostile corpus of issue 8', () => {
  it('malformed request lines, URLs and headers get a 4xx (or no answer), never a crash', async () => {
    const cases: [string, string][] = [
      ['bracket in path', 'GET //[ HTTP/1.1\r\nHost: x\r\n\r\n'],
      ['bracket graphql', 'GET /graphql/[ HTTP/1.1\r\nHost: x\r\n\r\n'],
      ['absolute URL, bad host', 'GET http://[::1/graphql HTTP/1.1\r\nHost: x\r\n\r\n'],
      ['absolute URL, other scheme', 'GET ftp://x/healthz HTTP/1.1\r\nHost: x\r\n\r\n'],
      ['no path', 'GET  HTTP/1.1\r\nHost: x\r\n\r\n'],
      ['asterisk', 'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n'],
      ['bad escape', 'GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n'],
      ['bad escape, webhook', 'POST /webhooks/heygen/%E0%A4%A/callback HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}'],
      ['bad escape, webhook endpoint', 'POST /webhooks/heygen/%zz HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}'],
      ['backslash', 'GET /\\healthz HTTP/1.1\r\nHost: x\r\n\r\n'],
      ['bad host', 'GET /healthz HTTP/1.1\r\nHost: a b@c:99999\r\n\r\n'],
      ['no host, 1.0', 'GET /healthz HTTP/1.0\r\n\r\n'],
      ['header without colon', 'GET /healthz HTTP/1.1\r\nHost: x\r\nnonsense\r\n\r\n'],
      ['NUL in header', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\u0000b\r\n\r\n'],
      ['huge header', `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`],
      ['negative length', 'POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n'],
      ['text length', 'POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'],
      ['length and chunked', 'POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
      ['bad chunk', 'POST /graphql HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'],
      ['huge declared body', `POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${1 << 30}\r\n\r\n{`],
      ['short body', 'POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"query":'],
      ['binary request line', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]).toString('latin1')],
      ['HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
      ['unknown method', 'BREW /graphql HTTP/1.1\r\nHost: x\r\n\r\n'],
      ['CONNECT', 'CONNECT 127.0.0.1:5432 HTTP/1.1\r\nHost: x\r\n\r\n'],
    ];
    for (const [label, bytes] of cases) {
      const status = await raw(bytes);
      await record(`raw: ${label}`, status);
      expect(status === 0 || (status >= 200 && status < 500), `${label} → ${status}`).toBe(true);
    }
    // The request line that used to kill the process is now an ordinary unknown path.
    expect(await raw('GET //[ HTTP/1.1\r\nHost: x\r\n\r\n')).toBe(404);
    expect((await fetch(`${h.url}/healthz`)).status).toBe(200);
  });

  it('bad %-escapes in webhook paths are an unknown account (404), not a 500', async () => {
    for (const path of ['/webhooks/heygen/%zz', '/webhooks/heygen/%E0%A4%A/callback', '/webhooks/heygen/%/callback', '/webhooks/heygen/%00']) {
      const r = await http(`webhook ${path}`, path, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
      expect(r.status, path).toBe(404);
    }
    const r = await http('report with bad escapes', '/reports/chargeback.csv?account=%zz&period=%E0', { headers: { authorization: `Bearer ${h.adminToken}` } });
    expect(r.status).toBe(400);
  });

  it('ids, cursors, dates, numbers, strings and depth the database cannot take are typed errors', async () => {
    const node = async (id: string) => (await gql(`node ${id}`, { query: 'query($id: ID!) { node(id: $id) { id } }', variables: { id } })).json;
    for (const id of [globalId('Account', 'not-a-uuid'), globalId('OrgUnit', "1' or 1=1"), globalId('Job', ''), '!!!', '', globalId('Nope', tree.projectId)]) {
      const r = await node(id);
      // Unknown or malformed ids read as nothing, exactly like ids that do not exist.
      expect(r.errors ?? [], id).toEqual([]);
      expect(r.data.node).toBeNull();
    }

    const cursor = async (after: string, field = 'jobs') =>
      (await gql(`cursor ${after}`, { query: `query($a: String) { ${field}(after: $a) { edges { cursor } } }`, variables: { a: after } })).json;
    for (const after of [
      `-100000-01-01T00:00:00.000Z|${tree.projectId.length ? '00000000-0000-4000-8000-000000000000' : ''}`,
      '+275760-09-13T00:00:00.000Z|00000000-0000-4000-8000-000000000000',
      'garbage',
      '2026-01-01T00:00:00.000Z|not-a-uuid',
    ]) {
      const r = await cursor(after);
      expect(r.errors?.[0]?.extensions?.code, after).toBe('VALIDATION_FAILED');
    }
    expect((await cursor('99999999999999999999', 'auditEvents')).errors[0].extensions.code).toBe('VALIDATION_FAILED');
    expect((await cursor('9999999999999999999', 'auditEvents')).errors[0].extensions.code).toBe('VALIDATION_FAILED');

    const from = await gql('date far', { query: 'query($f: DateTime) { auditEvents(filter: { from: $f }) { edges { cursor } } }', variables: { f: '+100000-01-01T00:00:00Z' } });
    expect(from.json.errors[0].message).toMatch(/DateTime must be an ISO 8601 string for a year from 1 to 9999/);

    for (const [name, value, code] of [
      ['first', 501, 'VALIDATION_FAILED'],
      ['first', -1, 'VALIDATION_FAILED'],
      ['last', -5, 'VALIDATION_FAILED'],
    ] as const) {
      const r = await gql(`page ${name} ${value}`, { query: `query($n: Int) { orgUnits(${name}: $n) { edges { cursor } } }`, variables: { n: value } });
      expect(r.json.errors?.[0]?.extensions?.code, `${name} ${value}: ${r.text}`).toBe(code);
    }
    // Not an Int at all: graphql-js' own coercion error, without the value.
    const huge = await gql('page huge', { query: 'query($n: Int) { orgUnits(first: $n) { edges { cursor } } }', variables: { n: 99999999999 } });
    expect(huge.json.errors[0].message).toBe('Variable "$n" got an invalid value; Int cannot represent non 32-bit signed integer value.');
    const atMax = await gql('page 500', { query: 'query($n: Int) { orgUnits(first: $n) { edges { cursor } } }', variables: { n: 500 } });
    expect(atMax.json.errors).toBeUndefined();

    const budget = `mutation($input: SetBudgetInput!) { setBudget(input: $input) { __typename ... on Error { code message } } }`;
    for (const input of [
      { orgUnitId: tree.teamId, accountId: tree.accountId, window: 'MONTHLY', limitCreditSeconds: '999999999999999' },
      { orgUnitId: tree.teamId, accountId: tree.accountId, window: 'MONTHLY', limitUsd: '999999999999.999999999999' },
    ]) {
      const r = await gql('huge budget', { query: budget, variables: { input } });
      expect(r.json.data.setBudget.__typename, JSON.stringify(r.json)).toBe('ValidationError');
    }
    // An empty account id is an account that does not exist, not "all accounts".
    const empty = await gql('empty account id', {
      query: budget,
      variables: { input: { orgUnitId: tree.teamId, accountId: '', window: 'MONTHLY', limitCreditSeconds: '10' } },
    });
    expect(empty.json.data.setBudget.__typename).toBe('NotFoundError');

    const submit = async (request: unknown, label: string) =>
      (await gql(label, { query: SUBMIT, variables: { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request } } }, service)).json;
    const surrogate = await submit(avatarRequest('hello \ud800 world'), 'lone surrogate');
    expect(surrogate.errors?.[0]?.extensions?.code ?? surrogate.data.submitJob.__typename).toMatch(/BAD_USER_INPUT|ValidationError/);
    const surrogateKey = await submit({ ...avatarRequest(), ['k\udc00']: 1 }, 'lone surrogate key');
    expect(surrogateKey.errors?.[0]?.extensions?.code ?? surrogateKey.data.submitJob.__typename).toMatch(/BAD_USER_INPUT|ValidationError/);
    const nul = await submit(avatarRequest('a\u0000b'), 'NUL');
    expect(nul.data.submitJob.__typename).toBe('ValidationError');
    const deep = await submit({ ...avatarRequest(), extra: nestedJson(3000) }, 'nested 3000');
    expect(deep.errors?.[0]?.extensions?.code ?? deep.data.submitJob.__typename).toMatch(/BAD_USER_INPUT|ValidationError/);
    // Just past the configured depth (MAX_JSON_DEPTH, 32) inside the request is the domain's ValidationError.
    const justPast = await submit({ ...avatarRequest(), extra: nestedJson(32) }, 'nested 33');
    expect(justPast.data.submitJob.__typename).toBe('ValidationError');
    expect(justPast.data.submitJob.field).toMatch(/^request\.extra/);

    const unit = `mutation($input: CreateOrgUnitInput!) { createOrgUnit(input: $input) { __typename ... on Error { code } } }`;
    const badName = await gql('unit name surrogate', { query: unit, variables: { input: { kind: 'TEAM', name: 'x\udbff', parentId: tree.deptId } } });
    expect(badName.json.errors?.[0]?.extensions?.code ?? badName.json.data.createOrgUnit.__typename).toMatch(/BAD_USER_INPUT|ValidationError/);
    const literal = await gql('literal surrogate', { query: `mutation { createOrgUnit(input: { kind: TEAM, name: "x\\udbff", parentId: "${tree.deptId}" }) { __typename } }` });
    expect(literal.status).toBeLessThan(500);
  });

  it('answers larger than GRAPHQL_MAX_RESPONSE_BYTES are a typed error (checked on a small limit)', async () => {
    const { capGraphQLResponse } = await import('../src/http/limits.js');
    const big = new Response(JSON.stringify({ data: { x: 'y'.repeat(200_000) } }), { headers: { 'content-type': 'application/json' } });
    const capped = await capGraphQLResponse(big, 100_000);
    const json = (await capped.json()) as any;
    expect(json.errors[0].extensions.code).toBe('RESPONSE_TOO_LARGE');
    const small = await capGraphQLResponse(new Response('{"data":{}}', { headers: { 'content-type': 'application/json' } }), 100_000);
    expect(await small.text()).toBe('{"data":{}}');
  });
});

// ---- the generated corpus ----

const METHODS = ['GET', 'POST', 'PUT', 'HEAD', 'OPTIONS', 'DELETE', 'PATCH', 'G\u00e9T', '', 'GET /', 'POST\t'];
const PATHS = ['/graphql', '/healthz', '/readyz', '/metrics', '/reports/chargeback.csv', '/webhooks/heygen/', '/', '//', ''];
const urlChars = fc.constantFrom('%', '%2', '%zz', '%00', '%E0%A4', '%C0%AF', '[', ']', '\\', '..', '/', '?', '#', '@', ':', ' ', '\t', '\u00ff', 'a', '0', '%25', '%2F', '\u0000', '\r', '\n');
const pathArb = fc.tuple(fc.constantFrom(...PATHS), fc.array(urlChars, { maxLength: 12 })).map(([p, parts]) => p + parts.join(''));
const headerName = fc.oneof(fc.constantFrom('Host', 'Content-Length', 'Transfer-Encoding', 'Authorization', 'Content-Type', 'X-Request-Id', 'Expect', 'Connection'), fc.string({ maxLength: 12 }));
const headerValue = fc.oneof(
  fc.constantFrom('-1', '0', '99999999999999999999', 'chunked', 'chunked, gzip', 'Bearer', 'Bearer x.y.z', '100-continue', 'close', 'x', '\u00e9'),
  fc.string({ maxLength: 40, unit: 'binary-ascii' }),
);
const requestArb = fc
  .record({
    method: fc.constantFrom(...METHODS),
    path: pathArb,
    version: fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/9.9', 'HTTP/1.1 x', ''),
    headers: fc.array(fc.tuple(headerName, headerValue), { maxLength: 5 }),
    host: fc.boolean(),
    body: fc.oneof(fc.constant(''), fc.json({ maxDepth: 3 }), fc.string({ maxLength: 60, unit: 'binary' })),
  })
  .map(({ method, path, version, headers, host, body }) => {
    const lines = [`${method} ${path} ${version}`];
    if (host) lines.push('Host: 127.0.0.1');
    for (const [n, v] of headers) lines.push(`${n}: ${v}`);
    return `${lines.join('\r\n')}\r\n\r\n${body}`;
  });

/** JSON values with hostile strings: lone surrogates, NUL, huge numbers, deep nesting. */
const hostileString = fc.oneof(
  fc.string({ maxLength: 30, unit: 'binary' }),
  fc.constantFrom('\ud800', 'a\udc00b', '\u0000', "'; drop table jobs; --", '%zz', '', ' ', '9'.repeat(40), '-1', '1e400', 'NaN', '+275760-09-13T00:00:00.000Z|x'),
);
const hostileJson: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    hostileString,
    fc.integer(),
    fc.constantFrom(Number.MAX_SAFE_INTEGER, -1, 0, 1e300, 2 ** 63),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(hostileString, tie('value'), { maxKeys: 3 }),
  ),
})).value;

const ID_FIELDS = ['projectId', 'orgUnitId', 'accountId', 'parentId', 'id', 'jobId'];
const idArb = fc.oneof(
  hostileString,
  fc.constantFrom('OrgUnit', 'Account', 'Job', 'Budget', 'ServiceToken', 'RoleMapping', 'Nope').chain((t) => hostileString.map((id) => globalId(t, id))),
);

/** GraphQL operations whose ids are never real: every write among them must be refused. */
const operationArb = fc.oneof(
  idArb.map((id) => ({ query: 'query($id: ID!) { node(id: $id) { id __typename } }', variables: { id } })),
  fc.record({ first: fc.oneof(fc.integer(), fc.constant(null)), after: fc.oneof(hostileString, fc.constant(null)) }).chain((v) =>
    fc.constantFrom('jobs', 'orgUnits', 'auditEvents', 'serviceTokens').map((field) => ({
      query: `query($first: Int, $after: String) { ${field}(first: $first, after: $after) { edges { cursor } pageInfo { hasNextPage } } }`,
      variables: v,
    })),
  ),
  fc.record({ projectId: idArb, request: hostileJson, idempotencyKey: fc.oneof(hostileString, fc.constant(null)), estimatedSeconds: fc.oneof(hostileString, fc.constant(null)) }).map((input) => ({
    query: SUBMIT,
    variables: { input: { ...input, kind: 'AVATAR_VIDEO' } },
  })),
  fc.record({ orgUnitId: idArb, accountId: fc.oneof(idArb, fc.constant(null)), limitCreditSeconds: hostileString }).map((input) => ({
    query: 'mutation($input: SetBudgetInput!) { setBudget(input: $input) { __typename } }',
    variables: { input: { ...input, window: 'MONTHLY' } },
  })),
  fc.record({ kind: fc.constantFrom('TEAM', 'PROJECT'), name: hostileString, parentId: idArb }).map((input) => ({
    query: 'mutation($input: CreateOrgUnitInput!) { createOrgUnit(input: $input) { __typename } }',
    variables: { input },
  })),
  fc.record({ id: idArb, period: hostileString }).map((v) => ({
    query: 'query($id: ID!, $period: String!) { chargebackReport(accountId: $id, period: $period) { invoiceTotalUsd } }',
    variables: v,
  })),
  // Variables of the wrong type entirely, and documents that are not GraphQL.
  fc.record({ query: fc.constantFrom(SUBMIT, '{ viewer { subject } }', 'query($id: ID!) { node(id: $id) { id } }'), variables: hostileJson }),
  fc.record({ query: fc.oneof(hostileString, fc.constantFrom('{', '{ node(id: "\\u0000") { id } }', 'query { jobs(first: 1e400) { edges { cursor } } }', '{ __typename @skip }', `{ orgUnits(first: ${'['.repeat(200)}) }`)), variables: fc.constant({}) }),
);

describe('a generated corpus', () => {
  it('random request lines and headers over raw TCP', async () => {
    await fc.assert(
      fc.asyncProperty(requestArb, async (bytes) => {
        const status = await raw(bytes);
        await record(`raw: ${JSON.stringify(bytes).slice(0, 200)}`, status);
        return status < 500;
      }),
      { numRuns: 150 },
    );
  }, 120_000);

  it('random URL escapes in webhook paths and report queries', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(urlChars, { minLength: 1, maxLength: 10 }), fc.boolean(), async (parts, callback) => {
        const tail = parts.join('').replace(/[\r\n\t \u0000#?]/g, '');
        const path = `/webhooks/heygen/${tail}${callback ? '/callback' : ''}`;
        const status = await raw(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`);
        await record(`escape ${path}`, status);
        const report = await raw(`GET /reports/chargeback.csv?account=${tail}&period=${tail} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${h.adminToken}\r\n\r\n`);
        await record(`report ${tail}`, report);
        return status < 500 && report < 500;
      }),
      { numRuns: 60 },
    );
  }, 60_000);

  it('random JSON bodies to /graphql and the webhooks', async () => {
    await fc.assert(
      fc.asyncProperty(hostileJson, fc.constantFrom('/graphql', `/webhooks/heygen/${tree.accountId}`, `/webhooks/heygen/${tree.accountId}/callback`), async (body, path) => {
        const text = JSON.stringify(body) ?? 'null';
        const r = await http(`json ${path}`, path, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${h.adminToken}` },
          body: text,
        });
        return r.status < 500 && !r.text.includes('INTERNAL_SERVER_ERROR');
      }),
      { numRuns: 80 },
    );
  }, 60_000);

  it('random GraphQL documents and variables, as ADMIN and as a SERVICE token', async () => {
    await fc.assert(
      fc.asyncProperty(operationArb, fc.boolean(), async (op, asAdmin) => {
        const r = await gql(`gql ${op.query.slice(0, 60)}`, op, asAdmin ? h.adminToken : service);
        return r.status < 500 && !r.text.includes('INTERNAL_SERVER_ERROR');
      }),
      { numRuns: 200 },
    );
  }, 120_000);
});

describe('after the corpus', () => {
  it('the process still answers, no 5xx, no INTERNAL_SERVER_ERROR, no error log, no SQL in logs, no partial writes', async () => {
    expect((await fetch(`${h.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${h.url}/readyz`)).status).toBe(200);
    expect(statuses.length).toBeGreaterThan(500);
    expect(statuses.filter((s) => s.status >= 500)).toEqual([]);
    expect(internal).toEqual([]);
    const lines = h.logs.flatMap((chunk) => chunk.split('\n')).filter(Boolean);
    expect(lines.filter((l) => JSON.parse(l).level >= 50)).toEqual([]);
    const sqlText = /Failed query|params:|\b(select|insert|update|delete)\b[^"]{0,200}\b(from|into|set|where)\b/i;
    expect(lines.filter((l) => sqlText.test(l))).toEqual([]);
    expect(await rowCounts()).toEqual(countsBefore);
  });
});

// No secret survives a cut: HeyGen keys, webhook secrets and tokens placed at every offset around every truncation
// (the 300-character upstream error text, the 1,000-character failure message) never reach a response, a log line,
// job.failure_message or an audit row, whole or in part.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryRows } from '../src/db/client.js';
import { MIN_FRAGMENT, redactAndTruncate, redactSecrets } from '../src/secrets/redact.js';
import { safeMessage } from '../src/http/yoga.js';
import { startHarness, type Harness } from './support/harness.js';
import { avatarRequest, createUnit, issueServiceToken, mustMutate, SUBMIT, TIER_5K, JOB_QUERY } from './support/fixtures.js';

const API_KEY = 'hgk_live_Q7vN2mX9pL4sT8wR1zK6yB3cF5hJ0dGa'; // 40 characters
const WEBHOOK_SECRET = 'whsec_M3nB8vC1xZ6lK9jH4gF7dS2aP5oI0uYt';
const UPSTREAM_CUT = 300;
const MESSAGE_CUT = 1000;

/** Every piece of `secret` at least MIN_FRAGMENT long that `text` contains. */
function fragmentsIn(text: string, secret: string): string[] {
  const found: string[] = [];
  for (let i = 0; i + MIN_FRAGMENT <= secret.length; i++) {
    const piece = secret.slice(i, i + MIN_FRAGMENT);
    if (text.includes(piece)) found.push(piece);
  }
  return found;
}

/** Offsets that put the secret across, before and after a cut at `cut`. */
function offsetsAround(cut: number, secret: string): number[] {
  const out: number[] = [];
  for (let o = cut - secret.length - 2; o <= cut + 2; o++) if (o >= 0) out.push(o);
  return out;
}

describe('redactSecrets and the cut', () => {
  it('a key at every offset around every cut is gone, whole and in part', () => {
    for (const cut of [UPSTREAM_CUT, MESSAGE_CUT]) {
      for (const secret of [API_KEY, WEBHOOK_SECRET]) {
        for (const offset of offsetsAround(cut, secret)) {
          const text = `${'x'.repeat(offset)}${secret}${'y'.repeat(60)}`;
          const out = redactAndTruncate(text, cut, [secret]);
          expect(fragmentsIn(out, secret), `cut ${cut} offset ${offset}`).toEqual([]);
          expect(out.length).toBeLessThanOrEqual(cut + 1);
        }
      }
    }
  });

  it('fragments of a key (an upstream that echoes half of it) and bearer tokens are redacted too', () => {
    expect(redactSecrets(`bad key ${API_KEY.slice(0, 20)}`, [API_KEY])).toBe('bad key [REDACTED]');
    expect(redactSecrets(`…${API_KEY.slice(25)} end`, [API_KEY])).toBe('…[REDACTED] end');
    expect(redactSecrets('Authorization: Bearer abc.def.ghi')).toBe('Authorization: Bearer [REDACTED]');
    expect(redactSecrets('token eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl here')).toBe('token [REDACTED] here');
  });

  it('graphql-js messages lose every value they quote, the reason included', () => {
    const secret = API_KEY;
    const messages = [
      `Variable "$input" got invalid value { name: "x", concurrencyLimit: "${secret}" } at "input.concurrencyLimit"; Int cannot represent non-integer value: "${secret}"`,
      `Variable "$input" got invalid value "${secret}; at \\"input.x\\"; "; Expected type "CreateAccountInput" to be an object.`,
      `Expected value of type "Int!", found "${secret}"; Int cannot represent non-integer value: "${secret}"`,
      `Syntax Error: Expected Name, found String "${secret}".`,
      `Argument "first" has invalid value "${secret}".`,
      `Int cannot represent non-integer value: "${secret}"`,
      `Enum "BudgetWindow" cannot represent non-enum value: "${secret}".`,
      `Variable "$input" got invalid value "${secret}" at "input.kind"; Value "${secret}" does not exist in "JobKind" enum.`,
    ];
    for (const message of messages) expect(fragmentsIn(safeMessage(message), secret), message).toEqual([]);
    expect(safeMessage(messages[0]!)).toBe('Variable "$input" got an invalid value at "input.concurrencyLimit"');
  });
});

describe('through a running gateway', () => {
  let h: Harness;
  let upstream: Server;
  let upstreamUrl: string;
  /** Offset of the key in the next rejection, by request order. */
  const offsets: number[] = [];
  let accountId: string;
  let projectId: string;
  let service: string;

  beforeAll(async () => {
    h = await startHarness({ workers: false });
    // A HeyGen that refuses every video with an error message echoing the caller's key at a chosen offset.
    upstream = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const offset = offsets.shift() ?? 0;
        const key = String(req.headers['x-api-key'] ?? '');
        const message = `${'m'.repeat(offset)}${key}${' tail'.repeat(30)}`;
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'invalid_parameter', message } }));
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    const created = await mustMutate(
      h,
      `mutation($input: CreateAccountInput!) { createAccount(input: $input) { __typename ... on CreateAccountPayload { account { id } } ... on Error { message } } }`,
      {
        input: {
          name: 'Echoing',
          billingModel: 'USAGE_BASED',
          apiKey: API_KEY,
          webhookSecret: WEBHOOK_SECRET,
          baseUrl: upstreamUrl,
          concurrencyLimit: 500,
          timezone: 'UTC',
          usageBased: TIER_5K,
        },
      },
      'createAccount',
    );
    accountId = created.account.id;
    const org = await createUnit(h, 'ORGANIZATION', 'Acme', null);
    const dept = await createUnit(h, 'DEPARTMENT', 'Dept', org, accountId);
    const team = await createUnit(h, 'TEAM', 'Team', dept);
    projectId = await createUnit(h, 'PROJECT', 'Project', team);
    service = (await issueServiceToken(h, projectId)).token;
  }, 60_000);

  afterAll(async () => {
    upstream?.close();
    await h?.close();
  });

  it('a key HeyGen echoes at every offset around the 300-character cut is not in failureMessage, the table, the audit trail or the logs', async () => {
    const responses: string[] = [];
    const jobIds: string[] = [];
    for (const offset of offsetsAround(UPSTREAM_CUT, API_KEY)) {
      offsets.push(offset);
      const res = await h.gql(SUBMIT, { input: { projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } }, service);
      responses.push(JSON.stringify(res));
      const job = res.data.submitJob.job;
      expect(job, JSON.stringify(res)).toBeTruthy();
      jobIds.push(job.id);
      const read = await h.gql(JOB_QUERY, { id: job.id }, service);
      responses.push(JSON.stringify(read));
      expect(read.data.job.status).toBe('FAILED');
      // The message is still there, only without the key (the cut may fall inside the marker itself).
      if (offset <= UPSTREAM_CUT - 6) expect(read.data.job.failureMessage).toContain('[REDAC');
    }
    expect(jobIds.length).toBeGreaterThan(40);
    const stored = await queryRows<{ m: string | null; c: string | null }>(h.services.db, sql`select failure_message as m, failure_code as c from jobs`);
    const items = await queryRows<{ m: string | null }>(h.services.db, sql`select failure_message as m from job_items`);
    const audit = await queryRows<{ t: string }>(h.services.db, sql`select coalesce(before::text, '') || coalesce(after::text, '') as t from audit_events`);
    const everything = [...responses, ...stored.map((r) => `${r.m} ${r.c}`), ...items.map((r) => r.m ?? ''), ...audit.map((r) => r.t), ...h.logs].join('\n');
    expect(fragmentsIn(everything, API_KEY)).toEqual([]);
    expect(fragmentsIn(everything, WEBHOOK_SECRET)).toEqual([]);
  });

  it('secrets and tokens sent in wrongly typed GraphQL fields are echoed nowhere', async () => {
    const before = h.logs.length;
    const bodies: string[] = [];
    const send = async (query: string, variables: Record<string, unknown>) => {
      const res = await fetch(`${h.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${h.adminToken}` },
        body: JSON.stringify({ query, variables }),
      });
      bodies.push(await res.text());
      expect(res.status).toBeLessThan(500);
    };
    const create = `mutation($input: CreateAccountInput!) { createAccount(input: $input) { __typename } }`;
    for (const secret of [API_KEY, WEBHOOK_SECRET, h.adminToken, service]) {
      const base = { name: 'X', billingModel: 'USAGE_BASED', apiKey: 'k', baseUrl: upstreamUrl, timezone: 'UTC', usageBased: TIER_5K };
      await send(create, { input: { ...base, concurrencyLimit: secret } });
      await send(create, { input: { ...base, concurrencyLimit: 5, billingModel: secret } });
      await send(create, { input: { ...base, concurrencyLimit: 5, usageBased: { ...TIER_5K, mmcUsd: `${secret}; at "input.x"; ` } } });
      await send(create, { input: `prefix ${secret} suffix` });
      await send(`query($n: Int) { jobs(first: $n) { edges { cursor } } }`, { n: secret });
      await send(`{ jobs(first: "${secret}") { edges { cursor } } }`, {});
      await send(`{ jobs(first: 1) { edges { cursor } } } "${secret}" {`, {});
    }
    const out = [...bodies, ...h.logs.slice(before)].join('\n');
    for (const secret of [API_KEY, WEBHOOK_SECRET, h.adminToken, service]) expect(fragmentsIn(out, secret)).toEqual([]);
    // The caller still learns which field was wrong.
    expect(bodies[0]).toContain('input.concurrencyLimit');
  });
});

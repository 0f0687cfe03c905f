// Invariant 6 (docs/architecture.md, Invariants): API keys are encrypted at rest and never returned, logged or put in error
// messages; the same holds for webhook secrets. Every GraphQL answer of this file is captured raw, every log
// line is kept by the harness, and the database is scanned at the end.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { JOB_QUERY, SUBMIT, TIER_5K, avatarRequest } from './support/fixtures.js';
import { queryRows } from '../src/db/client.js';
import { signWebhookBody } from '../src/heygen/simulator/server.js';

const API_KEY = 'sk_live_SECRET_abc123XYZ_987';
/** A key HeyGen (the simulator) does not know: every call with it is refused upstream. */
const UNKNOWN_KEY = 'sk_live_SECRET_unknownKEY_555';
const WEBHOOK_SECRET = 'whsec_SECRET_hook456QRS_321';
const SECRETS = [API_KEY, UNKNOWN_KEY, WEBHOOK_SECRET];
/** Distinctive middle parts: a truncated or partly masked secret is still a leak. */
const FRAGMENTS = ['SECRET_abc123XYZ', 'abc123XYZ', 'SECRET_unknownKEY', 'unknownKEY', 'SECRET_hook456QRS', 'hook456QRS'];

let h: Harness;
/** Raw text of every GraphQL response of this file. */
const bodies: { label: string; text: string }[] = [];

async function raw(label: string, query: string, variables: Record<string, unknown> = {}, token: string | null = h.adminToken) {
  const res = await fetch(`${h.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const text = await res.text();
  bodies.push({ label, text });
  return { status: res.status, text, body: JSON.parse(text) as { data?: any; errors?: any[] } };
}

async function must(label: string, query: string, variables: Record<string, unknown>, field: string) {
  const r = await raw(label, query, variables);
  expect(r.body.errors, r.text).toBeUndefined();
  const payload = r.body.data[field];
  expect(payload.__typename, r.text).not.toMatch(/Error$/);
  return payload;
}

async function countRows(table: string): Promise<number> {
  const [row] = await queryRows<{ n: number }>(h.services.db, sql.raw(`select count(*)::int as n from ${table}`));
  return Number(row!.n);
}

function leaksIn(text: string): string[] {
  return [...SECRETS, ...FRAGMENTS].filter((s) => text.includes(s));
}

const CREATE_ACCOUNT = `mutation($input: CreateAccountInput!) {
  createAccount(input: $input) {
    __typename
    ... on CreateAccountPayload { account { id name apiKeyHint baseUrl timezone concurrencyLimit priceBook } }
    ... on ValidationError { field }
    ... on Error { message code }
  }
}`;
const CREATE_UNIT = `mutation($input: CreateOrgUnitInput!) { createOrgUnit(input: $input) { __typename ... on CreateOrgUnitPayload { orgUnit { id } } ... on Error { message code } } }`;

function accountInput(overrides: Record<string, unknown> = {}) {
  return {
    name: 'Production',
    billingModel: 'USAGE_BASED',
    usageBased: TIER_5K,
    apiKey: API_KEY,
    webhookSecret: WEBHOOK_SECRET,
    baseUrl: h.sim.url,
    concurrencyLimit: 50,
    timezone: 'UTC',
    ...overrides,
  };
}

let accountId: string;
let unknownAccountId: string;
let projectId: string;
let brokenProjectId: string;

async function submit(label: string, project: string, extra: Record<string, unknown> = {}) {
  const r = await raw(label, SUBMIT, { input: { projectId: project, kind: 'AVATAR_VIDEO', request: avatarRequest(), ...extra } });
  expect(r.body.errors, r.text).toBeUndefined();
  expect(r.body.data.submitJob.__typename, r.text).toBe('SubmitJobPayload');
  return r.body.data.submitJob.job as { id: string; status: string };
}

async function finished(label: string, jobId: string, timeoutMs = 12_000) {
  return waitFor(async () => {
    const r = await raw(label, JOB_QUERY, { id: jobId });
    const job = r.body.data.job;
    return ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(job.status) ? job : null;
  }, timeoutMs);
}

beforeAll(async () => {
  h = await startHarness({ sim: { fixedDurationSeconds: 10 }, simAccounts: [{ apiKey: API_KEY, concurrencyLimit: 100 }] });
  const created = await must('create account', CREATE_ACCOUNT, { input: accountInput() }, 'createAccount');
  accountId = created.account.id;
  expect(created.account.apiKeyHint).toBe('…_987');
  const unknown = await must('create account (unknown key)', CREATE_ACCOUNT, { input: accountInput({ name: 'Stale key', apiKey: UNKNOWN_KEY, webhookSecret: undefined }) }, 'createAccount');
  unknownAccountId = unknown.account.id;
  const unit = async (kind: string, name: string, parentId: string | null, account?: string) =>
    (await must(`create ${kind}`, CREATE_UNIT, { input: { kind, name, parentId, accountId: account } }, 'createOrgUnit')).orgUnit.id as string;
  const orgId = await unit('ORGANIZATION', 'Acme', null, accountId);
  const deptId = await unit('DEPARTMENT', 'Marketing', orgId);
  const teamId = await unit('TEAM', 'Video', deptId);
  projectId = await unit('PROJECT', 'Onboarding', teamId);
  brokenProjectId = await unit('PROJECT', 'Legacy', teamId, unknownAccountId);
});
afterAll(async () => h?.close());

describe('API keys and webhook secrets never leave the gateway', () => {
  it('createAccount answers with the hint (last four characters), never the key', async () => {
    const r = await raw('accounts', `{ accounts { id name apiKeyHint baseUrl timezone concurrencyLimit inFlightJobs priceBook period { usedCreditSeconds } } }`);
    expect(r.body.errors).toBeUndefined();
    const byName = Object.fromEntries(r.body.data.accounts.map((a: any) => [a.name, a]));
    expect(byName.Production.apiKeyHint).toBe('…_987');
    expect(byName.Production.apiKeyHint).toBe(`…${API_KEY.slice(-4)}`);
    expect(byName['Stale key'].apiKeyHint).toBe('…_555');
    const node = await raw('account node', `query($id: ID!) { node(id: $id) { ... on Account { id apiKeyHint } } }`, { id: accountId });
    expect(node.body.data.node).toEqual({ id: accountId, apiKeyHint: '…_987' });
    expect(leaksIn(r.text)).toEqual([]);
  });

  it('the schema has no field that could carry the key or the webhook secret', async () => {
    const r = await raw('introspection', `{ __type(name: "Account") { fields { name } } }`);
    expect(r.body.errors).toBeUndefined();
    const fields: string[] = r.body.data.__type.fields.map((f: any) => f.name);
    expect(fields).toContain('apiKeyHint');
    expect(fields.filter((f) => /key|secret|cipher/i.test(f))).toEqual(['apiKeyHint']);
  });

  it('a job runs end to end with the key (the simulator saw it), and nothing echoes it', async () => {
    const job = await submit('submit', projectId, { idempotencyKey: 'secrets-1' });
    expect(job.status).toBe('SUBMITTED');
    const done = await finished('poll', job.id);
    expect(done.status).toBe('SUCCEEDED');
    expect(done.actualCreditSeconds).toBe('60'); // 10 s × 6 cs/s
    // The simulator billed the job to the account of this exact key: the gateway did send it upstream.
    expect(h.sim.jobs(API_KEY).map((j) => j.callbackId)).toContain(decodeGlobalID(job.id).id);
    const replay = await submit('replay', projectId, { idempotencyKey: 'secrets-1' });
    expect(replay.id).toBe(job.id);
  });

  it('error paths carry no key: duplicate account, bad time zone, bad URL, unauthenticated, conflicting idempotency', async () => {
    const dup = await raw('duplicate account', CREATE_ACCOUNT, { input: accountInput() });
    expect(dup.body.data.createAccount).toMatchObject({ __typename: 'ValidationError', field: 'name' });
    const tz = await raw('bad tz', CREATE_ACCOUNT, { input: accountInput({ name: 'Other', timezone: 'Mars/Base' }) });
    expect(tz.body.data.createAccount).toMatchObject({ __typename: 'ValidationError', field: 'timezone' });
    const url = await raw('bad url', CREATE_ACCOUNT, { input: accountInput({ name: 'Other', baseUrl: 'ftp://example.com' }) });
    expect(url.body.data.createAccount).toMatchObject({ __typename: 'ValidationError', field: 'baseUrl' });
    const longKey = await raw('overlong key', CREATE_ACCOUNT, { input: accountInput({ name: 'Other', apiKey: API_KEY.repeat(20) }) });
    expect(longKey.body.data.createAccount).toMatchObject({ __typename: 'ValidationError', field: 'apiKey' });
    const anon = await raw('unauthenticated createAccount', CREATE_ACCOUNT, { input: accountInput({ name: 'Anon' }) }, null);
    expect(anon.status).toBe(401);
    const conflict = await raw('idempotency conflict', SUBMIT, {
      input: { projectId, kind: 'AVATAR_VIDEO', request: avatarRequest('different words'), idempotencyKey: 'secrets-1' },
    });
    expect(conflict.body.data.submitJob.__typename).toBe('IdempotencyConflictError');
    for (const r of [dup, tz, url, longKey, anon, conflict]) expect(leaksIn(r.text)).toEqual([]);
  });

  it('a createAccount whose variables the schema refuses (missing or unknown field) neither answers nor logs the key or the webhook secret', async () => {
    const from = h.logs.length;
    const { name: _name, ...missingName } = accountInput();
    const missing = await raw('missing required field', CREATE_ACCOUNT, { input: missingName });
    expect(missing.status).toBe(200);
    expect(missing.body.data ?? null).toBeNull();
    expect(missing.body.errors?.[0]?.message).toBe('Variable "$input" got an invalid value; Field "name" of required type "String!" was not provided.');
    const unknownField = await raw('unknown input field', CREATE_ACCOUNT, { input: { ...accountInput({ name: 'Typo' }), concurrency: 5 } });
    expect(unknownField.body.data ?? null).toBeNull();
    expect(unknownField.body.errors?.length).toBe(1);
    expect(leaksIn(missing.text + unknownField.text)).toEqual([]);
    expect(await countRows('accounts')).toBe(2);
    const lines = h.logs.slice(from);
    expect(lines.filter((l) => leaksIn(l).length > 0).map((l) => l.slice(0, 300))).toEqual([]);
  });

  it('HeyGen refusing the key (401 upstream) fails the job without quoting the key', async () => {
    const job = await submit('submit with unknown key', brokenProjectId);
    const done = await finished('poll unknown key', job.id);
    expect(done.status).toBe('FAILED');
    expect(done.reservedCreditSeconds).toBe('0');
    expect(typeof done.failureMessage).toBe('string');
    expect(leaksIn(`${done.failureCode} ${done.failureMessage}`)).toEqual([]);
  });

  it('upstream faults (10 × 5xx, then 429s and malformed bodies) retry with the key and never log it', async () => {
    const from = h.logs.length;
    const faultsBefore = h.sim.stats().faults.fail5xx;
    h.sim.configure({ fail5xxNext: 10 });
    const job = await submit('submit during 5xx storm', projectId);
    expect(job.status).toBe('SUBMIT_UNKNOWN'); // the inline attempts all met a 5xx
    const done = await finished('poll 5xx', job.id, 15_000);
    expect(done.status).toBe('SUCCEEDED');
    expect(h.sim.stats().faults.fail5xx - faultsBefore).toBe(10);

    h.sim.configure({ rateLimitNext: 2, malformedNext: 2 });
    const job2 = await submit('submit during 429 and malformed bodies', projectId);
    const done2 = await finished('poll 429', job2.id, 15_000);
    expect(['SUCCEEDED', 'FAILED']).toContain(done2.status);
    const lines = h.logs.slice(from);
    // The faults were logged (the error paths ran), without the key.
    expect(lines.some((l) => l.includes('submission outcome unknown'))).toBe(true);
    expect(lines.filter((l) => leaksIn(l).length > 0).map((l) => l.slice(0, 300))).toEqual([]);
  });

  it('webhooks: a forged one is refused, a signed one accepted, and the secret is never echoed', async () => {
    const accountUuid = decodeGlobalID(accountId).id;
    const body = JSON.stringify({ event_type: 'avatar_video.success', event_id: 'evt_1', event_data: { video_id: 'v_unknown', callback_id: 'nobody' } });
    const post = (signature: string | null) =>
      fetch(`${h.url}/webhooks/heygen/${accountUuid}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(signature ? { [h.config.webhookSignature.header]: signature } : {}) },
        body,
      });
    const forged = await post(signWebhookBody('not-the-secret', body));
    expect(forged.status).toBe(401);
    const forgedText = await forged.text();
    const signed = await post(signWebhookBody(WEBHOOK_SECRET, body));
    expect(signed.status).toBe(202);
    const signedText = await signed.text();
    expect(leaksIn(forgedText + signedText)).toEqual([]);
  });

  it('/metrics reports jobs per account and carries no secret', async () => {
    const res = await fetch(`${h.url}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/gateway_jobs\{account="[^"]+",status="SUCCEEDED"\} [1-9]/);
    expect(text).toContain('gateway_reserved_credits');
    expect(leaksIn(text)).toEqual([]);
  });

  it('no GraphQL response body of this file contains a secret', () => {
    expect(bodies.length).toBeGreaterThan(15);
    const offenders = bodies.filter((b) => leaksIn(b.text).length > 0).map((b) => `${b.label}: ${leaksIn(b.text).join(', ')}`);
    expect(offenders).toEqual([]);
  });

  it('no log line (debug level) contains a secret', () => {
    expect(h.logs.length).toBeGreaterThan(0);
    // The forwarding faults above were logged: the error paths were exercised.
    expect(h.logs.some((l) => l.includes('submission outcome unknown'))).toBe(true);
    const offenders = h.logs.filter((l) => leaksIn(l).length > 0).map((l) => l.slice(0, 400));
    expect(offenders).toEqual([]);
  });

  it('the key is stored as a v1 AES-GCM envelope bound to its row, and nowhere in the database in clear', async () => {
    const rows = await queryRows<{ id: string; name: string; api_key_ciphertext: string; api_key_hint: string; webhook_secret_ciphertext: string | null }>(
      h.services.db,
      sql`select id::text, name, api_key_ciphertext, api_key_hint, webhook_secret_ciphertext from accounts order by name`,
    );
    const prod = rows.find((r) => r.name === 'Production')!;
    expect(prod.api_key_ciphertext).toMatch(/^v1\.[0-9a-f]{8}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(prod.api_key_ciphertext).not.toContain(API_KEY);
    expect(prod.api_key_hint).toBe('…_987');
    expect(prod.webhook_secret_ciphertext).toMatch(/^v1\./);
    // The envelope is the real key, bound to this row: it decrypts here and only here.
    expect(h.services.box.decrypt(prod.api_key_ciphertext, `account:${prod.id}:api_key`)).toBe(API_KEY);
    expect(h.services.box.decrypt(prod.webhook_secret_ciphertext!, `account:${prod.id}:webhook_secret`)).toBe(WEBHOOK_SECRET);
    const other = rows.find((r) => r.name === 'Stale key')!;
    expect(() => h.services.box.decrypt(prod.api_key_ciphertext, `account:${other.id}:api_key`)).toThrow();

    // No column of any table holds a secret (or its base64) in clear.
    const tables = await queryRows<{ table_name: string }>(
      h.services.db,
      sql`select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'`,
    );
    expect(tables.length).toBeGreaterThan(5);
    const needles = [...SECRETS, ...SECRETS.map((s) => Buffer.from(s).toString('base64')), ...SECRETS.map((s) => Buffer.from(s).toString('base64url'))];
    const found: string[] = [];
    for (const { table_name } of tables) {
      const dump = await queryRows<{ row: string }>(h.services.db, sql.raw(`select row_to_json(t)::text as row from "${table_name}" t`));
      for (const { row } of dump) for (const n of needles) if (row.includes(n)) found.push(`${table_name}: ${n}`);
    }
    expect(found).toEqual([]);
  });
});

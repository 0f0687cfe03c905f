// Bad input is refused with a typed error in the mutation's result union (ValidationError with the field at
// fault, or NotFoundError), over HTTP 200, and nothing is written. No response ever carries an internal error.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { startHarness, type Harness } from './support/harness.js';
import { createTree, issueServiceToken, SUBMIT, SCRIPT_20_WORDS, TIER_5K, avatarRequest, type Tree } from './support/fixtures.js';
import { queryRows } from '../src/db/client.js';
import { mp4, startMediaServer, type MediaServer } from './support/media.js';

let h: Harness;
let tree: Tree;
let serviceToken: string;
let media: MediaServer;

interface Recorded {
  label: string;
  status: number;
  text: string;
  body: { data?: any; errors?: any[] };
}
/** Every response of the file, for the final check that none carries an internal error. */
const responses: Recorded[] = [];

async function gql(label: string, query: string, variables: Record<string, unknown>, token: string | null = h.adminToken): Promise<Recorded> {
  const res = await fetch(`${h.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const text = await res.text();
  const rec: Recorded = { label, status: res.status, text, body: JSON.parse(text) };
  responses.push(rec);
  return rec;
}

const TABLES = ['jobs', 'job_items', 'ledger_entries', 'usage_rollups', 'accounts', 'account_terms', 'org_units', 'budgets', 'service_tokens'];

async function counts(): Promise<Record<string, number>> {
  const rows = await Promise.all(
    TABLES.map(async (t) => {
      const [row] = await queryRows<{ n: number }>(h.services.db, sql.raw(`select count(*)::int as n from ${t}`));
      return [t, Number(row!.n)] as const;
    }),
  );
  return Object.fromEntries(rows);
}

type Expected = { type: 'ValidationError'; field: string } | { type: 'NotFoundError' };

/** Calls one mutation and expects exactly this typed error in its union, over HTTP 200, with no row written anywhere. */
async function expectRefused(label: string, query: string, field: string, input: Record<string, unknown>, expected: Expected, token?: string) {
  const before = await counts();
  const r = await gql(label, query, { input }, token);
  expect(r.status, label).toBe(200);
  expect(r.body.errors, `${label}: ${r.text}`).toBeUndefined();
  const payload = r.body.data[field];
  expect(payload.__typename, `${label}: ${r.text}`).toBe(expected.type);
  if (expected.type === 'ValidationError') {
    expect(payload.code, label).toBe('VALIDATION_FAILED');
    expect(payload.field, `${label}: ${payload.message}`).toBe(expected.field);
  } else {
    expect(payload.code, label).toBe('NOT_FOUND');
  }
  expect(typeof payload.message).toBe('string');
  expect(payload.message.length).toBeGreaterThan(0);
  expect(await counts(), label).toEqual(before);
  return payload;
}

const submitRefused = (label: string, input: Record<string, unknown>, expected: Expected, token?: string) =>
  expectRefused(label, SUBMIT, 'submitJob', { projectId: tree.projectId, ...input }, expected, token);
const invalid = (field: string): Expected => ({ type: 'ValidationError', field });
const notFound: Expected = { type: 'NotFoundError' };

const CREATE_ACCOUNT = `mutation($input: CreateAccountInput!) { createAccount(input: $input) { __typename ... on CreateAccountPayload { account { id } } ... on ValidationError { field } ... on Error { message code } } }`;
const CREATE_UNIT = `mutation($input: CreateOrgUnitInput!) { createOrgUnit(input: $input) { __typename ... on CreateOrgUnitPayload { orgUnit { id } } ... on ValidationError { field } ... on Error { message code } } }`;
const SET_BUDGET = `mutation($input: SetBudgetInput!) { setBudget(input: $input) { __typename ... on SetBudgetPayload { budget { id } } ... on ValidationError { field } ... on Error { message code } } }`;
const ISSUE_TOKEN = `mutation($input: IssueServiceTokenInput!) { issueServiceToken(input: $input) { __typename ... on IssueServiceTokenPayload { token } ... on ValidationError { field } ... on Error { message code } } }`;

const VIDEO = { type: 'asset_id', asset_id: 'src_1' };
const translation = (extra: Record<string, unknown> = {}) => ({ video: VIDEO, output_languages: ['fr', 'de'], ...extra });
const scene = (script: string) => ({ type: 'avatar_video', input: { type: 'avatar', avatar_id: 'a1', script } });
const agent = (extra: Record<string, unknown> = {}) => ({ prompt: 'A short product intro', ...extra });
const template = (extra: Record<string, unknown> = {}) => ({ template_id: 'tmpl_1', variables: { name: { type: 'text', text: 'Ada' } }, ...extra });

beforeAll(async () => {
  // No background workers: nothing but the requests of this file writes to the database.
  h = await startHarness({ workers: false });
  tree = await createTree(h);
  serviceToken = (await issueServiceToken(h, tree.projectId, 'validation-app')).token;
  // A 20,000-second source video (its header says so; the file is tiny), served on loopback.
  media = await startMediaServer({ '/long.mp4': { body: mp4(20_000_000), type: 'video/mp4' } });
});
afterAll(async () => {
  await media?.close();
  await h?.close();
});

describe('control: the inputs below differ from accepted ones in one way only', () => {
  it('valid requests of all four kinds are admitted (and written)', async () => {
    const before = await counts();
    const ok = async (kind: string, request: unknown, extra: Record<string, unknown> = {}) => {
      const r = await gql(`control ${kind}`, SUBMIT, { input: { projectId: tree.projectId, kind, request, ...extra } });
      expect(r.body.errors).toBeUndefined();
      expect(r.body.data.submitJob.__typename, r.text).toBe('SubmitJobPayload');
      return r.body.data.submitJob.job;
    };
    await ok('AVATAR_VIDEO', avatarRequest(), { idempotencyKey: 'Valid_key-1:2.3' });
    await ok('AVATAR_VIDEO', avatarRequest('x'.repeat(5000))); // exactly at the script limit
    await ok('TEMPLATE_VIDEO', template());
    await ok('VIDEO_TRANSLATION', translation(), { estimatedSeconds: '20' });
    await ok('VIDEO_TRANSLATION', translation({ video: { type: 'url', url: media.url('/long.mp4') }, start_time: 0, end_time: 12.5 }));
    await ok('VIDEO_TRANSLATION', translation({ start_time: 0, end_time: 12.5 }));
    await ok('VIDEO_AGENT', agent(), { estimatedSeconds: '14400' }); // exactly at the estimate limit
    await ok('AVATAR_VIDEO', { type: 'avatar', avatar_id: 'a1', audio_asset_id: 'as_1' }, { estimatedSeconds: '30' });
    const after = await counts();
    expect(after.jobs).toBe(before.jobs! + 8);
  });
});

describe('submitJob: malformed request bodies', () => {
  it('AVATAR_VIDEO', async () => {
    const kind = 'AVATAR_VIDEO';
    await submitRefused('avatar: request is a string', { kind, request: 'make me a video' }, invalid('request'));
    await submitRefused('avatar: request is an array', { kind, request: [avatarRequest()] }, invalid('request'));
    await submitRefused('avatar: request is a number', { kind, request: 42 }, invalid('request'));
    await submitRefused('avatar: request is a boolean', { kind, request: true }, invalid('request'));
    await submitRefused('avatar: empty object (no type, no scenes)', { kind, request: {} }, invalid('request.type'));
    await submitRefused('avatar: unknown type', { kind, request: { ...avatarRequest(), type: 'hologram' } }, invalid('request.type'));
    await submitRefused('avatar: unknown engine', { kind, request: { ...avatarRequest(), engine: 'avatar_x' } }, invalid('request.engine'));
    await submitRefused('avatar: unknown resolution', { kind, request: { ...avatarRequest(), resolution: '8k' } }, invalid('request.resolution'));
    await submitRefused('avatar: script is not a string', { kind, request: { ...avatarRequest(), script: 12345 } }, invalid('request.script'));
    await submitRefused('avatar: empty scenes', { kind, request: { scenes: [] } }, invalid('request.scenes'));
    await submitRefused('avatar: cinematic duration ≤ 0', { kind, request: { type: 'cinematic_avatar', duration: -5 } }, invalid('request.duration'));
    await submitRefused('avatar: cinematic duration absurd', { kind, request: { type: 'cinematic_avatar', duration: 1e9 } }, invalid('request.duration'));
    await submitRefused('avatar: a non-SERVICE caller sets callback_url (only apps may: their token signs the callbacks)', { kind, request: { ...avatarRequest(), callback_url: 'https://attacker.example/cb' } }, invalid('request.callback_url'));
    await submitRefused('avatar: callback_id without a callback_url', { kind, request: { ...avatarRequest(), callback_id: 'mine' } }, invalid('request.callback_id'));
  });

  it('TEMPLATE_VIDEO', async () => {
    const kind = 'TEMPLATE_VIDEO';
    await submitRefused('template: request is a string', { kind, request: 'tmpl_1' }, invalid('request'));
    await submitRefused('template: request is null inside a list', { kind, request: [null] }, invalid('request'));
    await submitRefused('template: no template_id', { kind, request: { variables: {} } }, invalid('request.template_id'));
    await submitRefused('template: no variables', { kind, request: { template_id: 'tmpl_1' } }, invalid('request.variables'));
    await submitRefused('template: template_id with a path', { kind, request: template({ template_id: '../../admin' }) }, invalid('request.template_id'));
    await submitRefused('template: template_id not a string', { kind, request: template({ template_id: 7 }) }, invalid('request.template_id'));
    await submitRefused('template: variables not an object', { kind, request: template({ variables: 'name=Ada' }) }, invalid('request.variables'));
    await submitRefused('template: a non-SERVICE caller sets callback_url', { kind, request: template({ callback_url: 'https://attacker.example/cb' }) }, invalid('request.callback_url'));
  });

  it('VIDEO_TRANSLATION', async () => {
    const kind = 'VIDEO_TRANSLATION';
    const e = { estimatedSeconds: '20' };
    await submitRefused('translation: request is a string', { kind, request: 'https://example.com/v.mp4', ...e }, invalid('request'));
    await submitRefused('translation: no video', { kind, request: { output_languages: ['fr'] }, ...e }, invalid('request.video'));
    await submitRefused('translation: video is a string', { kind, request: translation({ video: 'https://example.com/v.mp4' }), ...e }, invalid('request.video'));
    await submitRefused('translation: no output_languages', { kind, request: { video: VIDEO }, ...e }, invalid('request.output_languages'));
    await submitRefused('translation: empty output_languages', { kind, request: translation({ output_languages: [] }), ...e }, invalid('request.output_languages'));
    await submitRefused(
      'translation: 51 output languages',
      { kind, request: translation({ output_languages: Array.from({ length: 51 }, (_, i) => `l${i}`) }), ...e },
      invalid('request.output_languages'),
    );
    await submitRefused('translation: unknown mode', { kind, request: translation({ mode: 'turbo' }), ...e }, invalid('request.mode'));
    await submitRefused('translation: end before start', { kind, request: translation({ start_time: 10, end_time: 5 }) }, invalid('request.end_time'));
    await submitRefused('translation: negative start', { kind, request: translation({ start_time: -1, end_time: 5 }) }, invalid('request.start_time'));
    await submitRefused('translation: a non-SERVICE caller sets callback_url', { kind, request: translation({ callback_url: 'https://attacker.example/cb' }), ...e }, invalid('request.callback_url'));
  });

  it('VIDEO_AGENT', async () => {
    const kind = 'VIDEO_AGENT';
    await submitRefused('agent: request is a string', { kind, request: 'A short product intro' }, invalid('request'));
    await submitRefused('agent: no prompt', { kind, request: {} }, invalid('request.prompt'));
    await submitRefused('agent: empty prompt', { kind, request: agent({ prompt: '' }) }, invalid('request.prompt'));
    await submitRefused('agent: prompt too long', { kind, request: agent({ prompt: 'p'.repeat(10_001) }) }, invalid('request.prompt'));
    await submitRefused('agent: unknown mode', { kind, request: agent({ mode: 'auto' }) }, invalid('request.mode'));
    await submitRefused('agent: a non-SERVICE caller sets callback_url', { kind, request: agent({ callback_url: 'https://attacker.example/cb' }) }, invalid('request.callback_url'));
  });

  it('an oversized script (5001 characters), alone or in a scene', async () => {
    await submitRefused('script of 5001 characters', { kind: 'AVATAR_VIDEO', request: avatarRequest('x'.repeat(5001)) }, invalid('request.script'));
    await submitRefused(
      'scene script of 5001 characters',
      { kind: 'AVATAR_VIDEO', request: { scenes: [scene(SCRIPT_20_WORDS), scene('y'.repeat(5001))] } },
      invalid('request.scenes.1.input.script'),
    );
  });

  it('a body PostgreSQL cannot store (a NUL character in the script) is a ValidationError, not an internal error', async () => {
    const r = await submitRefused('script with a NUL character', { kind: 'AVATAR_VIDEO', request: avatarRequest('hello\u0000world') }, invalid('request.script'));
    expect(r.__typename).toBe('ValidationError');
  });
});

describe('submitJob: the project', () => {
  const request = avatarRequest();
  it('unknown project ids read as NotFoundError', async () => {
    await submitRefused('random uuid as a global id', { kind: 'AVATAR_VIDEO', request, projectId: encodeGlobalID('OrgUnit', randomUUID()) }, notFound);
    await submitRefused('garbage id string', { kind: 'AVATAR_VIDEO', request, projectId: 'garbage' }, notFound);
    await submitRefused('empty id', { kind: 'AVATAR_VIDEO', request, projectId: '' }, notFound);
    await submitRefused('raw uuid, not a global id', { kind: 'AVATAR_VIDEO', request, projectId: randomUUID() }, notFound);
    await submitRefused('global id of another type (Account)', { kind: 'AVATAR_VIDEO', request, projectId: tree.accountId }, notFound);
    await submitRefused('OrgUnit global id whose uuid is malformed', { kind: 'AVATAR_VIDEO', request, projectId: encodeGlobalID('OrgUnit', 'not-a-uuid') }, notFound);
  });

  it('a TEAM (or the organization) instead of a project is a ValidationError on projectId', async () => {
    await submitRefused('team id', { kind: 'AVATAR_VIDEO', request, projectId: tree.teamId }, invalid('projectId'));
    await submitRefused('organization id', { kind: 'AVATAR_VIDEO', request, projectId: tree.orgId }, invalid('projectId'));
  });
});

describe('submitJob: estimatedSeconds', () => {
  const base = { kind: 'VIDEO_AGENT', request: agent() };
  for (const value of ['-5', '-0.5', '0', '0.0', '0.0000000', 'abc', '', ' ', '5s', '1e9', '1e3', '99999999', '14400.000001', 'NaN', 'Infinity', '-Infinity', '0x10', '+5', '5,5']) {
    it(`refuses ${JSON.stringify(value)}`, async () => {
      await submitRefused(`estimatedSeconds ${JSON.stringify(value)}`, { ...base, estimatedSeconds: value }, invalid('estimatedSeconds'));
    });
  }

  it('refuses a job that cannot be priced (a length that can be neither read nor measured is never taken from the caller)', async () => {
    // Nothing listens on port 9 of the loopback: the audio cannot be measured, whatever the caller declares.
    await submitRefused(
      'avatar video whose audio_url cannot be read',
      { kind: 'AVATAR_VIDEO', request: { type: 'avatar', avatar_id: 'a1', audio_url: 'http://127.0.0.1:9/a.mp3' }, estimatedSeconds: '30' },
      invalid('request.audio_url'),
    );
    await submitRefused(
      'avatar video with both a script and an audio_asset_id',
      { kind: 'AVATAR_VIDEO', request: { type: 'avatar', avatar_id: 'a1', script: SCRIPT_20_WORDS, audio_asset_id: 'asset_1' } },
      invalid('request.audio_asset_id'),
    );
    await submitRefused(
      'scenes, one without a type',
      { kind: 'AVATAR_VIDEO', request: { scenes: [scene(SCRIPT_20_WORDS), { url: 'https://example.com/clip.mp4' }] } },
      invalid('request.scenes.1.type'),
    );
    await submitRefused(
      'translation whose source video cannot be read',
      { kind: 'VIDEO_TRANSLATION', request: translation({ video: { type: 'url', url: 'http://127.0.0.1:9/v.mp4' } }), estimatedSeconds: '20' },
      invalid('request.video.url'),
    );
    await submitRefused(
      'translation starting past the end of its measured source',
      { kind: 'VIDEO_TRANSLATION', request: translation({ video: { type: 'url', url: media.url('/long.mp4') }, start_time: 20_001 }) },
      invalid('request.start_time'),
    );
  });

  it('refuses a request that implies an absurd length', async () => {
    await submitRefused('translation of a 20,000 s source (over the 4 h estimate cap)', { kind: 'VIDEO_TRANSLATION', request: translation({ video: { type: 'url', url: media.url('/long.mp4') } }) }, invalid('request'));
    await submitRefused('translation end_time 1e6 s', { kind: 'VIDEO_TRANSLATION', request: translation({ start_time: 0, end_time: 1e6 }) }, invalid('request.end_time'));
    // 20 scenes × 2,000 words = 40,000 words = 16,000 s at 150 wpm, past the 4 h cap (and under the body size limit).
    await submitRefused('script with 40,000 words', { kind: 'AVATAR_VIDEO', request: { type: 'studio', scenes: Array.from({ length: 20 }, () => scene('w '.repeat(2000))) } }, invalid('request'));
  });

  it('refuses a translation whose end_time is too large to write as a plain decimal (1e21), as a ValidationError', async () => {
    await submitRefused('translation end_time 1e21 s', { kind: 'VIDEO_TRANSLATION', request: translation({ start_time: 0, end_time: 1e21 }) }, invalid('request.end_time'));
  });
});

describe('submitJob: idempotencyKey', () => {
  for (const [name, key] of [
    ['with spaces', 'my key 1'],
    ['300 characters', 'k'.repeat(300)],
    ['256 characters (HeyGen allows 255)', 'k'.repeat(256)],
    ['empty', ''],
    ['non-ASCII', 'clé-ünïcode'],
    ['a slash', 'a/b'],
    ['a newline', 'a\nb'],
  ] as const) {
    it(`refuses a key ${name}`, async () => {
      await submitRefused(`idempotencyKey ${name}`, { kind: 'AVATAR_VIDEO', request: avatarRequest(), idempotencyKey: key }, invalid('idempotencyKey'));
    });
  }
});

describe('submitJob with a SERVICE token: the same refusals', () => {
  it('validation and not-found errors are typed for service callers too', async () => {
    // An app may name its own callback_url (docs/app-callbacks.md), but not one at a private address, with credentials, or not https.
    for (const url of ['https://10.0.0.1/cb', 'https://user:pw@x.example/cb', 'http://x.example/cb', 'file:///etc/passwd']) {
      await submitRefused(`service: callback_url ${url}`, { kind: 'AVATAR_VIDEO', request: { ...avatarRequest(), callback_url: url } }, invalid('request.callback_url'), serviceToken);
    }
    await submitRefused('service: callback_id too long', { kind: 'AVATAR_VIDEO', request: { ...avatarRequest(), callback_url: 'https://x.example/cb', callback_id: 'x'.repeat(256) } }, invalid('request.callback_id'), serviceToken);
    await submitRefused('service: bad estimatedSeconds', { kind: 'VIDEO_AGENT', request: agent(), estimatedSeconds: '-1' }, invalid('estimatedSeconds'), serviceToken);
    await submitRefused('service: other project', { kind: 'AVATAR_VIDEO', request: avatarRequest(), projectId: tree.otherProjectId }, notFound, serviceToken);
    await submitRefused('service: garbage project', { kind: 'AVATAR_VIDEO', request: avatarRequest(), projectId: 'garbage' }, notFound, serviceToken);
  });
});

describe('createAccount: bad terms, time zone, base URL', () => {
  const good = () => ({
    name: `Account ${randomUUID().slice(0, 8)}`,
    billingModel: 'USAGE_BASED',
    usageBased: { ...TIER_5K },
    apiKey: 'sk_test_another_key_0002',
    baseUrl: 'https://api.heygen.com',
    timezone: 'Europe/Paris',
    concurrencyLimit: 10,
  });
  const refused = (label: string, input: Record<string, unknown>, expected: Expected) => expectRefused(label, CREATE_ACCOUNT, 'createAccount', input, expected);

  it('control: the base input is accepted', async () => {
    const r = await gql('createAccount control', CREATE_ACCOUNT, { input: good() });
    expect(r.body.data.createAccount.__typename, r.text).toBe('CreateAccountPayload');
  });

  it('refuses bad usage-based terms', async () => {
    const { usageBased: _u, ...noTerms } = good();
    await refused('usage-based without terms', noTerms, invalid('usageBased'));
    await refused('negative MMC', { ...good(), usageBased: { ...TIER_5K, mmcUsd: '-5000' } }, invalid('usageBased.mmcUsd'));
    await refused('zero included pool', { ...good(), usageBased: { ...TIER_5K, includedCreditSeconds: '0' } }, invalid('usageBased.includedCreditSeconds'));
    await refused('negative included pool', { ...good(), usageBased: { ...TIER_5K, includedCreditSeconds: '-600000' } }, invalid('usageBased.includedCreditSeconds'));
    await refused('negative overage rate', { ...good(), usageBased: { ...TIER_5K, overageRateUsd: '-0.01' } }, invalid('usageBased.overageRateUsd'));
    await refused('negative contract rate', { ...good(), usageBased: { ...TIER_5K, contractRateUsd: '-0.01' } }, invalid('usageBased.contractRateUsd'));
    await refused('term start not a date', { ...good(), usageBased: { ...TIER_5K, termStart: 'next monday' } }, invalid('usageBased.termStart'));
  });

  it('refuses bad credit-package terms', async () => {
    const pkg = { totalCreditSeconds: '1000000', pricePerCreditSecondUsd: '0.005', termStart: '2026-01-01', termEnd: '2026-12-31' };
    const base = { ...good(), billingModel: 'CREDIT_PACKAGE', usageBased: undefined };
    await refused('credit package without terms', base, invalid('creditPackage'));
    await refused('end before start', { ...base, creditPackage: { ...pkg, termEnd: '2025-12-31' } }, invalid('creditPackage.termEnd'));
    await refused('empty pool', { ...base, creditPackage: { ...pkg, totalCreditSeconds: '0' } }, invalid('creditPackage.totalCreditSeconds'));
    await refused('negative price', { ...base, creditPackage: { ...pkg, pricePerCreditSecondUsd: '-1' } }, invalid('creditPackage.pricePerCreditSecondUsd'));
    await refused('start not a date', { ...base, creditPackage: { ...pkg, termStart: '01/01/2026' } }, invalid('creditPackage.termStart'));
  });

  it('refuses term dates that look like dates but are not calendar dates', async () => {
    const pkg = { totalCreditSeconds: '1000000', pricePerCreditSecondUsd: '0.005', termStart: '2026-01-01', termEnd: '2026-12-31' };
    const base = { ...good(), billingModel: 'CREDIT_PACKAGE', usageBased: undefined };
    await refused('month 13', { ...base, creditPackage: { ...pkg, termStart: '2026-13-01', termEnd: '2026-14-31' } }, invalid('creditPackage.termStart'));
    await refused('February 30th', { ...base, creditPackage: { ...pkg, termEnd: '2026-02-30', termStart: '2026-01-01' } }, invalid('creditPackage.termEnd'));
  });

  it('refuses a bad time zone', async () => {
    await refused('unknown zone', { ...good(), timezone: 'Mars/Olympus_Mons' }, invalid('timezone'));
    await refused('empty zone', { ...good(), timezone: '' }, invalid('timezone'));
    await refused('nonsense zone', { ...good(), timezone: 'not a zone' }, invalid('timezone'));
  });

  it('refuses a bad base URL', async () => {
    await refused('not a URL', { ...good(), baseUrl: 'not a url' }, invalid('baseUrl'));
    await refused('ftp URL', { ...good(), baseUrl: 'ftp://api.heygen.com' }, invalid('baseUrl'));
    await refused('javascript URL', { ...good(), baseUrl: 'javascript:alert(1)' }, invalid('baseUrl'));
    await refused('file URL', { ...good(), baseUrl: 'file:///etc/passwd' }, invalid('baseUrl'));
    await refused('empty URL', { ...good(), baseUrl: '' }, invalid('baseUrl'));
  });

  it('refuses a bad key, name or concurrency limit', async () => {
    await refused('short API key', { ...good(), apiKey: 'short' }, invalid('apiKey'));
    await refused('blank API key', { ...good(), apiKey: '          ' }, invalid('apiKey'));
    await refused('empty name', { ...good(), name: '   ' }, invalid('name'));
    await refused('duplicate name', { ...good(), name: 'Primary' }, invalid('name'));
    await refused('zero concurrency', { ...good(), concurrencyLimit: 0 }, invalid('concurrencyLimit'));
    await refused('negative concurrency', { ...good(), concurrencyLimit: -3 }, invalid('concurrencyLimit'));
    await refused('absurd concurrency', { ...good(), concurrencyLimit: 1_000_000 }, invalid('concurrencyLimit'));
  });

  it('refuses a name PostgreSQL cannot store (NUL character) as a ValidationError', async () => {
    await refused('name with NUL', { ...good(), name: 'Evil\u0000Account' }, invalid('name'));
  });
});

describe('setBudget: bad limits and ids', () => {
  const base = () => ({ orgUnitId: tree.teamId, accountId: tree.accountId, window: 'MONTHLY', limitCreditSeconds: '1000' });
  const refused = (label: string, input: Record<string, unknown>, expected: Expected) => expectRefused(label, SET_BUDGET, 'setBudget', input, expected);

  it('refuses negative limits', async () => {
    await refused('negative limit', { ...base(), limitCreditSeconds: '-5' }, invalid('limitCreditSeconds'));
    await refused('negative decimal limit', { ...base(), limitCreditSeconds: '-0.000001' }, invalid('limitCreditSeconds'));
  });

  it('refuses bad thresholds', async () => {
    await refused('zero threshold', { ...base(), alertThresholds: [0, 50] }, invalid('alertThresholds'));
    await refused('huge threshold', { ...base(), alertThresholds: [5000] }, invalid('alertThresholds'));
    await refused('too many thresholds', { ...base(), alertThresholds: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] }, invalid('alertThresholds'));
  });

  it('refuses unknown units and accounts', async () => {
    await refused('unknown unit', { ...base(), orgUnitId: encodeGlobalID('OrgUnit', randomUUID()) }, notFound);
    await refused('garbage unit', { ...base(), orgUnitId: 'garbage' }, notFound);
    await refused('unknown account', { ...base(), accountId: encodeGlobalID('Account', randomUUID()) }, notFound);
    await refused('garbage account', { ...base(), accountId: 'garbage' }, notFound);
    await refused('unit id given as account', { ...base(), accountId: tree.teamId }, notFound);
  });
});

describe('createOrgUnit: kinds must go deeper', () => {
  const refused = (label: string, input: Record<string, unknown>, expected: Expected) => expectRefused(label, CREATE_UNIT, 'createOrgUnit', input, expected);

  it('refuses a unit at the same or a higher level than its parent', async () => {
    await refused('DEPARTMENT under TEAM', { kind: 'DEPARTMENT', name: 'Sales', parentId: tree.teamId }, invalid('kind'));
    await refused('TEAM under TEAM', { kind: 'TEAM', name: 'Sub-team', parentId: tree.teamId }, invalid('kind'));
    await refused('PROJECT under PROJECT', { kind: 'PROJECT', name: 'Sub-project', parentId: tree.projectId }, invalid('kind'));
    await refused('ORGANIZATION under DEPARTMENT', { kind: 'ORGANIZATION', name: 'Acme 2', parentId: tree.deptId }, invalid('kind'));
    await refused('DEPARTMENT under DEPARTMENT', { kind: 'DEPARTMENT', name: 'Sub-dept', parentId: tree.deptId }, invalid('kind'));
  });

  it('refuses a second root, and a non-root without parent', async () => {
    await refused('second ORGANIZATION', { kind: 'ORGANIZATION', name: 'Other Corp' }, invalid('parentId'));
    await refused('TEAM without parent', { kind: 'TEAM', name: 'Orphans' }, invalid('parentId'));
  });

  it('refuses bad names', async () => {
    await refused('empty name', { kind: 'TEAM', name: '  ', parentId: tree.deptId }, invalid('name'));
    await refused('201-character name', { kind: 'TEAM', name: 'n'.repeat(201), parentId: tree.deptId }, invalid('name'));
    await refused('sibling with the same name', { kind: 'TEAM', name: 'Video', parentId: tree.deptId }, invalid('name'));
  });

  it('refuses a name PostgreSQL cannot store (NUL character) as a ValidationError', async () => {
    await refused('unit name with NUL', { kind: 'TEAM', name: 'Bad\u0000Team', parentId: tree.deptId }, invalid('name'));
  });

  it('refuses unknown parents and accounts', async () => {
    await refused('unknown parent', { kind: 'TEAM', name: 'Ghosts', parentId: encodeGlobalID('OrgUnit', randomUUID()) }, notFound);
    await refused('garbage parent', { kind: 'TEAM', name: 'Ghosts', parentId: 'garbage' }, notFound);
    await refused('unknown account', { kind: 'TEAM', name: 'Ghosts', parentId: tree.deptId, accountId: encodeGlobalID('Account', randomUUID()) }, notFound);
  });
});

describe('issueServiceToken: bad input', () => {
  const refused = (label: string, input: Record<string, unknown>, expected: Expected) => expectRefused(label, ISSUE_TOKEN, 'issueServiceToken', input, expected);
  it('refuses a team, a past expiry, an expiry too far away, an empty name and unknown units', async () => {
    await refused('token for a team', { orgUnitId: tree.teamId, name: 'x' }, invalid('orgUnitId'));
    await refused('expiry in the past', { orgUnitId: tree.projectId, name: 'x', expiresAt: '2020-01-01T00:00:00Z' }, invalid('expiresAt'));
    await refused('expiry in 2 years', { orgUnitId: tree.projectId, name: 'x', expiresAt: new Date(Date.now() + 2 * 366 * 86400_000).toISOString() }, invalid('expiresAt'));
    await refused('empty name', { orgUnitId: tree.projectId, name: ' ' }, invalid('name'));
    await refused('unknown unit', { orgUnitId: encodeGlobalID('OrgUnit', randomUUID()), name: 'x' }, notFound);
  });
});

describe('input the schema itself refuses: a client error, never an internal one, nothing written', () => {
  async function expectSchemaRefusal(label: string, query: string, input: Record<string, unknown>) {
    const before = await counts();
    const r = await gql(label, query, { input });
    expect(r.status, `${label}: ${r.text}`).toBe(200);
    expect(r.body.data ?? null, label).toBeNull();
    expect(r.body.errors?.length, label).toBeGreaterThan(0);
    expect(r.body.errors!.every((e: any) => ['BAD_USER_INPUT', 'GRAPHQL_VALIDATION_FAILED'].includes(e.extensions?.code) || e.extensions?.code === undefined), r.text).toBe(true);
    expect(await counts(), label).toEqual(before);
  }

  it('malformed scalars and enums', async () => {
    await expectSchemaRefusal('unknown job kind', SUBMIT, { projectId: tree.projectId, kind: 'PODCAST', request: avatarRequest() });
    await expectSchemaRefusal('request null', SUBMIT, { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: null });
    await expectSchemaRefusal('estimatedSeconds as a number', SUBMIT, { projectId: tree.projectId, kind: 'VIDEO_AGENT', request: agent(), estimatedSeconds: 30 });
    await expectSchemaRefusal('malformed budget limit', SET_BUDGET, { orgUnitId: tree.teamId, window: 'MONTHLY', limitCreditSeconds: 'lots' });
    await expectSchemaRefusal('budget limit in exponent form', SET_BUDGET, { orgUnitId: tree.teamId, window: 'MONTHLY', limitCreditSeconds: '1e9' });
    await expectSchemaRefusal('budget limit with 7 decimals', SET_BUDGET, { orgUnitId: tree.teamId, window: 'MONTHLY', limitCreditSeconds: '1.0000001' });
    await expectSchemaRefusal('unknown window', SET_BUDGET, { orgUnitId: tree.teamId, window: 'HOURLY', limitCreditSeconds: '10' });
    await expectSchemaRefusal('malformed MMC', CREATE_ACCOUNT, {
      name: 'Bad MMC',
      billingModel: 'USAGE_BASED',
      usageBased: { ...TIER_5K, mmcUsd: 'five thousand' },
      apiKey: 'sk_test_another_key_0003',
    });
    await expectSchemaRefusal('unknown org unit kind', CREATE_UNIT, { kind: 'DIVISION', name: 'X', parentId: tree.orgId });
  });
});

describe('malformed pagination cursors are client errors (VALIDATION_FAILED), not internal errors', () => {
  for (const [label, query] of [
    ['jobs(after: "garbage")', `{ jobs(first: 5, after: "garbage") { edges { node { id } } } }`],
    ['jobs(after: "<date>|not-a-uuid")', `{ jobs(first: 5, after: "2026-01-01T00:00:00.000Z|not-a-uuid") { edges { node { id } } } }`],
    ['jobs(before: "<date>|not-a-uuid")', `{ jobs(last: 5, before: "2026-01-01T00:00:00.000Z|not-a-uuid") { edges { node { id } } } }`],
    ['orgUnits(after: "garbage")', `{ orgUnits(first: 5, after: "garbage") { edges { node { id } } } }`],
  ] as const) {
    it(label, async () => {
      const r = await gql(label, query, {});
      expect(r.status, label).toBe(200);
      expect(r.body.data ?? null).toBeNull();
      expect(r.body.errors?.[0]?.extensions?.code, `${label}: ${r.text}`).toBe('VALIDATION_FAILED');
    });
  }
});

describe('no response of this file carries an internal error', () => {
  it('every error is expected, masked and free of driver details', () => {
    expect(responses.length).toBeGreaterThan(100);
    const offenders: string[] = [];
    for (const r of responses) {
      const messages: { code?: string; message: string }[] = [
        ...(r.body.errors ?? []).map((e: any) => ({ code: e.extensions?.code, message: String(e.message) })),
        ...Object.values(r.body.data ?? {})
          .filter((v: any) => v && typeof v === 'object' && typeof v.__typename === 'string' && v.__typename.endsWith('Error'))
          .map((v: any) => ({ code: v.code, message: String(v.message) })),
      ];
      for (const m of messages) {
        if (m.code === 'INTERNAL_SERVER_ERROR' || /Failed query|violates|stack|node_modules|\/src\/|\.ts:\d|\.js:\d|at \w+ \(/i.test(m.message)) {
          offenders.push(`${r.label}: ${m.code} ${m.message}`);
        }
      }
      if (/"stack"|Failed query|violates|node_modules|\/work\//.test(r.text)) offenders.push(`${r.label}: raw body ${r.text.slice(0, 300)}`);
    }
    expect(offenders).toEqual([]);
  });
});

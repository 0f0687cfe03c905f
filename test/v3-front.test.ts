// The HeyGen-compatible /v3 front, as an app moving from HeyGen sees it. The app below is written from HeyGen's
// v3 documentation only (plain fetch, X-Api-Key, JSON): no gateway module is imported by it. It runs against the
// gateway with a service token, and against the simulator (standing in for HeyGen) with the raw key, and both runs
// must give the same JSON shapes. Every answer of the gateway is checked for the company's key.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { SUBMIT, avatarRequest, createTree, issueServiceToken, setBudget, type Tree } from './support/fixtures.js';
import { sql } from 'drizzle-orm';
import { queryRows } from '../src/db/client.js';
import { mp4, startMediaServer, wav, type MediaServer } from './support/media.js';

const COMPANY_KEY = 'sk_test_primary_key_0001';
const TIGHT_KEY = 'sk_test_tight_conc_0002';
const PACKAGE_KEY = 'sk_test_package_key_03';

// ----- the app: HeyGen v3 as documented ------------------------------------------------------------------------

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  body: any;
}

/** Every answer the gateway gave in this file, headers and body, for the key check. */
const gatewayAnswers: string[] = [];

function heygenApp(baseUrl: string, apiKey: string, extraHeaders: Record<string, string> = {}, record = false) {
  async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers: {
        'X-Api-Key': apiKey,
        Accept: 'application/json',
        ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
        ...extraHeaders,
        ...headers,
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    if (record) gatewayAnswers.push(`${res.status}\n${[...res.headers].map(([k, v]) => `${k}: ${v}`).join('\n')}\n\n${text}`);
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = null;
    }
    return { status: res.status, headers: res.headers, text, body: parsed };
  }
  return {
    get: (path: string, headers?: Record<string, string>) => call('GET', path, undefined, headers),
    post: (path: string, body: unknown, headers?: Record<string, string>) => call('POST', path, body, headers),
    call,
  };
}
type App = ReturnType<typeof heygenApp>;

/** The app's whole session: what it reads and creates, each answer kept for the shape comparison. */
async function appSession(app: App, keyPrefix: string, mediaUrl: (path: string) => string): Promise<Record<string, unknown>> {
  const seen: Record<string, unknown> = {};
  const avatars = await app.get('/v3/avatars');
  expect(avatars.status).toBe(200);
  seen.avatars = avatars.body;
  const looks = await app.get('/v3/avatars/looks');
  expect(looks.status).toBe(200);
  seen.looks = looks.body;
  const voices = await app.get('/v3/voices');
  expect(voices.status).toBe(200);
  seen.voices = voices.body;
  expect(looks.body.data.length).toBeGreaterThan(0);
  expect(voices.body.data.length).toBeGreaterThan(0);

  const created = await app.post(
    '/v3/videos',
    { type: 'avatar', avatar_id: looks.body.data[0].id, voice_id: voices.body.data[0].voice_id, script: 'Welcome to the team. This is a short hello from us.' },
    { 'Idempotency-Key': `${keyPrefix}-video-1` },
  );
  expect(created.status).toBe(200);
  seen.create = created.body;
  const videoId: string = created.body.data.video_id;
  expect(typeof videoId).toBe('string');

  const done = await waitFor(async () => {
    const v = await app.get(`/v3/videos/${videoId}`);
    expect(v.status).toBe(200);
    expect(['pending', 'processing', 'completed']).toContain(v.body.data.status);
    return v.body.data.status === 'completed' ? v : null;
  });
  seen.video = done.body;
  const media = await fetch(done.body.data.video_url);
  expect(media.status).toBe(200);
  expect((await media.arrayBuffer()).byteLength).toBeGreaterThan(0);

  const statuses = await app.get(`/v3/videos/statuses?video_ids=${videoId}`);
  expect(statuses.status).toBe(200);
  expect(statuses.body.data[0]).toMatchObject({ video_id: videoId, status: 'completed' });
  seen.statuses = statuses.body;

  const translation = await app.post(
    '/v3/video-translations',
    { video: { type: 'asset_id', asset_id: 'src_onboarding' }, output_languages: ['Spanish (Spain)', 'French (France)', 'German (Germany)'] },
    { 'Idempotency-Key': `${keyPrefix}-translation-1` },
  );
  expect(translation.status).toBe(200);
  expect(translation.body.data.video_translation_ids).toHaveLength(3);
  seen.translation = translation.body;
  const one = await app.get(`/v3/video-translations/${translation.body.data.video_translation_ids[0]}`);
  expect(one.status).toBe(200);
  expect(one.body.data.output_language).toBe('Spanish (Spain)');
  seen.translationDetail = one.body;

  const templates = await app.get('/v3/templates');
  expect(templates.status).toBe(200);
  seen.templates = templates.body;
  const template = await app.get(`/v3/templates/${templates.body.data[0].id}`);
  expect(template.status).toBe(200);
  seen.template = template.body;
  const fromTemplate = await app.post(`/v3/templates/${templates.body.data[0].id}`, { variables: { name: { name: 'name', type: 'text', properties: { content: 'Ada' } } } });
  expect(fromTemplate.status).toBe(200);
  expect(fromTemplate.body.data.status).toBe('pending');
  seen.templateVideo = fromTemplate.body;

  const agent = await app.post('/v3/video-agents', { prompt: 'A 20 second intro to our onboarding programme' });
  expect(agent.status).toBe(200);
  seen.agent = agent.body;
  const session = await app.get(`/v3/video-agents/${agent.body.data.session_id}`);
  expect(session.status).toBe(200);
  seen.session = session.body;

  for (const path of ['/v3/brand-kits', '/v3/video-translations/languages', '/v3/video-agents/styles', `/v3/voices/${voices.body.data[0].voice_id}`]) {
    const answer = await app.get(path);
    expect(answer.status, path).toBe(200);
    seen[path] = answer.body;
  }

  const list = await app.get('/v3/videos');
  expect(list.status).toBe(200);
  expect(list.body.data.map((v: { id: string }) => v.id)).toContain(videoId);
  seen.list = list.body;

  // A lipsync, polled to completed (by its id and in the bulk status read).
  const lipsync = await app.post(
    '/v3/lipsyncs',
    { video: { type: 'url', url: mediaUrl('/v.mp4') }, audio: { type: 'url', url: mediaUrl('/a.wav') } },
    { 'Idempotency-Key': `${keyPrefix}-lipsync-1` },
  );
  expect(lipsync.status).toBe(200);
  seen.lipsyncCreate = lipsync.body;
  const lipsyncId: string = lipsync.body.data.lipsync_id;
  expect(typeof lipsyncId).toBe('string');
  const lipsyncDone = await waitFor(async () => {
    const l = await app.get(`/v3/lipsyncs/${lipsyncId}`);
    expect(l.status).toBe(200);
    expect(['pending', 'running', 'completed']).toContain(l.body.data.status);
    return l.body.data.status === 'completed' ? l : null;
  });
  seen.lipsync = lipsyncDone.body;
  const lipsyncStatuses = await app.get(`/v3/lipsyncs/statuses?lipsync_ids=${lipsyncId}`);
  expect(lipsyncStatuses.status).toBe(200);
  expect(lipsyncStatuses.body.data[0]).toMatchObject({ video_id: lipsyncId, status: 'completed' });
  seen.lipsyncStatuses = lipsyncStatuses.body;

  // A batch of 5 videos (202 Accepted), followed to the end; each item is a video read by its own id.
  const batch = await app.post(
    '/v3/videos/batches',
    {
      title: 'five hellos',
      videos: Array.from({ length: 5 }, (_, i) => ({ type: 'avatar', avatar_id: looks.body.data[0].id, voice_id: voices.body.data[0].voice_id, script: `Hello number ${i + 1} from the batch.` })),
    },
    { 'Idempotency-Key': `${keyPrefix}-batch-1` },
  );
  expect(batch.status).toBe(202);
  expect(batch.body.data).toMatchObject({ status: 'processing', total_items: 5 });
  seen.batchCreate = batch.body;
  const batchId: string = batch.body.data.batch_id;
  const batchDone = await waitFor(async () => {
    const b = await app.get(`/v3/videos/batches/${batchId}`);
    expect(b.status).toBe(200);
    return b.body.data.status === 'processing' ? null : b;
  }, 20_000);
  expect(batchDone.body.data).toMatchObject({ batch_id: batchId, status: 'completed', total_items: 5 });
  expect(batchDone.body.data.counts_by_status.completed).toBe(5);
  seen.batch = batchDone.body;
  const itemIds: string[] = batchDone.body.data.items.map((i: { video_id: string }) => i.video_id);
  expect(itemIds).toHaveLength(5);
  const item = await app.get(`/v3/videos/${itemIds[4]}`);
  expect(item.status).toBe(200);
  expect(item.body.data.status).toBe('completed');
  seen.batchItem = item.body;
  const batchStatuses = await app.get(`/v3/videos/statuses?batch_ids=${batchId}`);
  expect(batchStatuses.status).toBe(200);
  expect(batchStatuses.body.data.map((r: { video_id: string }) => r.video_id)).toEqual(itemIds);
  seen.batchStatuses = batchStatuses.body;

  // Text to speech: answered complete.
  const speech = await app.post('/v3/voices/speech', { text: 'Hello from the team, in a synthetic voice.', voice_id: voices.body.data[0].voice_id });
  expect(speech.status).toBe(200);
  expect(typeof speech.body.data.audio_url).toBe('string');
  expect(speech.body.data.duration).toBeGreaterThan(0);
  seen.speech = speech.body;

  const me = await app.get('/v3/users/me');
  expect(me.status).toBe(200);
  seen.me = me.body;
  return seen;
}

/** Keys and types, recursively. A null on either side matches any type (HeyGen's schema marks those nullable). */
function expectSameShape(a: unknown, b: unknown, path = '$'): void {
  if (a === null || b === null) return;
  const kind = (v: unknown) => (Array.isArray(v) ? 'array' : typeof v);
  expect(kind(a), `type at ${path}`).toBe(kind(b));
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length > 0 && b.length > 0) expectSameShape(a[0], b[0], `${path}[0]`);
    return;
  }
  if (a && typeof a === 'object' && b && typeof b === 'object') {
    expect(Object.keys(a).sort(), `keys at ${path}`).toEqual(Object.keys(b).sort());
    for (const k of Object.keys(a)) expectSameShape((a as any)[k], (b as any)[k], `${path}.${k}`);
  }
}

describe('the shape comparison', () => {
  it('tells different keys and different types apart (so the comparison below can fail)', () => {
    expect(() => expectSameShape({ data: { a: 1 } }, { data: { a: 'x' } })).toThrow();
    expect(() => expectSameShape({ data: { a: 1 } }, { data: { a: 1, b: 2 } })).toThrow();
    expect(() => expectSameShape({ data: [{ a: 1 }] }, { data: [{ b: 1 }] })).toThrow();
    expect(() => expectSameShape({ data: { a: null } }, { data: { a: 'x' } })).not.toThrow();
  });
});

// ----- the gateway ---------------------------------------------------------------------------------------------

let h: Harness;
let tree: Tree;
let tight: Tree;
let serviceToken: string;
let otherServiceToken: string;
let tightToken: string;
let gateway: App;
let media: MediaServer;

beforeAll(async () => {
  media = await startMediaServer({
    '/v.mp4': { body: mp4(20_000), type: 'video/mp4' },
    '/a.wav': { body: wav(5_000), type: 'audio/wav' },
  });
  h = await startHarness({
    simAccounts: [
      { apiKey: COMPANY_KEY, concurrencyLimit: 100 },
      { apiKey: TIGHT_KEY, concurrencyLimit: 100 },
      { apiKey: PACKAGE_KEY, concurrencyLimit: 100 },
    ],
  });
  tree = await createTree(h);
  tight = await createTree(h, { name: 'Tight', apiKey: TIGHT_KEY, concurrencyLimit: 1 });
  await setBudget(h, { orgUnitId: tree.projectId, window: 'MONTHLY', enforcement: 'HARD', limitCreditSeconds: '500000' });
  serviceToken = (await issueServiceToken(h, tree.projectId)).token;
  otherServiceToken = (await issueServiceToken(h, tree.otherProjectId)).token;
  tightToken = (await issueServiceToken(h, tight.projectId)).token;
  gateway = heygenApp(h.url, serviceToken, {}, true);
});

afterAll(async () => {
  // The company key never left the gateway: no header and no body of any answer in this file carries it.
  expect(gatewayAnswers.length).toBeGreaterThan(0);
  for (const answer of gatewayAnswers) {
    expect(answer).not.toContain(COMPANY_KEY);
    expect(answer).not.toContain(TIGHT_KEY);
  }
  await h?.close();
  await media?.close();
});

describe('an app written for HeyGen v3, pointed at the gateway', () => {
  it('lists avatars and voices, creates a video, polls it to completed, downloads it, translates into 3 languages, lipsyncs, creates a batch of 5 videos and follows it, TTS, reads users/me; the same session against HeyGen itself gives the same JSON shapes', async () => {
    const viaGateway = await appSession(gateway, 'gw', media.url);
    const viaHeygen = await appSession(heygenApp(h.sim.url, COMPANY_KEY), 'direct', media.url);
    for (const key of Object.keys(viaHeygen)) expectSameShape(viaGateway[key], viaHeygen[key], key);
    // The gateway's job id (its callback_id to HeyGen) is not shown to the app.
    expect(JSON.stringify(viaGateway.video)).not.toMatch(/"callback_id":"/);
    // Behind the front, the batch is one job of 5 items followed to the end and settled per item; the lipsync and
    // the speech are settled jobs too.
    const settled = await waitFor(async () => {
      const rows = await queryRows<{ kind: string; status: string; items: number; completed: number; actual: string }>(
        h.services.db,
        sql`select j.kind, j.status, count(i.id)::int as items, count(i.id) filter (where i.status = 'completed')::int as completed, j.actual_micro_cs::text as actual
              from jobs j join job_items i on i.job_id = j.id
             where j.kind in ('VIDEO_BATCH', 'LIPSYNC', 'TTS') group by j.id order by j.kind`,
      );
      return rows.length === 3 && rows.every((r) => r.status === 'SUCCEEDED') ? rows : null;
    }, 20_000);
    expect(settled.map((r) => [r.kind, r.items, r.completed])).toEqual([
      ['LIPSYNC', 1, 1],
      ['TTS', 1, 1],
      ['VIDEO_BATCH', 5, 5],
    ]);
    expect(settled.every((r) => BigInt(r.actual) > 0n)).toBe(true);
    // users/me is the project's own view: what it may still spend under its HARD budget, in credit-seconds and USD.
    const me = (viaGateway.me as any).data;
    expect(me.billing_type).toBe('usage_based');
    expect(me.usage_based.included_credits).toBe(500000);
    expect(me.usage_based.remaining_credits).toBeGreaterThan(0);
    expect(me.usage_based.remaining_credits).toBeLessThan(500000);
    expect(me.usage_based.spending_cap_usd).toBeCloseTo(500000 * 0.00833, 2);
    expect(me.usage_based.spending_current_usd).toBeGreaterThan(0);
    // The company's own numbers (HeyGen's answer to the raw key) are not what the project sees.
    expect((viaHeygen.me as any).data.usage_based.included_credits).not.toBe(500000);
  });

  it('the video list shows only the caller\'s own jobs', async () => {
    const other = heygenApp(h.url, otherServiceToken, {}, true);
    const theirs = await other.post('/v3/videos', avatarRequest());
    expect(theirs.status).toBe(200);
    const mine = await gateway.get('/v3/videos?limit=100');
    expect(mine.status).toBe(200);
    const ids = mine.body.data.map((v: { id: string }) => v.id);
    expect(ids.length).toBeGreaterThan(0);
    expect(ids).not.toContain(theirs.body.data.video_id);
    const theirList = await other.get('/v3/videos');
    expect(theirList.body.data.map((v: { id: string }) => v.id)).toEqual([theirs.body.data.video_id]);
  });

  it('the list pages with limit and next_token, newest first, without overlap', async () => {
    const first = await gateway.get('/v3/videos?limit=1');
    expect(first.status).toBe(200);
    expect(first.body.data).toHaveLength(1);
    expect(first.body.has_more).toBe(true);
    const second = await gateway.get(`/v3/videos?limit=1&token=${first.body.next_token}`);
    expect(second.body.data).toHaveLength(1);
    expect(second.body.data[0].id).not.toBe(first.body.data[0].id);
    const bad = await gateway.get('/v3/videos?limit=1000');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'validation_error', param: 'limit' });
  });

  it("users/me shows a budget's limit only to those who may see it, as refusals do", async () => {
    await setBudget(h, { orgUnitId: tree.teamId, window: 'MONTHLY', enforcement: 'HARD', limitCreditSeconds: '400000' });
    // What is left changes when an earlier job of the tree settles (its hold becomes its lower cost): the two
    // callers below are compared once no hold of the tree is open.
    await waitFor(async () => {
      const [open] = await queryRows<{ n: number }>(h.services.db, sql`select count(*)::int as n from jobs where project_id = ${decodeGlobalID(tree.projectId).id} and reserved_micro_cs > 0`);
      return open!.n === 0;
    }, 30_000);
    const service = (await gateway.get('/v3/users/me')).body.data.usage_based;
    expect(service.included_credits).toBeNull();
    expect(service.spending_cap_usd).toBeNull();
    expect(service.remaining_credits).toBeGreaterThan(0);
    expect(service.remaining_credits).toBeLessThanOrEqual(400000);
    const member = await h.services.tokens.issueOperatorToken({ name: 'team-lead', role: 'MEMBER', unitId: decodeGlobalID(tree.teamId).id });
    const asMember = (await heygenApp(h.url, member, { 'X-Gateway-Project': tree.projectId }, true).get('/v3/users/me')).body.data.usage_based;
    expect(asMember.included_credits).toBe(400000);
    expect(asMember.remaining_credits).toBe(service.remaining_credits);
  });

  it('users/me counts the pool where it binds (a credit package): what is left, its size only for who may read the account totals', async () => {
    const pkg = await createTree(h, {
      name: 'Package',
      apiKey: PACKAGE_KEY,
      creditPackage: { totalCreditSeconds: '1000', pricePerCreditSecondUsd: '0.008', termStart: '2024-01-01', termEnd: '2030-12-31' },
    });
    const app = heygenApp(h.url, (await issueServiceToken(h, pkg.projectId)).token, {}, true);
    const before = (await app.get('/v3/users/me')).body.data.usage_based;
    expect(before).toMatchObject({ remaining_credits: 1000, included_credits: null, spending_cap_usd: null });
    const created = await app.post('/v3/videos', avatarRequest());
    expect(created.status).toBe(200);
    // The job renders in 50 ms: read while it is held (1000 - its hold of 52.8) or once it settled (1000 - its cost),
    // with its state read before and after, the same both times.
    const stateOf = async () => {
      const [row] = await queryRows<{ settled: boolean; actual: string | null }>(
        h.services.db,
        sql`select j.settled_at is not null as settled, j.actual_micro_cs::text as actual from jobs j
              join job_items i on i.job_id = j.id where i.upstream_id = ${created.body.data.video_id as string}`,
      );
      expect(row).toBeDefined();
      return JSON.stringify(row);
    };
    for (let attempt = 1; ; attempt++) {
      expect(attempt, 'the job kept changing around every read').toBeLessThan(50);
      const state = await stateOf();
      const after = (await app.get('/v3/users/me')).body.data.usage_based;
      if ((await stateOf()) !== state) continue;
      const { settled, actual } = JSON.parse(state) as { settled: boolean; actual: string | null };
      expect(after.remaining_credits).toBeCloseTo(1000 - (settled ? Number(actual) / 1e6 : 52.8), 6);
      break;
    }
    const admin = (await heygenApp(h.url, h.adminToken, { 'X-Gateway-Project': pkg.projectId }, true).get('/v3/users/me')).body.data.usage_based;
    expect(admin).toMatchObject({ included_credits: 1000, spending_cap_usd: 8 });
    const tooBig = await app.post('/v3/videos', avatarRequest(Array.from({ length: 800 }, () => 'word').join(' ')));
    expect(tooBig.status).toBe(402);
    expect(tooBig.body.error.code).toBe('budget_exceeded');
    expect(tooBig.body.error.param).not.toMatch(/limit_credit_seconds/);
  });

  it('GraphQL Job.outputs and UpstreamItem.output show the video, thumbnail and duration, read fresh from HeyGen', async () => {
    const created = await gateway.post('/v3/videos', avatarRequest());
    const videoId = created.body.data.video_id as string;
    await waitFor(async () => (await gateway.get(`/v3/videos/${videoId}`)).body.data.status === 'completed');
    const res = await h.gql(
      `query($p: ID!) { jobs(first: 50, filter: { projectId: $p }) { edges { node { upstreamIds outputs { upstreamId status videoUrl thumbnailUrl durationSeconds } upstreamItems { output { videoUrl } } } } } }`,
      { p: tree.projectId },
    );
    expect(res.errors).toBeUndefined();
    const job = res.data.jobs.edges.map((e: any) => e.node).find((n: any) => n.upstreamIds.includes(videoId));
    expect(job.outputs[0]).toMatchObject({ upstreamId: videoId, status: 'completed' });
    expect(job.outputs[0].videoUrl).toBe(h.sim.job(videoId) && `${h.sim.url}/_sim/media/${videoId}.mp4`);
    expect(job.outputs[0].thumbnailUrl).toContain(videoId);
    expect(Number(job.outputs[0].durationSeconds)).toBeGreaterThan(0);
    expect(job.upstreamItems[0].output.videoUrl).toBe(job.outputs[0].videoUrl);
  });
});

describe('refusals in HeyGen\'s envelope', () => {
  const envelope = (a: Answer) => {
    expect(Object.keys(a.body)).toEqual(['error']);
    expect(Object.keys(a.body.error).sort()).toEqual(['code', 'doc_url', 'message', 'param']);
    return a.body.error;
  };

  it('a bad or missing key is HeyGen\'s 401 unauthorized', async () => {
    for (const app of [heygenApp(h.url, 'not-a-token', {}, true), heygenApp(h.url, COMPANY_KEY, {}, true)]) {
      const a = await app.get('/v3/voices');
      expect(a.status).toBe(401);
      expect(envelope(a).code).toBe('unauthorized');
    }
    const res = await fetch(`${h.url}/v3/users/me`);
    expect(res.status).toBe(401);
    gatewayAnswers.push(await res.text());
    // Authorization: Bearer works as X-Api-Key does.
    const bearer = await fetch(`${h.url}/v3/users/me`, { headers: { authorization: `Bearer ${serviceToken}` } });
    expect(bearer.status).toBe(200);
    gatewayAnswers.push(await bearer.text());
  });

  it('validation: 400 validation_error with the field as param; a bad Idempotency-Key too; nothing is written', async () => {
    const count = async () => (await queryRows<{ n: number }>(h.services.db, sql`select count(*)::int as n from jobs`))[0]!.n;
    const before = await count();
    const bad = await gateway.post('/v3/videos', { type: 'avatar', avatar_id: 'anna_office', voice_id: 'voice_en_f_1', script: 42 });
    expect(bad.status).toBe(400);
    expect(envelope(bad)).toMatchObject({ code: 'validation_error', param: 'script' });
    const key = await gateway.post('/v3/videos', avatarRequest(), { 'Idempotency-Key': 'has space' });
    expect(key.status).toBe(400);
    expect(envelope(key)).toMatchObject({ code: 'validation_error', param: 'Idempotency-Key' });
    const notJson = await fetch(`${h.url}/v3/videos`, { method: 'POST', headers: { 'x-api-key': serviceToken, 'content-type': 'application/json' }, body: '{"type":' });
    const notJsonText = await notJson.text();
    gatewayAnswers.push(notJsonText);
    expect(notJson.status).toBe(400);
    expect(JSON.parse(notJsonText).error.code).toBe('validation_error');
    expect(await count()).toBe(before);
  });

  it('budget: 402 budget_exceeded with the unit, limit and available amount in message and param', async () => {
    const { budget } = await setBudget(h, { orgUnitId: tree.otherProjectId, window: 'MONTHLY', enforcement: 'HARD', limitCreditSeconds: '10' });
    const other = heygenApp(h.url, otherServiceToken, {}, true);
    const refused = await other.post('/v3/videos', avatarRequest());
    expect(refused.status).toBe(402);
    const error = envelope(refused);
    expect(error.code).toBe('budget_exceeded');
    expect(error.message).toContain('Shorts');
    expect(error.message).toMatch(/limit 10 cs/);
    expect(error.message).toMatch(/available/);
    // How to ask for more: the mutation and the refusing budget's global id.
    expect(error.message).toContain(`ask for more with requestBudgetIncrease(budgetId: "${budget.id}")`);
    expect(error.param).toMatch(/unit="Shorts"/);
    expect(error.param).toMatch(/limit_credit_seconds=10\b/);
    expect(error.param).toMatch(/available_credit_seconds=/);
  });

  it('concurrency by default (and with X-Gateway-Queue: false): 429 with Retry-After, as HeyGen answers; the app\'s own retry succeeds once the running job is done', async () => {
    const app = heygenApp(h.url, tightToken, {}, true);
    // The tight account's one slot taken by a job, then more creates: refused (unless the first was already done and
    // settled in between: then try again).
    let refused: Answer[] | null = null;
    for (let i = 0; i < 10 && !refused; i++) {
      const running = await waitFor(async () => {
        const a = await app.post('/v3/videos', avatarRequest(), { 'Idempotency-Key': `tight-refused-running-${i}` });
        return a.status === 200 ? a : null;
      }, 20_000, 100);
      expect(typeof running.body.data.video_id).toBe('string');
      const byDefault = await app.post('/v3/videos', avatarRequest());
      if (byDefault.status === 200) continue;
      const optedOut = await app.post('/v3/videos', avatarRequest(), { 'X-Gateway-Queue': 'false' });
      if (optedOut.status === 200) continue;
      refused = [byDefault, optedOut];
    }
    if (!refused) throw new Error('no create was ever refused');
    for (const a of refused) {
      expect(a.status).toBe(429);
      expect(envelope(a).code).toBe('rate_limit_exceeded');
      expect(Number(a.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    // The app retries, as HeyGen's own clients do on 429, until the running job is done and settled.
    const retried = await waitFor(async () => {
      const a = await app.post('/v3/videos', avatarRequest(), { 'Idempotency-Key': 'tight-retry-1' });
      if (a.status === 429) return null;
      return a;
    }, 20_000, 100);
    expect(retried.status).toBe(200);
    expect(typeof retried.body.data.video_id).toBe('string');
  });

  it('concurrency with X-Gateway-Queue: true: the job waits in the queue (202 pending, its place, Retry-After); the same Idempotency-Key answers its video id once it started', async () => {
    const app = heygenApp(h.url, tightToken, { 'X-Gateway-Queue': 'true' }, true);
    // The tight account's one slot taken by a job, then another: it waits (unless the first was already done and
    // settled in between: then try again).
    let queued: Answer | null = null;
    let key = '';
    for (let i = 0; i < 10 && !queued; i++) {
      const running = await waitFor(async () => {
        const a = await app.post('/v3/videos', avatarRequest(), { 'Idempotency-Key': `tight-queue-running-${i}` });
        return a.status === 200 ? a : null;
      }, 20_000, 100);
      expect(typeof running.body.data.video_id).toBe('string');
      key = `tight-queue-${i}`;
      const a = await app.post('/v3/videos', avatarRequest(), { 'Idempotency-Key': key });
      if (a.status !== 200) queued = a;
    }
    if (!queued) throw new Error('no job ever had to wait');
    expect(queued.status).toBe(202);
    expect(queued.body.data).toMatchObject({ status: 'pending', queue_position: 1 });
    expect(typeof queued.body.data.gateway_job_id).toBe('string');
    expect(queued.body.data.retry_after_seconds).toBeGreaterThan(0);
    expect(Number(queued.headers.get('retry-after'))).toBe(queued.body.data.retry_after_seconds);
    const started = await waitFor(async () => {
      const a = await app.post('/v3/videos', avatarRequest(), { 'Idempotency-Key': key });
      return a.status === 200 ? a : null;
    }, 20_000, 100);
    expect(started.headers.get('idempotent-replayed')).toBe('true');
    expect(typeof started.body.data.video_id).toBe('string');
  });

  it('another project\'s video id reads exactly like a random id: 404 not_found, the same bytes', async () => {
    const other = heygenApp(h.url, otherServiceToken, {}, true);
    await h.gql(`mutation($i: SetBudgetInput!) { setBudget(input: $i) { __typename } }`, {
      i: { orgUnitId: tree.otherProjectId, window: 'MONTHLY', enforcement: 'HARD', limitCreditSeconds: '100000' },
    });
    const theirs = await other.post('/v3/videos', avatarRequest());
    expect(theirs.status).toBe(200);
    const theirId = theirs.body.data.video_id as string;
    expect((await other.get(`/v3/videos/${theirId}`)).status).toBe(200);
    const foreign = await gateway.get(`/v3/videos/${theirId}`);
    const random = await gateway.get(`/v3/videos/${'f'.repeat(32)}`);
    expect(foreign.status).toBe(404);
    expect(envelope(foreign).code).toBe('not_found');
    expect(foreign.text).toBe(random.text);
    expect(foreign.headers.get('content-type')).toBe(random.headers.get('content-type'));
    // In the bulk status read, as HeyGen answers unowned ids.
    const bulk = await gateway.get(`/v3/videos/statuses?video_ids=${theirId}`);
    expect(bulk.body.data).toEqual([{ video_id: theirId, status: 'not_found', error: null, batch_id: null, item_index: null }]);
  });

  it('a body larger than the /graphql limit is 413 payload_too_large, unread', async () => {
    const big = await gateway.post('/v3/videos', { ...avatarRequest(), title: 'x'.repeat(h.config.graphql.maxBodyBytes) });
    expect(big.status).toBe(413);
    expect(envelope(big).code).toBe('payload_too_large');
  });

  it('an unexpected fault is a HeyGen-style 500 without its text or a stack trace', async () => {
    const heygen = h.services.heygen as { getRaw: (...args: unknown[]) => Promise<unknown> };
    const original = heygen.getRaw;
    heygen.getRaw = async () => {
      throw new TypeError('boom: internal detail at /srv/gateway/src/thing.ts:12');
    };
    try {
      const answer = await gateway.get('/v3/voices?limit=3');
      expect(answer.status).toBe(500);
      expect(answer.body).toEqual({ error: { code: 'internal_error', message: 'Internal server error', param: null, doc_url: null } });
      expect(answer.text).not.toMatch(/boom|thing\.ts/);
    } finally {
      heygen.getRaw = original;
    }
  });

  it('what the front does not offer is never passed on: 501 for a HeyGen operation, 404 for an unknown path', async () => {
    const simBefore = h.sim.stats().requests['DELETE /v3/videos/{video_id}'] ?? 0;
    const del = await gateway.call('DELETE', `/v3/videos/${'a'.repeat(32)}`);
    expect(del.status).toBe(501);
    expect(envelope(del).code).toBe('not_implemented');
    const unknown = await gateway.get('/v3/no-such-thing');
    expect(unknown.status).toBe(404);
    expect(envelope(unknown).code).toBe('not_found');
    expect(h.sim.stats().requests['DELETE /v3/videos/{video_id}'] ?? 0).toBe(simBefore);
  });

  it('a MEMBER token must name its project with X-Gateway-Project; with it, it acts for that project', async () => {
    const member = await h.services.tokens.issueOperatorToken({ name: 'alice', role: 'MEMBER', unitId: decodeGlobalID(tree.teamId).id });
    const without = await heygenApp(h.url, member, {}, true).get('/v3/users/me');
    expect(without.status).toBe(400);
    expect(envelope(without)).toMatchObject({ code: 'validation_error', param: 'X-Gateway-Project' });
    const withHeader = heygenApp(h.url, member, { 'X-Gateway-Project': tree.projectId }, true);
    expect((await withHeader.get('/v3/users/me')).status).toBe(200);
    expect((await withHeader.get('/v3/voices')).status).toBe(200);
    // A project outside its subtree reads as not found.
    const outside = await heygenApp(h.url, member, { 'X-Gateway-Project': tree.otherProjectId }, true).post('/v3/videos', avatarRequest());
    expect(outside.status).toBe(404);
  });
});

describe('Idempotency-Key as HeyGen honours it', () => {
  it('a replay answers the same bytes; another body with the same key is 409; a key of 255 characters is accepted', async () => {
    const key = `k${'x'.repeat(254)}`;
    const first = await gateway.post('/v3/videos', avatarRequest(), { 'Idempotency-Key': key });
    expect(first.status).toBe(200);
    const again = await gateway.post('/v3/videos', avatarRequest(), { 'Idempotency-Key': key });
    expect(again.status).toBe(200);
    expect(again.text).toBe(first.text);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    const other = await gateway.post('/v3/videos', avatarRequest('A different script entirely.'), { 'Idempotency-Key': key });
    expect(other.status).toBe(409);
    expect(other.body.error).toMatchObject({ code: 'conflict', param: 'Idempotency-Key' });
    // One job for the key, created once upstream (the gateway sends its job id as HeyGen's Idempotency-Key).
    const jobs = await queryRows<{ id: string }>(h.services.db, sql`select id from jobs where idempotency_key = ${key}`);
    expect(jobs).toHaveLength(1);
    expect(h.sim.stats().creationsByIdempotencyKey[jobs[0]!.id]).toBe(1);
  });

  it('a duplicate while the first is still being forwarded is 409 request_in_progress', async () => {
    h.sim.configure({ latencyMs: 1500 });
    try {
      const body = avatarRequest('In progress twice.');
      // Two at once: one is admitted and forwarded (HeyGen takes 1.5 s to answer), the other finds its job in flight.
      const answers = await Promise.all([1, 2].map(() => gateway.post('/v3/videos', body, { 'Idempotency-Key': 'in-progress-1' })));
      const first = answers.find((a) => a.status === 200)!;
      const second = answers.find((a) => a !== first)!;
      expect(first).toBeDefined();
      expect(second.status).toBe(409);
      expect(second.body.error.code).toBe('request_in_progress');
      expect(Number(second.headers.get('retry-after'))).toBeGreaterThan(0);
      const third = await gateway.post('/v3/videos', body, { 'Idempotency-Key': 'in-progress-1' });
      expect(third.text).toBe(first.text);
    } finally {
      h.sim.configure({ latencyMs: 0 });
    }
  });
});

describe('one admission path for both doors', () => {
  it('GraphQL submitJob and POST /v3/videos, concurrently into one HARD budget: exactly the cap is admitted', async () => {
    const g = await startHarness({ workers: false });
    try {
      const t = await createTree(g);
      // 20 words → a hold of 52.8 cs each: 10 fit in 528 cs.
      await setBudget(g, { orgUnitId: t.projectId, window: 'MONTHLY', enforcement: 'HARD', limitCreditSeconds: '528' });
      const token = (await issueServiceToken(g, t.projectId)).token;
      const app = heygenApp(g.url, token, {}, true);
      const viaGraphql = Array.from({ length: 12 }, () =>
        g.gql(SUBMIT, { input: { projectId: t.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } }, token).then((r) => r.data.submitJob.__typename as string),
      );
      const viaV3 = Array.from({ length: 12 }, () => app.post('/v3/videos', avatarRequest()).then((a) => a.status));
      const [gql, v3] = await Promise.all([Promise.all(viaGraphql), Promise.all(viaV3)]);
      const admitted = gql.filter((t) => t === 'SubmitJobPayload').length + v3.filter((s) => s === 200).length;
      expect(admitted).toBe(10);
      expect(gql.filter((t) => t !== 'SubmitJobPayload').every((t) => t === 'BudgetExceededError')).toBe(true);
      expect(v3.filter((s) => s !== 200).every((s) => s === 402)).toBe(true);
      // Which door wins which slot is a race; what holds is the sum, and that every loser was refused by the cap.
      const [held] = await queryRows<{ r: string; n: number }>(g.services.db, sql`select coalesce(sum(reserved_micro_cs), 0)::text as r, count(*)::int as n from jobs`);
      expect(held).toEqual({ r: String(528_000_000), n: 10 });
    } finally {
      await g.close();
    }
  });
});

describe("HeyGen refusing the company's account", () => {
  it("is never told to the app as its own key or wallet, nor in HeyGen's words", async () => {
    const emptyKey = 'sk_test_empty_wallet_05';
    h.sim.addAccount({ apiKey: emptyKey, billingType: 'wallet', walletCredits: '0', concurrencyLimit: 10 });
    const empty = await createTree(h, { name: 'Empty wallet', apiKey: emptyKey });
    const app = heygenApp(h.url, (await issueServiceToken(h, empty.projectId)).token, {}, true);
    const refused = await app.post('/v3/videos', avatarRequest(), { 'Idempotency-Key': 'empty-wallet-1' });
    expect(refused.status).toBe(402);
    expect(refused.body.error.code).toBe('insufficient_credit');
    expect(refused.body.error.message).toMatch(/company's HeyGen account/);
    expect(refused.body.error.message).not.toMatch(/Wallet balance/);
    // The key stays bound to the refusal: a replay answers the same.
    const again = await app.post('/v3/videos', avatarRequest(), { 'Idempotency-Key': 'empty-wallet-1' });
    expect(again.text).toBe(refused.text);
    expect(refused.text).not.toContain(emptyKey);
    expect(again.text).not.toContain(emptyKey);
  });
});

describe('HeyGen away', () => {
  it('a create HeyGen has not confirmed is an honest 503 naming the gateway job (no made-up id); the same key later gives the ids; reads are 502', async () => {
    const app = heygenApp(h.url, serviceToken, {}, true);
    const created = await app.post('/v3/videos', avatarRequest('Made while HeyGen was away.'));
    expect(created.status).toBe(200);
    await h.sim.goDown();
    try {
      const refused = await app.post('/v3/videos', avatarRequest('Sent while HeyGen is away.'), { 'Idempotency-Key': 'outage-1' });
      expect(refused.status).toBe(503);
      expect(refused.body.error.code).toBe('service_unavailable');
      expect(refused.body.error.message).toMatch(/gateway job [0-9a-f-]{36}/);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      const read = await app.get(`/v3/videos/${created.body.data.video_id}`);
      expect(read.status).toBe(502);
      expect(read.body.error.code).toBe('upstream_error');
    } finally {
      await h.sim.comeBack();
    }
    // The worker forwards the job with its own key; the app's retry with the same key gets HeyGen's id.
    const retried = await waitFor(async () => {
      const a = await app.post('/v3/videos', avatarRequest('Sent while HeyGen is away.'), { 'Idempotency-Key': 'outage-1' });
      return a.status === 200 ? a : null;
    }, 20_000, 100);
    expect(typeof retried.body.data.video_id).toBe('string');
    expect((await app.get(`/v3/videos/${retried.body.data.video_id}`)).status).toBe(200);
  });
});

describe('every billable product through the front', () => {
  // Rows of one account (its own tree and HeyGen key): other tests' jobs settling in the background change the
  // tables' totals, never these.
  async function counts(accountId: string): Promise<Record<string, number>> {
    const [row] = await queryRows<Record<string, number>>(
      h.services.db,
      sql`select (select count(*)::int from jobs where account_id = ${accountId}) as jobs,
                 (select count(*)::int from job_items i join jobs j on j.id = i.job_id where j.account_id = ${accountId}) as job_items,
                 (select count(*)::int from ledger_entries where account_id = ${accountId}) as ledger_entries,
                 (select count(*)::int from usage_rollups where account_id = ${accountId}) as usage_rollups,
                 (select count(*)::int from audit_events where after ->> 'accountId' = ${accountId}) as audit_events`,
    );
    return row!;
  }
  const batchOf = (n: number, words: number) => ({
    videos: Array.from({ length: n }, () => ({ type: 'avatar', avatar_id: 'a1', voice_id: 'v1', script: Array.from({ length: words }, (_, i) => `w${i}`).join(' ') })),
  });

  it('a batch that does not fit the budget is refused whole: 402 budget_exceeded, nothing written, nothing sent to HeyGen', async () => {
    const key = 'sk_test_batch_budget_06';
    h.sim.addAccount({ apiKey: key, concurrencyLimit: 100 });
    const t = await createTree(h, { name: 'Batch budget', apiKey: key });
    await setBudget(h, { orgUnitId: t.projectId, window: 'MONTHLY', enforcement: 'HARD', limitCreditSeconds: '100' });
    const app = heygenApp(h.url, (await issueServiceToken(h, t.projectId)).token, {}, true);
    const accountId = decodeGlobalID(t.accountId).id;
    const before = await counts(accountId);
    const simBefore = h.sim.stats().requests['POST /v3/videos/batches'] ?? 0;
    // 5 × 52.8 cs = 264 cs > 100 cs: refused whole; 2 × 52.8 = 105.6 cs still does not fit.
    for (const n of [5, 2]) {
      const refused = await app.post('/v3/videos/batches', batchOf(n, 20));
      expect(refused.status).toBe(402);
      expect(refused.body.error.code).toBe('budget_exceeded');
      expect(refused.body.error.param).toMatch(/requested_credit_seconds=(264|105\.6)\b/);
    }
    expect(await counts(accountId)).toEqual(before);
    expect(h.sim.stats().requests['POST /v3/videos/batches'] ?? 0).toBe(simBefore);
    // One that fits is held whole and answered 202.
    const one = await app.post('/v3/videos/batches', batchOf(1, 20));
    expect(one.status).toBe(202);
  });

  it('a batch whose items partly fail settles only the completed items; the app reads the failed ones as HeyGen reports them', async () => {
    h.sim.configure({ failNextJobs: 2 });
    const created = await gateway.post('/v3/videos/batches', batchOf(5, 10), { 'Idempotency-Key': 'partial-batch-1' });
    expect(created.status).toBe(202);
    const batchId = created.body.data.batch_id as string;
    const done = await waitFor(async () => {
      const b = await gateway.get(`/v3/videos/batches/${batchId}`);
      return b.body.data.status === 'processing' ? null : b;
    }, 20_000);
    expect(done.body.data.counts_by_status).toMatchObject({ completed: 3, failed: 2 });
    const [job] = await queryRows<{ id: string }>(h.services.db, sql`select id from jobs where idempotency_key = 'partial-batch-1'`);
    const settled = await waitFor(async () => {
      const [row] = await queryRows<{ status: string; reserved: string; actual: string }>(
        h.services.db,
        sql`select status, reserved_micro_cs::text as reserved, actual_micro_cs::text as actual from jobs where id = ${job!.id}`,
      );
      return row && ['SUCCEEDED', 'FAILED'].includes(row.status) ? row : null;
    }, 20_000);
    expect(settled.status).toBe('SUCCEEDED');
    expect(settled.reserved).toBe('0');
    const items = await queryRows<{ video_id: string; status: string; cost: string | null }>(
      h.services.db,
      sql`select video_id, status, cost_micro_cs::text as cost from job_items where job_id = ${job!.id}`,
    );
    expect(items.map((i) => i.status).sort()).toEqual(['completed', 'completed', 'completed', 'failed', 'failed']);
    let billed = 0n;
    for (const item of items) {
      if (item.status === 'failed') {
        expect(item.cost).toBeNull();
        continue;
      }
      const sim = h.sim.job(item.video_id)!;
      expect(BigInt(item.cost!)).toBe(sim.costMicroCreditSeconds);
      billed += sim.costMicroCreditSeconds;
    }
    expect(BigInt(settled.actual)).toBe(billed);
    // The replay of the create answers the same bytes, with HeyGen's 202.
    const again = await gateway.post('/v3/videos/batches', batchOf(5, 10), { 'Idempotency-Key': 'partial-batch-1' });
    expect(again.status).toBe(202);
    expect(again.text).toBe(created.text);
  });

  it('proofreads, avatar creation, translation and lipsync batches answer HeyGen\'s create shapes and read back; generating from a proofread is 501, never passed on', async () => {
    const video = { type: 'url', url: media.url('/v.mp4') };
    const languages = ['es', 'fr'];
    const proofread = await gateway.post('/v3/video-translations/proofreads', { title: 'Check', video, output_languages: languages });
    expect(proofread.status).toBe(200);
    expect(proofread.body.data.status).toBe('processing');
    expect(proofread.body.data.proofread_ids).toHaveLength(2);
    const read = await gateway.get(`/v3/video-translations/proofreads/${proofread.body.data.proofread_ids[1]}`);
    expect(read.status).toBe(200);
    expect(read.body.data.id).toBe(proofread.body.data.proofread_ids[1]);
    expect(h.sim.job(proofread.body.data.proofread_ids[1])?.outputLanguage).toBe('fr');
    const foreign = await heygenApp(h.url, otherServiceToken, {}, true).get(`/v3/video-translations/proofreads/${proofread.body.data.proofread_ids[0]}`);
    expect(foreign.status).toBe(404);

    const simBefore = h.sim.stats().requests['POST /v3/video-translations/proofreads/{proofread_id}/generate'] ?? 0;
    const generate = await gateway.post(`/v3/video-translations/proofreads/${proofread.body.data.proofread_ids[0]}/generate`, {});
    expect(generate.status).toBe(501);
    expect(generate.body.error.code).toBe('not_implemented');
    expect(generate.body.error.message).toMatch(/billed by HeyGen/);
    expect(h.sim.stats().requests['POST /v3/video-translations/proofreads/{proofread_id}/generate'] ?? 0).toBe(simBefore);

    const direct = heygenApp(h.sim.url, COMPANY_KEY);
    const avatarBody = { type: 'photo', name: 'Ava', file: { type: 'url', url: 'https://example.com/face.jpg' } };
    const avatar = await gateway.post('/v3/avatars', avatarBody);
    expect(avatar.status).toBe(200);
    expectSameShape(avatar.body, (await direct.post('/v3/avatars', avatarBody)).body);

    const tr = await gateway.post('/v3/video-translations/batches', { video_translations: [{ video, output_languages: ['es'] }, { video, output_languages: ['de'] }] });
    const ls = await gateway.post('/v3/lipsyncs/batches', { lipsyncs: [{ video, audio: { type: 'url', url: media.url('/a.wav') } }] });
    for (const [answer, read, itemRead] of [
      [tr, '/v3/video-translations/batches/', '/v3/video-translations/'],
      [ls, '/v3/lipsyncs/batches/', '/v3/lipsyncs/'],
    ] as const) {
      expect(answer.status).toBe(202);
      expect(Object.keys(answer.body.data).sort()).toEqual(['batch_id', 'created_at', 'status', 'total_items']);
      const done = await waitFor(async () => {
        const b = await gateway.get(`${read}${answer.body.data.batch_id}`);
        expect(b.status).toBe(200);
        return b.body.data.status === 'completed' ? b : null;
      }, 20_000);
      for (const item of done.body.data.items) expect((await gateway.get(`${itemRead}${item.video_id}`)).status).toBe(200);
      // Another project reads the batch like an unknown one.
      const other = heygenApp(h.url, otherServiceToken, {}, true);
      const theirs = await other.get(`${read}${answer.body.data.batch_id}`);
      const random = await other.get(`${read}${'e'.repeat(32)}`);
      expect(theirs.status).toBe(404);
      expect(theirs.text).toBe(random.text);
      expect((await other.get(`${itemRead}${done.body.data.items[0].video_id}`)).status).toBe(404);
    }
    // Lipsyncs list the project's own, batch items included; a batch's statuses expand for its project only.
    const lsBatch = (await gateway.get(`/v3/lipsyncs/batches/${ls.body.data.batch_id}`)).body.data;
    const lsItem = lsBatch.items[0].video_id as string;
    const listed = await gateway.get('/v3/lipsyncs?limit=100');
    expect(listed.status).toBe(200);
    expect(listed.body.data.map((l: { id: string }) => l.id)).toContain(lsItem);
    expect((await heygenApp(h.url, otherServiceToken, {}, true).get('/v3/lipsyncs?limit=100')).body.data.map((l: { id: string }) => l.id)).not.toContain(lsItem);
    const mine = await gateway.get(`/v3/lipsyncs/statuses?batch_ids=${ls.body.data.batch_id}`);
    expect(mine.body.data).toEqual([expect.objectContaining({ video_id: lsItem, batch_id: ls.body.data.batch_id, item_index: 0, status: 'completed' })]);
    const theirs = await heygenApp(h.url, otherServiceToken, {}, true).get(`/v3/lipsyncs/statuses?batch_ids=${ls.body.data.batch_id}`);
    expect(theirs.body.data).toEqual([{ video_id: null, status: 'not_found', error: null, batch_id: ls.body.data.batch_id, item_index: null }]);
  });
});

describe('what a job created is not catalog', () => {
  it("another project's created avatar (look and group) reads like a random id and never reaches HeyGen; lists leave it out", async () => {
    const created = await gateway.post('/v3/avatars', { type: 'photo', name: 'Private Ava', file: { type: 'url', url: 'https://example.com/ava.jpg' } });
    expect(created.status).toBe(200);
    const lookId = created.body.data.avatar_item.id as string;
    const groupId = created.body.data.avatar_group.id as string;
    // The creating project reads both, fresh.
    const mineLook = await gateway.get(`/v3/avatars/looks/${lookId}`);
    expect(mineLook.status).toBe(200);
    expect(mineLook.body.data.id).toBe(lookId);
    const mineGroup = await gateway.get(`/v3/avatars/${groupId}`);
    expect(mineGroup.status).toBe(200);
    expect(mineGroup.body.data.id).toBe(groupId);

    // The gateway follows the creation by reading the look; once the job is settled nothing reads it any more, so the
    // counts below see only what the other project's requests cause.
    await waitFor(async () => {
      const [job] = await queryRows<{ settled: boolean }>(
        h.services.db,
        sql`select j.settled_at is not null as settled from jobs j join job_items i on i.job_id = j.id where i.upstream_id = ${lookId}`,
      );
      return job?.settled === true;
    }, 30_000);
    const other = heygenApp(h.url, otherServiceToken, {}, true);
    const stats = () => [h.sim.stats().requests['GET /v3/avatars/looks/{look_id}'] ?? 0, h.sim.stats().requests['GET /v3/avatars/{group_id}'] ?? 0];
    const before = stats();
    const theirLook = await other.get(`/v3/avatars/looks/${lookId}`);
    const theirGroup = await other.get(`/v3/avatars/${groupId}`);
    expect(stats()).toEqual(before); // never passed on with the company key
    const randomLook = await other.get(`/v3/avatars/looks/${'d'.repeat(32)}`);
    const randomGroup = await other.get(`/v3/avatars/${'d'.repeat(32)}`);
    expect(theirLook.status).toBe(404);
    expect(theirLook.text).toBe(randomLook.text);
    expect(theirLook.headers.get('content-type')).toBe(randomLook.headers.get('content-type'));
    expect(theirGroup.status).toBe(404);
    expect(theirGroup.text).toBe(randomGroup.text);
    // Catalog ids still pass through.
    const publicLook = (await other.get('/v3/avatars/looks')).body.data[0].id as string;
    expect((await other.get(`/v3/avatars/looks/${publicLook}`)).status).toBe(200);

    // HeyGen lists an account's private avatars with the public ones: another project's are left out of its lists.
    const heygen = h.services.heygen as { getRaw: (conn: unknown, path: string) => Promise<unknown> };
    const original = heygen.getRaw;
    heygen.getRaw = async (conn, path) => {
      if (path.startsWith('/v3/avatars/looks?')) return { status: 200, body: { data: [{ id: lookId, group_id: groupId }, { id: publicLook, group_id: 'public' }], has_more: false, next_token: null } };
      if (path.startsWith('/v3/avatars?')) return { status: 200, body: { data: [{ id: groupId }, { id: 'public_group' }], has_more: false, next_token: null } };
      return original(conn, path);
    };
    try {
      const ids = (a: Answer) => a.body.data.map((e: { id: string }) => e.id);
      expect(ids(await other.get('/v3/avatars/looks?limit=7'))).toEqual([publicLook]);
      expect(ids(await other.get('/v3/avatars?limit=7'))).toEqual(['public_group']);
      // The same cached answer, for the creating project: its own avatar is listed.
      expect(ids(await gateway.get('/v3/avatars/looks?limit=7'))).toEqual([lookId, publicLook]);
      expect(ids(await gateway.get('/v3/avatars?limit=7'))).toEqual([groupId, 'public_group']);
    } finally {
      heygen.getRaw = original;
    }
  });
});

describe("the app's own callback_id", () => {
  it('is echoed on reads of its job where HeyGen has the field; the gateway\'s job id and callback URL never are', async () => {
    const policy = h.services.admission.callbacks;
    h.services.admission.callbacks = { ...policy, allowHttp: true, allowPrivate: true };
    try {
      const created = await gateway.post('/v3/videos', { ...avatarRequest('Echo my callback id.'), callback_url: 'http://127.0.0.1:9/hook', callback_id: 'order-4711' });
      expect(created.status).toBe(200);
      const videoId = created.body.data.video_id as string;
      const [job] = await queryRows<{ id: string }>(h.services.db, sql`select job_id as id from job_items where upstream_id = ${videoId}`);
      const read = await gateway.get(`/v3/videos/${videoId}`);
      expect(read.status).toBe(200);
      expect(read.body.data.callback_id).toBe('order-4711');
      expect(read.text).not.toContain(job!.id);
      expect(read.text).not.toContain('127.0.0.1:9');
      const listed = (await gateway.get('/v3/videos?limit=100')).body.data.find((v: { id: string }) => v.id === videoId);
      expect(listed.callback_id).toBe('order-4711');
      // A template's create answer (the creation-time video object) echoes it too.
      const templateId = (await gateway.get('/v3/templates')).body.data[0].id as string;
      const fromTemplate = await gateway.post(`/v3/templates/${templateId}`, { variables: {}, callback_url: 'http://127.0.0.1:9/hook', callback_id: 'tpl-1' });
      expect(fromTemplate.status).toBe(200);
      expect(fromTemplate.body.data.callback_id).toBe('tpl-1');
      // A job without an app callback still reads null, never the gateway's job id.
      const plain = await gateway.post('/v3/videos', avatarRequest('No callback here.'));
      const plainRead = await gateway.get(`/v3/videos/${plain.body.data.video_id}`);
      expect(plainRead.body.data.callback_id).toBeNull();
    } finally {
      h.services.admission.callbacks = policy;
    }
  });
});

import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { dist } from './support/build.js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../src/heygen/simulator/server.js';

const KEY = 'sim_key_a';
const OTHER = 'sim_key_b';
const WALLET = 'sim_key_wallet';

let sim: Simulator;

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

async function call(
  method: string,
  path: string,
  opts: { key?: string | null; body?: unknown; headers?: Record<string, string>; signal?: AbortSignal; base?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...opts.headers };
  const key = opts.key === undefined ? KEY : opts.key;
  if (key !== null) headers['X-Api-Key'] = key;
  let body: string | undefined;
  if (opts.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
  }
  const init: RequestInit = { method, headers };
  if (body !== undefined) init.body = body;
  if (opts.signal) init.signal = opts.signal;
  const res = await fetch(`${opts.base ?? sim.url}${path}`, init);
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

type Truthy<T> = Exclude<T, false | null | undefined | 0 | ''>;

async function waitFor<T>(probe: () => T | Promise<T>, timeoutMs = 4000): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value as Truthy<T>;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const words = (n: number): string => Array.from({ length: n }, (_, i) => `word${i}`).join(' ');
const avatar = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  type: 'avatar',
  avatar_id: 'av_1',
  voice_id: 'vo_1',
  script: words(150),
  ...extra,
});
const translation = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  video: { type: 'url', url: 'https://example.com/source.mp4' },
  output_languages: ['Spanish (Spain)'],
  ...extra,
});

async function createVideo(body: Record<string, unknown> = avatar(), key = KEY): Promise<string> {
  const res = await call('POST', '/v3/videos', { key, body });
  expect(res.status).toBe(200);
  return res.json.data.video_id as string;
}

const videoStatus = async (id: string, key = KEY): Promise<any> => (await call('GET', `/v3/videos/${id}`, { key })).json.data;

// A local webhook receiver whose answer can be scripted per request.
interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}
const received: Received[] = [];
let answerWith: (n: number) => number = () => 200;
let receiver: http.Server;
let receiverUrl: string;

beforeAll(async () => {
  sim = await startSimulator({
    port: 0,
    // Media URLs below are not served: their lengths come from the configured figures (media measuring has its own tests).
    config: { renderMs: 40, webhookRetryBaseMs: 5, mediaDurations: 'configured' },
    accounts: [
      { apiKey: KEY, billingType: 'usage_based', includedCredits: 2000 },
      { apiKey: OTHER },
      { apiKey: WALLET, billingType: 'wallet', walletCredits: 10 },
    ],
  });
  receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(answerWith(received.length)).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await sim.close();
  await new Promise((r) => receiver.close(r));
});

beforeEach(() => {
  sim.reset();
  received.length = 0;
  answerWith = () => 200;
});

describe('auth and routing', () => {
  it('rejects a missing or unknown X-Api-Key with 401 unauthorized', async () => {
    for (const key of [null, 'nope']) {
      const res = await call('GET', '/v3/users/me', { key });
      expect(res.status).toBe(401);
      expect(res.json).toEqual({ error: { code: 'unauthorized', message: expect.any(String), param: null, doc_url: null } });
    }
  });

  it('accepts the header in any case', async () => {
    const res = await call('GET', '/v3/users/me', { key: null, headers: { 'x-API-key': KEY } });
    expect(res.status).toBe(200);
  });

  it('answers 404 not_found for unknown routes and for ids of another account', async () => {
    expect((await call('GET', '/v3/unknown')).json.error.code).toBe('not_found');
    expect((await call('DELETE', '/v3/videos')).status).toBe(404);
    const id = await createVideo();
    const other = await call('GET', `/v3/videos/${id}`, { key: OTHER });
    expect(other.status).toBe(404);
    expect(other.json.error.code).toBe('not_found');
    expect((await call('GET', `/v3/video-translations/${id}`)).status).toBe(404);
    expect((await call('GET', '/v3/videos/missing')).status).toBe(404);
  });
});

describe('POST /v3/videos', () => {
  it.each([
    [{ avatar_id: 'a', script: 'hi' }, 'type'],
    [avatar({ script: 'x'.repeat(5001) }), 'script'],
    [avatar({ engine: 'avatar_x' }), 'engine'],
    [avatar({ engine: { type: 'nope' } }), 'engine'],
    [avatar({ script: null }), 'script'],
    [avatar({ audio_url: 'https://example.com/a.mp3' }), 'audio_url'],
    [avatar({ avatar_id: undefined }), 'avatar_id'],
    [{ type: 'image', script: 'hi' }, 'image'],
    [{ type: 'cinematic_avatar', avatar_id: ['a'], prompt: 'p', duration: 20 }, 'duration'],
    [{ type: 'studio', scenes: [] }, 'scenes'],
    [avatar({ callback_url: 'not a url' }), 'callback_url'],
  ])('rejects %j with 400 validation_error on %s', async (body, param) => {
    const res = await call('POST', '/v3/videos', { body });
    expect(res.status).toBe(400);
    expect(res.json.error).toMatchObject({ code: 'validation_error', param });
  });

  it('rejects a body that is not JSON', async () => {
    const res = await call('POST', '/v3/videos', { body: '{nope' });
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe('validation_error');
  });

  it('creates a pending video', async () => {
    const res = await call('POST', '/v3/videos', { body: avatar({ output_format: 'webm', engine: { type: 'avatar_v' } }) });
    expect(res.json).toEqual({ data: { video_id: expect.stringMatching(/^[0-9a-f]{32}$/), status: 'pending', output_format: 'webm' } });
    expect(sim.job(res.json.data.video_id)).toMatchObject({ product: 'avatar_v', kind: 'video', apiKey: KEY });
    const byDefault = await createVideo();
    expect(sim.job(byDefault)?.product).toBe('avatar_iv');
  });

  it('derives durations deterministically', async () => {
    const cases: [Record<string, unknown>, number][] = [
      [avatar({ script: words(150) }), 60],
      [avatar({ script: words(31) }), 12.4],
      [avatar({ script: 'Hi' }), 1],
      [avatar({ script: undefined, audio_url: 'https://example.com/a.mp3' }), 30],
      [{ type: 'image', image: { type: 'asset_id', asset_id: 'img' }, script: words(15) }, 6],
      [{ type: 'cinematic_avatar', avatar_id: ['a'], prompt: 'a dancer', duration: 8 }, 8],
      [{ type: 'cinematic_avatar', avatar_id: ['a'], prompt: 'a dancer' }, 10],
      [
        {
          scenes: [
            { type: 'avatar_video', input: { type: 'avatar', avatar_id: 'a', script: words(30) } },
            { type: 'image', source: { type: 'url', url: 'https://example.com/i.png' }, duration: 2.5 },
            { type: 'video', source: { type: 'asset_id', asset_id: 'clip' } },
          ],
        },
        12 + 2.5 + 10,
      ],
    ];
    for (const [body, seconds] of cases) {
      expect(sim.job(await createVideo(body))?.durationSeconds).toBe(seconds);
    }
    sim.configure({ fixedDurationSeconds: 7.5 });
    expect(sim.job(await createVideo())?.durationSeconds).toBe(7.5);
  });
});

describe('job lifecycle', () => {
  it('moves pending → processing → completed and reports duration, url and callback_id', async () => {
    // Manual completion keeps each phase open long enough to observe under any load.
    sim.configure({ renderMs: 600, autoComplete: false });
    const id = await createVideo(avatar({ script: words(31), callback_id: 'job-1', title: 'T' }));
    const first = await videoStatus(id);
    expect(first).toMatchObject({ id, status: 'pending', duration: null, video_url: null, callback_id: 'job-1', title: 'T' });
    expect(first).not.toHaveProperty('failure_code');
    await waitFor(async () => (await videoStatus(id)).status === 'processing');
    sim.completeNow(id);
    const done = await videoStatus(id);
    expect(done).toMatchObject({ status: 'completed', duration: 12.4, callback_id: 'job-1', completed_at: expect.any(Number) });
    expect(done.video_url).toMatch(new RegExp(`^${sim.url}/_sim/media/${id}\\.mp4$`));
    expect((await fetch(done.video_url)).status).toBe(200);
  });

  it('completes by itself after renderMs', async () => {
    sim.configure({ renderMs: 60 });
    const id = await createVideo();
    const done = await waitFor(async () => {
      const v = await videoStatus(id);
      return v.status === 'completed' && v;
    });
    expect(done.duration).toBe(60);
    expect(Date.now() - (sim.job(id)?.createdAt ?? 0)).toBeGreaterThanOrEqual(60);
  });

  it('completes on the next tick with renderMs 0, and waits for a forced end with autoComplete off', async () => {
    sim.configure({ renderMs: 0 });
    const fast = await createVideo();
    await waitFor(async () => (await videoStatus(fast)).status === 'completed');

    sim.configure({ renderMs: 10, autoComplete: false });
    const manual = await createVideo();
    await waitFor(async () => (await videoStatus(manual)).status === 'processing');
    expect(sim.completeNow(manual, { durationSeconds: 3.2 })).toBe(true);
    expect(sim.completeNow(manual)).toBe(false);
    expect(await videoStatus(manual)).toMatchObject({ status: 'completed', duration: 3.2 });
  });

  it('fails jobs on demand with failure_code and failure_message, at no cost', async () => {
    sim.configure({ failNextJobs: 1, renderMs: 0 });
    const failed = await createVideo();
    const fine = await createVideo();
    const v = await waitFor(async () => {
      const s = await videoStatus(failed);
      return s.status === 'failed' && s;
    });
    expect(v).toMatchObject({ failure_code: 'render_failed', failure_message: expect.any(String), duration: null, video_url: null });
    await waitFor(async () => (await videoStatus(fine)).status === 'completed');
    expect(sim.job(failed)?.costMicroCreditSeconds).toBe(0n);
    expect(sim.usage(KEY).gateway).toBe(360_000_000n); // only the successful 60 s Avatar IV video
  });
});

describe('POST /v3/templates/{template_id}', () => {
  it('requires variables', async () => {
    const res = await call('POST', '/v3/templates/tpl_1', { body: { title: 'x' } });
    expect(res.status).toBe(400);
    expect(res.json.error.param).toBe('variables');
  });

  it('returns the full video object and renders for the template duration', async () => {
    sim.configure({ renderMs: 0 });
    const res = await call('POST', '/v3/templates/tpl_1', { body: { variables: { name: { type: 'text' } }, callback_id: 'c1' } });
    expect(res.status).toBe(200);
    expect(res.json.data).toMatchObject({ id: expect.any(String), status: 'pending', callback_id: 'c1', duration: null });
    const v = await waitFor(async () => {
      const s = await videoStatus(res.json.data.id);
      return s.status === 'completed' && s;
    });
    expect(v.duration).toBe(30);
    expect(sim.job(v.id)?.product).toBe('template');
  });
});

describe('POST /v3/video-translations', () => {
  it.each([
    [translation({ output_languages: [] }), 'output_languages'],
    [translation({ video: undefined }), 'video'],
    [translation({ mode: 'fast' }), 'mode'],
    [translation({ start_time: 20, end_time: 10 }), 'end_time'],
  ])('rejects %j on %s', async (body, param) => {
    const res = await call('POST', '/v3/video-translations', { body });
    expect(res.status).toBe(400);
    expect(res.json.error).toMatchObject({ code: 'validation_error', param });
  });

  it('creates one billable job per language, each with its own status', async () => {
    sim.configure({ renderMs: 600, autoComplete: false });
    const res = await call('POST', '/v3/video-translations', {
      body: translation({ output_languages: ['French', 'German', 'Japanese'], mode: 'precision', start_time: 10.5, end_time: 40, callback_id: 'tr' }),
    });
    expect(res.status).toBe(200);
    const ids: string[] = res.json.data.video_translation_ids;
    expect(ids).toHaveLength(3);
    expect(new Set(ids).size).toBe(3);
    expect(sim.stats().jobsCreated[KEY]).toBe(3);

    const first = (await call('GET', `/v3/video-translations/${ids[0]}`)).json.data;
    expect(first).toMatchObject({ id: ids[0], status: 'pending', output_language: 'French', callback_id: 'tr', duration: null });
    await waitFor(async () => (await call('GET', `/v3/video-translations/${ids[1]}`)).json.data.status === 'running');
    for (const id of ids) expect(sim.completeNow(id)).toBe(true);
    const done = (await call('GET', `/v3/video-translations/${ids[2]}`)).json.data;
    expect(done).toMatchObject({ status: 'completed', output_language: 'Japanese', duration: 29.5, video_url: expect.any(String) });
    // 3 × 29.5 s × 0.1 credits/s × 60 cs per credit = 531 credit-seconds
    expect(sim.usage(KEY).gateway).toBe(531_000_000n);
  });

  it('uses the configured source duration without start/end, and the speed rate by default', async () => {
    sim.configure({ renderMs: 0 });
    const res = await call('POST', '/v3/video-translations', { body: translation() });
    const id: string = res.json.data.video_translation_ids[0];
    await waitFor(() => sim.job(id)?.status === 'completed');
    expect(sim.job(id)).toMatchObject({ durationSeconds: 60, product: 'translation_speed', costMicroCreditSeconds: 180_000_000n });
  });
});

describe('POST /v3/video-agents', () => {
  it('validates the prompt length', async () => {
    for (const prompt of ['', 'x'.repeat(10_001)]) {
      const res = await call('POST', '/v3/video-agents', { body: { prompt } });
      expect(res.status).toBe(400);
      expect(res.json.error.param).toBe('prompt');
    }
  });

  it('creates a session with a video, derives the duration from the prompt, and bills the agent rate', async () => {
    sim.configure({ renderMs: 60, autoComplete: false });
    const prompt = 'p'.repeat(200);
    const res = await call('POST', '/v3/video-agents', { body: { prompt, callback_id: 'ag' } });
    expect(res.json.data).toEqual({
      session_id: expect.any(String),
      status: 'generating',
      video_id: expect.any(String),
      created_at: expect.any(Number),
    });
    const { session_id: sessionId, video_id: videoId } = res.json.data;
    expect((await call('GET', `/v3/video-agents/${sessionId}`)).json.data).toMatchObject({ session_id: sessionId, status: 'generating', video_id: videoId });
    expect((await call('GET', `/v3/video-agents/${sessionId}`, { key: OTHER })).status).toBe(404);
    expect(sim.completeNow(sessionId)).toBe(true);
    const session = (await call('GET', `/v3/video-agents/${sessionId}`)).json.data;
    expect(session).toMatchObject({ status: 'completed', progress: 100 });
    expect(await videoStatus(videoId)).toMatchObject({ status: 'completed', duration: 35, callback_id: 'ag' });
    // 35 s × 0.0667 × 60 = 140.07 credit-seconds
    expect(sim.usage(KEY).gateway).toBe(140_070_000n);
  });
});

describe('bulk statuses', () => {
  it('reports up to 100 ids, not_found for unknown or unowned ones, without durations', async () => {
    sim.configure({ autoComplete: false, renderMs: 10_000 });
    const mine = await createVideo();
    const failed = await createVideo();
    const theirs = await createVideo(avatar(), OTHER);
    sim.failNow(failed);
    const res = await call('GET', `/v3/videos/statuses?video_ids=${mine},${failed},${theirs},missing`);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      data: [
        { video_id: mine, status: 'queued', error: null, batch_id: null, item_index: null },
        { video_id: failed, status: 'failed', error: { code: 'render_failed', message: expect.any(String) }, batch_id: null, item_index: null },
        { video_id: theirs, status: 'not_found', error: null, batch_id: null, item_index: null },
        { video_id: 'missing', status: 'not_found', error: null, batch_id: null, item_index: null },
      ],
      has_more: false,
      next_token: null,
    });
    sim.completeNow(mine);
    const after = await call('GET', `/v3/videos/statuses?video_ids=${mine}`);
    expect(after.json.data[0]).toEqual({ video_id: mine, status: 'completed', error: null, batch_id: null, item_index: null });

    const tooMany = Array.from({ length: 101 }, (_, i) => `id${i}`).join(',');
    const res101 = await call('GET', `/v3/videos/statuses?video_ids=${tooMany}`);
    expect(res101.status).toBe(400);
    expect(res101.json.error).toMatchObject({ code: 'validation_error', param: 'video_ids' });
  });

  it('covers translations too', async () => {
    sim.configure({ autoComplete: false, renderMs: 10_000 });
    const res = await call('POST', '/v3/video-translations', { body: translation({ output_languages: ['a', 'b'] }) });
    const ids: string[] = res.json.data.video_translation_ids;
    const bulk = await call('GET', `/v3/video-translations/statuses?video_translation_ids=${ids.join(',')},x`);
    expect(bulk.json.data.map((e: { status: string }) => e.status)).toEqual(['queued', 'queued', 'not_found']);
    expect(bulk.json.data[0].video_id).toBe(ids[0]);
  });
});

describe('GET /v3/users/me and usage', () => {
  it('reports a usage-based account in credits, drawn down exactly by completed jobs and outside usage', async () => {
    sim.configure({ renderMs: 0 });
    const me = (await call('GET', '/v3/users/me')).json.data;
    expect(me).toEqual({
      username: expect.any(String),
      email: null,
      first_name: null,
      last_name: null,
      billing_type: 'usage_based',
      wallet: null,
      subscription: null,
      usage_based: { included_credits: 2000, remaining_credits: 2000, spending_cap_usd: null, spending_current_usd: 0 },
    });
    const iv = await createVideo(avatar({ script: words(31) })); // 12.4 s × 0.1 = 1.24 credits
    const iii = await createVideo(avatar({ engine: 'avatar_iii' })); // 60 s × 0.0033 = 0.198 credits
    await waitFor(() => sim.job(iv)?.status === 'completed' && sim.job(iii)?.status === 'completed');
    expect(sim.usage(KEY).gateway).toBe(74_400_000n + 11_880_000n);

    const outside = await call('POST', '/_sim/usage', { key: null, body: { apiKey: KEY, creditSeconds: 600 } });
    expect(outside.status).toBe(200);
    sim.addOutsideUsage(KEY, '0.6');
    expect(sim.usage(KEY)).toEqual({ gateway: 86_280_000n, outside: 600_600_000n, total: 686_880_000n });
    const after = (await call('GET', '/v3/users/me')).json.data;
    expect(after.usage_based.remaining_credits).toBe(1988.552);
  });

  it('reports overage spending past the included pool, and refuses creates past the spending cap', async () => {
    sim.addAccount({ apiKey: 'capped', includedCredits: 1, spendingCapUsd: 0.5, overageUsdPerCreditSecond: '0.01' });
    sim.addOutsideUsage('capped', 100); // 60 cs included, 40 cs over at $0.01
    const me = (await call('GET', '/v3/users/me', { key: 'capped' })).json.data;
    expect(me.usage_based).toEqual({ included_credits: 1, remaining_credits: 0, spending_cap_usd: 0.5, spending_current_usd: 0.4 });
    await createVideo(avatar(), 'capped');
    sim.addOutsideUsage('capped', 10);
    const refused = await call('POST', '/v3/videos', { key: 'capped', body: avatar() });
    expect(refused.status).toBe(402);
    expect(refused.json.error.code).toBe('insufficient_credit');
  });

  it('reports a credit package as a wallet in credits and refuses creates once it is empty', async () => {
    sim.configure({ renderMs: 0 });
    const me = (await call('GET', '/v3/users/me', { key: WALLET })).json.data;
    expect(me).toMatchObject({
      billing_type: 'wallet',
      usage_based: null,
      subscription: null,
      wallet: { currency: 'credits', remaining_balance: 10, auto_reload: null },
    });
    const id = await createVideo(avatar(), WALLET); // 6 credits
    await waitFor(() => sim.job(id)?.status === 'completed');
    expect((await call('GET', '/v3/users/me', { key: WALLET })).json.data.wallet.remaining_balance).toBe(4);
    sim.addOutsideUsage(WALLET, 240);
    expect((await call('GET', '/v3/users/me', { key: WALLET })).json.data.wallet.remaining_balance).toBe(0);
    const refused = await call('POST', '/v3/videos', { key: WALLET, body: avatar() });
    expect(refused.status).toBe(402);
    expect(refused.json.error.code).toBe('insufficient_credit');
  });

  it('honours creditUnitSeconds and per-product rates', async () => {
    sim.configure({ renderMs: 0, creditUnitSeconds: 1, rates: { avatar_iv: '0.2' } });
    const id = await createVideo();
    await waitFor(() => sim.job(id)?.status === 'completed');
    expect(sim.usage(KEY).gateway).toBe(12_000_000n); // 60 s × 0.2 × 1
    expect((await call('GET', '/v3/users/me')).json.data.usage_based.remaining_credits).toBe(1988);
  });
});

describe('webhooks', () => {
  const register = async (events: string[] | null = null): Promise<{ endpoint_id: string; secret: string }> => {
    const res = await call('POST', '/v3/webhooks/endpoints', { body: { url: `${receiverUrl}/hook`, events } });
    expect(res.status).toBe(200);
    return res.json.data;
  };
  const sign = (secret: string, body: string): string => createHmac('sha256', secret).update(body).digest('hex');

  it('registers endpoints and validates them', async () => {
    const res = await call('POST', '/v3/webhooks/endpoints', { body: { url: `${receiverUrl}/hook`, events: null } });
    expect(res.json.data).toEqual({
      endpoint_id: expect.any(String),
      url: `${receiverUrl}/hook`,
      events: null,
      status: 'enabled',
      created_at: expect.any(String),
      secret: expect.stringMatching(/^whsec_/),
    });
    expect((await call('POST', '/v3/webhooks/endpoints', { body: { url: 'x' } })).json.error.param).toBe('url');
    expect((await call('POST', '/v3/webhooks/endpoints', { body: { url: receiverUrl, events: ['bogus'] } })).json.error.param).toBe('events.0');
    expect((await call('POST', '/v3/webhooks/endpoints/nope/rotate-secret')).status).toBe(404);
  });

  it('delivers signed events to endpoints and unsigned ones to callback_url', async () => {
    sim.configure({ renderMs: 0 });
    const endpoint = await register();
    const id = await createVideo(avatar({ callback_id: 'job-9', callback_url: `${receiverUrl}/callback` }));
    await waitFor(() => received.length === 2);
    const hook = received.find((r) => r.path === '/hook');
    const callback = received.find((r) => r.path === '/callback');
    if (!hook || !callback) throw new Error('missing deliveries');
    expect(hook.headers['x-heygen-signature']).toBe(sign(endpoint.secret, hook.body));
    expect(callback.headers['x-heygen-signature']).toBeUndefined();
    const event = JSON.parse(hook.body);
    expect(event).toEqual({
      event_type: 'avatar_video.success',
      event_id: expect.any(String),
      created_at: expect.any(String),
      event_data: { video_id: id, url: expect.stringContaining(id), callback_id: 'job-9' },
    });
    expect(JSON.parse(callback.body)).toEqual(event);
  });

  it('signs with the rotated secret and the configured header name', async () => {
    sim.configure({ renderMs: 0, signatureHeader: 'Signature' });
    const endpoint = await register();
    const rotated = await call('POST', `/v3/webhooks/endpoints/${endpoint.endpoint_id}/rotate-secret`);
    expect(rotated.json.data).toEqual({ endpoint_id: endpoint.endpoint_id, secret: expect.stringMatching(/^whsec_/) });
    expect(rotated.json.data.secret).not.toBe(endpoint.secret);
    await createVideo();
    const hook = await waitFor(() => received[0]);
    expect(hook.headers['signature']).toBe(sign(rotated.json.data.secret, hook.body));
  });

  it('sends fail, translation and agent events with their own shapes, filtered by subscription', async () => {
    sim.configure({ renderMs: 0, failNextJobs: 1 });
    await register(['avatar_video.fail', 'video_translate.success', 'video_agent.success']);
    const failed = await createVideo(avatar({ callback_id: 'f' }));
    await createVideo(); // avatar_video.success: not subscribed
    const tr = await call('POST', '/v3/video-translations', { body: translation({ callback_id: 't', output_languages: ['French'] }) });
    const ag = await call('POST', '/v3/video-agents', { body: { prompt: 'hello', callback_id: 'a' } });
    await waitFor(() => received.length === 3);
    await sim.webhooksIdle();
    const events = received.map((r) => JSON.parse(r.body)).sort((a, b) => a.event_type.localeCompare(b.event_type));
    expect(events.map((e) => e.event_type)).toEqual(['avatar_video.fail', 'video_agent.success', 'video_translate.success']);
    expect(events[0].event_data).toEqual({ video_id: failed, msg: expect.any(String), callback_id: 'f' });
    expect(events[1].event_data).toEqual({
      video_id: ag.json.data.video_id,
      session_id: ag.json.data.session_id,
      video_url: expect.any(String),
      callback_id: 'a',
    });
    expect(events[2].event_data).toEqual({
      video_translate_id: tr.json.data.video_translation_ids[0],
      url: expect.any(String),
      output_language: 'French',
      callback_id: 't',
    });
  });

  it('retries failed deliveries with backoff, then gives up', async () => {
    sim.configure({ renderMs: 0, webhookMaxAttempts: 3 });
    await register();
    answerWith = (n) => (n < 3 ? 500 : 200);
    await createVideo();
    await waitFor(() => received.length === 3);
    await sim.webhooksIdle();
    expect(sim.webhookDeliveries()[0]).toMatchObject({ outcome: 'delivered', attempts: 3, lastStatus: 200 });

    answerWith = () => 503;
    await createVideo();
    await waitFor(() => sim.webhookDeliveries()[1]?.outcome === 'failed');
    expect(sim.webhookDeliveries()[1]?.attempts).toBe(3);
    expect(sim.stats().webhooks).toMatchObject({ delivered: 1, failed: 1, attempts: 6 });
  });

  it('loses webhooks on demand', async () => {
    sim.configure({ renderMs: 0, loseWebhooks: true });
    await register();
    const id = await createVideo(avatar({ callback_url: `${receiverUrl}/callback` }));
    await waitFor(() => sim.job(id)?.status === 'completed');
    await sim.webhooksIdle();
    expect(received).toHaveLength(0);
    expect(sim.webhookDeliveries().map((d) => d.outcome)).toEqual(['lost', 'lost']);
    expect(sim.stats().webhooks.lost).toBe(2);
  });
});

describe('Idempotency-Key', () => {
  it('rejects malformed keys', async () => {
    for (const key of ['has space', 'x'.repeat(256), 'é']) {
      const res = await call('POST', '/v3/videos', { body: avatar(), headers: { 'Idempotency-Key': key } });
      expect(res.status).toBe(400);
      expect(res.json.error).toMatchObject({ code: 'validation_error', param: 'Idempotency-Key' });
    }
  });

  it('replays the original response and creates nothing more', async () => {
    const headers = { 'Idempotency-Key': 'job:123_a-b.c' };
    const first = await call('POST', '/v3/videos', { body: avatar(), headers });
    const again = await call('POST', '/v3/videos', { body: avatar({ script: 'different' }), headers });
    expect(again.status).toBe(first.status);
    expect(again.text).toBe(first.text);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(sim.stats().jobsCreated[KEY]).toBe(1);
    expect(sim.stats().idempotency.replays).toBe(1);
    // Keys are scoped to the api key.
    const other = await call('POST', '/v3/videos', { key: OTHER, body: avatar(), headers });
    expect(other.json.data.video_id).not.toBe(first.json.data.video_id);
  });

  it('does not store failed requests, so a corrected retry goes through', async () => {
    const headers = { 'Idempotency-Key': 'k1' };
    expect((await call('POST', '/v3/videos', { body: { type: 'bad' }, headers })).status).toBe(400);
    expect((await call('POST', '/v3/videos', { body: avatar(), headers })).status).toBe(200);
  });

  it('answers 409 request_in_progress to a duplicate that arrives while the first is processed', async () => {
    sim.configure({ latencyMs: 300 });
    const headers = { 'Idempotency-Key': 'same' };
    const first = call('POST', '/v3/videos', { body: avatar(), headers });
    // The key is claimed as soon as the request is counted, before the latency.
    await waitFor(() => sim.stats().requests['POST /v3/videos'] === 1);
    const b = await call('POST', '/v3/videos', { body: avatar(), headers });
    const a = await first;
    expect(a.status).toBe(200);
    expect(b.status).toBe(409);
    expect(b.json.error.code).toBe('request_in_progress');
    const c = await call('POST', '/v3/videos', { body: avatar(), headers });
    expect(c.text).toBe(a.text);
    expect(sim.stats().jobsCreated[KEY]).toBe(1);
  });

  it('forgets keys after the TTL', async () => {
    sim.configure({ idempotencyTtlMs: 20 });
    const headers = { 'Idempotency-Key': 'short' };
    const a = await call('POST', '/v3/videos', { body: avatar(), headers });
    await new Promise((r) => setTimeout(r, 40));
    const b = await call('POST', '/v3/videos', { body: avatar(), headers });
    expect(b.json.data.video_id).not.toBe(a.json.data.video_id);
  });
});

describe('creations per Idempotency-Key and outages', () => {
  it('counts 2xx creations per key, not replays, also when a 5xx follows the creation', async () => {
    const headers = { 'Idempotency-Key': 'job-1' };
    await call('POST', '/v3/videos', { body: avatar(), headers });
    await call('POST', '/v3/videos', { body: avatar(), headers });
    sim.configure({ fail5xxNext: 1, fail5xxAfterCreate: true });
    expect((await call('POST', '/v3/videos', { body: avatar(), headers: { 'Idempotency-Key': 'job-2' } })).status).toBeGreaterThanOrEqual(500);
    await call('POST', '/v3/videos', { body: avatar(), headers: { 'Idempotency-Key': 'job-2' } });
    await call('POST', '/v3/videos', { body: avatar() });
    expect(sim.stats().creationsByIdempotencyKey).toEqual({ 'job-1': 1, 'job-2': 1 });
    const control = await call('GET', '/_sim/stats', { key: null });
    expect(control.json.data.creationsByIdempotencyKey).toEqual({ 'job-1': 1, 'job-2': 1 });
  });

  it('goes down (connections cut, port refusing) and comes back on the same port with its jobs and keys', async () => {
    const headers = { 'Idempotency-Key': 'before-outage' };
    const first = await call('POST', '/v3/videos', { body: avatar(), headers });
    const port = sim.port;
    await sim.goDown();
    await expect(call('GET', '/_sim/health', { key: null })).rejects.toThrow();
    await sim.comeBack();
    expect(sim.port).toBe(port);
    const replay = await call('POST', '/v3/videos', { body: avatar(), headers });
    expect(replay.json.data.video_id).toBe(first.json.data.video_id);
    expect((await call('GET', `/v3/videos/${first.json.data.video_id}`)).status).toBe(200);
    expect(sim.stats().creationsByIdempotencyKey).toEqual({ 'before-outage': 1 });
  });
});

describe('concurrency and rate limits', () => {
  it('refuses creates past the concurrent-jobs limit with 429 and Retry-After', async () => {
    sim.addAccount({ apiKey: 'small', concurrencyLimit: 2 });
    sim.configure({ autoComplete: false, renderMs: 10 });
    const a = await createVideo(avatar(), 'small');
    await createVideo(avatar(), 'small');
    const refused = await call('POST', '/v3/videos', { key: 'small', body: avatar() });
    expect(refused.status).toBe(429);
    expect(refused.json.error.code).toBe('rate_limit_exceeded');
    expect(refused.headers.get('retry-after')).toBe('1');

    sim.completeNow(a);
    // One slot is free, but two languages need two.
    const translation2 = await call('POST', '/v3/video-translations', { key: 'small', body: translation({ output_languages: ['a', 'b'] }) });
    expect(translation2.status).toBe(429);
    expect((await call('POST', '/v3/video-agents', { key: 'small', body: { prompt: 'go' } })).status).toBe(200);
    expect(sim.stats()).toMatchObject({ inFlight: { small: 2 }, jobsCreated: { small: 3 }, rateLimited: { concurrency: 2 } });
  });

  it('computes Retry-After from the earliest job to finish', async () => {
    sim.addAccount({ apiKey: 'one', concurrencyLimit: 1 });
    sim.configure({ renderMs: 2900 });
    await createVideo(avatar(), 'one');
    const refused = await call('POST', '/v3/videos', { key: 'one', body: avatar() });
    expect(refused.headers.get('retry-after')).toBe('3');
  });

  it('injects 429 storms with Retry-After', async () => {
    sim.configure({ rateLimitNext: 2, retryAfterSeconds: 7 });
    for (let i = 0; i < 2; i++) {
      const res = await call('GET', '/v3/users/me');
      expect(res.status).toBe(429);
      expect(res.headers.get('retry-after')).toBe('7');
    }
    expect((await call('GET', '/v3/users/me')).status).toBe(200);
  });

  it('enforces an optional per-key request rate', async () => {
    sim.configure({ requestsPerSecond: 3 });
    const answers = await Promise.all(Array.from({ length: 10 }, () => call('GET', '/v3/users/me')));
    const okCount = answers.filter((a) => a.status === 200).length;
    // The burst may straddle a one-second window boundary, hence a range.
    expect(okCount).toBeGreaterThanOrEqual(3);
    expect(okCount).toBeLessThanOrEqual(6);
    expect(answers.find((a) => a.status === 429)?.headers.get('retry-after')).toBe('1');
    expect((await call('GET', '/v3/users/me', { key: OTHER })).status).toBe(200);
  });
});

describe('fault injection', () => {
  /** A client that retries 5xx and 409 with the same Idempotency-Key, as the gateway must. */
  async function createWithRetries(key: string): Promise<Answer> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const res = await call('POST', '/v3/videos', { body: avatar(), headers: { 'Idempotency-Key': key } });
      if (res.status < 500 && res.status !== 409) return res;
    }
    throw new Error('gave up');
  }

  it('5xx before the job is created: the retry creates exactly one job', async () => {
    sim.configure({ fail5xxNext: 1, fail5xxAfterCreate: false });
    const first = await call('POST', '/v3/videos', { body: avatar(), headers: { 'Idempotency-Key': 'r1' } });
    expect([500, 502, 503]).toContain(first.status);
    expect(sim.stats().jobsCreated[KEY]).toBeUndefined();
    const res = await createWithRetries('r1');
    expect(res.status).toBe(200);
    expect(sim.jobs(KEY).map((j) => j.id)).toEqual([res.json.data.video_id]);
  });

  it('5xx after the job is created: retries replay it, still exactly one job', async () => {
    sim.configure({ fail5xxNext: 3, fail5xxAfterCreate: true });
    const res = await createWithRetries('r2');
    expect(res.status).toBe(200);
    expect(sim.stats().faults.fail5xx).toBe(3);
    expect(sim.jobs(KEY).map((j) => j.id)).toEqual([res.json.data.video_id]);
  });

  it('timeouts: the job exists, a retry gets 409 while held, then the replay', async () => {
    sim.configure({ timeoutNext: 1, timeoutHoldMs: 800 });
    const headers = { 'Idempotency-Key': 'slow' };
    await expect(call('POST', '/v3/videos', { body: avatar(), headers, signal: AbortSignal.timeout(50) })).rejects.toThrow();
    await waitFor(() => sim.stats().faults.timeouts === 1);
    expect(sim.jobs(KEY)).toHaveLength(1);
    const during = await call('POST', '/v3/videos', { body: avatar(), headers });
    expect(during.status).toBe(409);
    const replay = await waitFor(async () => {
      const res = await call('POST', '/v3/videos', { body: avatar(), headers });
      return res.status === 200 && res;
    });
    expect(replay.json.data.video_id).toBe(sim.jobs(KEY)[0]?.id);
    expect(sim.stats().jobsCreated[KEY]).toBe(1);
  });

  it('malformed bodies: invalid JSON or no data, and the replay is sound', async () => {
    sim.configure({ malformedNext: 1, malformedKind: 'invalid_json' });
    const broken = await call('GET', '/v3/users/me');
    expect(broken.status).toBe(200);
    expect(broken.json).toBeUndefined();

    sim.configure({ malformedNext: 1, malformedKind: 'missing_data' });
    const headers = { 'Idempotency-Key': 'mal' };
    const noData = await call('POST', '/v3/videos', { body: avatar(), headers });
    expect(noData.status).toBe(200);
    expect(noData.json).toBeDefined();
    expect(noData.json.data).toBeUndefined();
    const replay = await call('POST', '/v3/videos', { body: avatar(), headers });
    expect(replay.json.data.video_id).toBe(sim.jobs(KEY)[0]?.id);
    expect(sim.stats().faults.malformed).toBe(2);
  });

  it('oversized answers: streamed with or without Content-Length, the create still happens, then the replay is sound', async () => {
    sim.configure({ oversizedNext: 1, oversizedBytes: 3 * 1024 * 1024 + 7, oversizedDeclareLength: true });
    const declared = await call('GET', '/v3/users/me');
    expect(declared.status).toBe(200);
    expect(declared.headers.get('content-length')).toBe(String(3 * 1024 * 1024 + 7));
    expect(declared.text.length).toBe(3 * 1024 * 1024 + 7);

    sim.configure({ oversizedNext: 1, oversizedBytes: 1024 * 1024, oversizedDeclareLength: false });
    const headers = { 'Idempotency-Key': 'huge' };
    const chunked = await call('POST', '/v3/videos', { body: avatar(), headers });
    expect(chunked.status).toBe(200);
    expect(chunked.headers.get('content-length')).toBeNull();
    expect(chunked.text).toBe('0'.repeat(1024 * 1024));
    expect(sim.jobs(KEY)).toHaveLength(1);
    const replay = await call('POST', '/v3/videos', { body: avatar(), headers });
    expect(replay.json.data.video_id).toBe(sim.jobs(KEY)[0]?.id);
    expect(sim.stats().faults.oversized).toBe(2);
    expect(sim.stats().jobsCreated[KEY]).toBe(1);
  });

  it('a client hanging up on a 1 GiB answer does not disturb the simulator', async () => {
    sim.configure({ oversizedNext: 1, oversizedBytes: 1024 ** 3 });
    const controller = new AbortController();
    const res = await fetch(`${sim.url}/v3/users/me`, { headers: { 'X-Api-Key': KEY }, signal: controller.signal });
    const reader = res.body!.getReader();
    let received = 0;
    while (received < 1024 * 1024) received += (await reader.read()).value!.byteLength;
    controller.abort();
    // The simulator serves the next request normally.
    const next = await call('GET', '/v3/users/me');
    expect(next.status).toBe(200);
    expect(next.json.data).toBeDefined();
  });

  it('adds latency to every request', async () => {
    sim.configure({ latencyMs: 80 });
    const started = Date.now();
    await call('GET', '/v3/users/me');
    expect(Date.now() - started).toBeGreaterThanOrEqual(75);
  });

  it('is deterministic for a given seed', async () => {
    const run = async (): Promise<string> => {
      sim.reset();
      sim.configure({ seed: 42, fail5xxRate: 0.3, failJobRate: 0.5, renderMs: 0 });
      const statuses: number[] = [];
      for (let i = 0; i < 12; i++) statuses.push((await call('POST', '/v3/videos', { body: avatar() })).status);
      await waitFor(() => sim.jobs(KEY).every((j) => j.status === 'completed' || j.status === 'failed'));
      return `${statuses.join(',')}|${sim.jobs(KEY).map((j) => j.status[0]).join('')}`;
    };
    const first = await run();
    expect(first).toMatch(/5\d\d/);
    expect(first).toMatch(/f/);
    expect(await run()).toBe(first);
  });

  it('close() does not hang on a held-open response', async () => {
    const own = await startSimulator({ config: { timeoutNext: 1, timeoutHoldMs: 60_000 }, accounts: [{ apiKey: KEY }] });
    const pending = call('POST', '/v3/videos', { base: own.url, body: avatar() });
    await waitFor(() => own.stats().faults.timeouts === 1);
    const started = Date.now();
    await own.close();
    expect(Date.now() - started).toBeLessThan(1000);
    await expect(pending).rejects.toThrow();
  });
});

describe('control API', () => {
  const control = (method: string, path: string, body?: unknown): Promise<Answer> =>
    call(method, `/_sim${path}`, { key: null, body });

  it('patches config, validates it, and reads it back', async () => {
    expect((await control('POST', '/config', { renderMs: 5, rates: { avatar_iii: 0.005 } })).json.data).toMatchObject({
      renderMs: 5,
      rates: { avatar_iii: '0.005', avatar_iv: '0.1' },
    });
    const bad = await control('POST', '/config', { renderMs: -1 });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatchObject({ code: 'validation_error', param: 'renderMs' });
    expect((await control('POST', '/config', { bogus: 1 })).status).toBe(400);
    expect((await control('GET', '/config')).json.data.renderMs).toBe(5);
  });

  it('adds accounts, forces jobs terminal, reports stats and resets', async () => {
    const added = await control('POST', '/accounts', { apiKey: 'pkg', billingType: 'wallet', walletCredits: '100.5', concurrencyLimit: 3 });
    expect(added.json.data).toMatchObject({ apiKey: 'pkg', billingType: 'wallet', concurrencyLimit: 3 });
    expect((await call('GET', '/v3/users/me', { key: 'pkg' })).json.data.wallet.remaining_balance).toBe(100.5);

    await control('POST', '/config', { autoComplete: false });
    const a = await createVideo(avatar(), 'pkg');
    const b = await createVideo(avatar(), 'pkg');
    const completed = await control('POST', `/jobs/${a}/complete`, { durationSeconds: 10 });
    expect(completed.json.data).toMatchObject({ changed: true, job: { status: 'completed', durationSeconds: 10, costMicroCreditSeconds: '60000000' } });
    const failed = await control('POST', `/jobs/${b}/fail`, { failureCode: 'MOVIO_ERR', failureMessage: 'boom' });
    expect(failed.json.data.job).toMatchObject({ status: 'failed', failureCode: 'MOVIO_ERR' });
    expect(await videoStatus(b, 'pkg')).toMatchObject({ status: 'failed', failure_code: 'MOVIO_ERR', failure_message: 'boom' });
    expect((await control('POST', '/jobs/nope/complete')).status).toBe(404);

    await control('POST', '/usage', { apiKey: 'pkg', creditSeconds: '30' });
    const stats = (await control('GET', '/stats')).json.data;
    expect(stats).toMatchObject({
      requests: { 'POST /v3/videos': 2, 'GET /v3/users/me': 1, 'GET /v3/videos/{video_id}': 1 },
      jobsCreated: { pkg: 2 },
      jobsCompleted: { pkg: 1 },
      jobsFailed: { pkg: 1 },
      inFlight: { pkg: 0 },
      usage: { pkg: { gateway: '60000000', outside: '30000000', total: '90000000' } },
    });
    expect((await control('GET', '/jobs?api_key=pkg')).json.data).toHaveLength(2);

    expect((await control('POST', '/reset')).status).toBe(200);
    expect((await call('GET', '/v3/users/me', { key: 'pkg' })).status).toBe(401);
    expect((await control('GET', '/stats')).json.data.jobsCreated).toEqual({});
    expect((await control('GET', '/config')).json.data.autoComplete).toBe(true);
    expect((await control('GET', '/nope')).status).toBe(404);
  });
});

describe('CLI', () => {
  it('starts on the given port with the given keys and stops on SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      [dist('heygen/simulator/main.js'), '--port', '0', '--api-key', 'cli_a', '--api-key', 'cli_b'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      // Generous: a loaded machine starts processes slowly.
      const url = await waitFor(() => output.includes('API key(s)') && /listening on (http:\/\/\S+)/.exec(output)?.[1], 25_000);
      expect(output).toContain('cli_a, cli_b');
      expect((await call('GET', '/v3/users/me', { base: url, key: 'cli_b' })).status).toBe(200);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  }, 30_000);
});

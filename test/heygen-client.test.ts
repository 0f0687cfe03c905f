import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable, pipeline } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  createHeygenClient,
  HeygenError,
  parseRetryAfter,
  parseWebhookEvent,
  verifyWebhookSignature,
  type HeygenClientOptions,
  type HeygenConnection,
} from '../src/heygen/client.js';
import { numberToDecimal as formatDecimal } from '../src/primitives/money.js';

// ----- a scripted fake HeyGen ------------------------------------------------------------------

interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  json: unknown;
}

type Reply =
  | { status: number; body?: unknown; raw?: string; headers?: Record<string, string> }
  | 'hang'
  | 'destroy';

interface FakeServer {
  baseUrl: string;
  requests: RecordedRequest[];
  /** Calls that arrived after the script ran out. */
  unexpected: RecordedRequest[];
}

const openServers: http.Server[] = [];

afterEach(async () => {
  await Promise.all(
    openServers.splice(0).map(
      (server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    ),
  );
});

/** A reply list is consumed in order (extra calls get 599 and are recorded); a function answers every call. */
async function fakeHeygen(script: Reply[] | ((req: RecordedRequest, index: number) => Reply)): Promise<FakeServer> {
  const requests: RecordedRequest[] = [];
  const unexpected: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: unknown = undefined;
      try {
        json = body ? JSON.parse(body) : undefined;
      } catch {
        json = undefined;
      }
      const recorded: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, json };
      const index = requests.length;
      requests.push(recorded);
      let reply: Reply | undefined;
      if (typeof script === 'function') reply = script(recorded, index);
      else reply = script[index];
      if (reply === undefined) {
        unexpected.push(recorded);
        res.writeHead(599).end();
        return;
      }
      if (reply === 'hang') return;
      if (reply === 'destroy') {
        req.socket.destroy();
        return;
      }
      const text = reply.raw ?? (reply.body === undefined ? '' : JSON.stringify(reply.body));
      res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
      res.end(text);
    });
  });
  openServers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { baseUrl: `http://127.0.0.1:${port}/`, requests, unexpected };
}

const API_KEY = 'hg_live_TOPSECRET_0123456789abcdef';

function setup(server: FakeServer, options: HeygenClientOptions = {}) {
  const sleeps: number[] = [];
  const logs: object[] = [];
  const client = createHeygenClient({
    timeoutMs: 2_000,
    maxAttempts: 3,
    baseDelayMs: 100,
    maxDelayMs: 1_000,
    random: () => 0.5,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    logger: { warn: (obj) => logs.push(obj) },
    ...options,
  });
  const conn: HeygenConnection = { baseUrl: server.baseUrl, apiKey: API_KEY };
  return { client, conn, sleeps, logs };
}

const submitOpts = { idempotencyKey: 'job_01HZX:abc-1', callbackId: 'job_01HZX' };

// ----- submitJob: routes and item mapping ------------------------------------------------------

describe('submitJob routes and item mapping', () => {
  it('AVATAR_VIDEO posts to /v3/videos with key, idempotency key and callback fields', async () => {
    const server = await fakeHeygen([{ status: 200, body: { data: { video_id: 'v_1', status: 'waiting', output_format: 'mp4' } } }]);
    const { client, conn } = setup(server);
    const body = { type: 'avatar', avatar_id: 'a1', script: 'Hello', voice_id: 'vo1', callback_id: 'caller-supplied' };
    const outcome = await client.submitJob(conn, 'AVATAR_VIDEO', body, {
      ...submitOpts,
      callbackUrl: 'https://gw.example/webhooks/heygen/acc1',
    });

    expect(outcome).toEqual({ type: 'accepted', items: [{ upstreamId: 'v_1', kind: 'video' }] });
    expect(server.requests).toHaveLength(1);
    const [req] = server.requests;
    expect(req?.method).toBe('POST');
    expect(req?.url).toBe('/v3/videos');
    expect(req?.headers['x-api-key']).toBe(API_KEY);
    expect(req?.headers['content-type']).toBe('application/json');
    expect(req?.headers['idempotency-key']).toBe(submitOpts.idempotencyKey);
    // Answers are read as sent (nothing decodes a compressed one), so none may come compressed; and a named client.
    expect(req?.headers['accept-encoding']).toBe('identity');
    expect(req?.headers['user-agent']).toMatch(/^heygen-gateway\//);
    expect(req?.json).toEqual({
      type: 'avatar',
      avatar_id: 'a1',
      script: 'Hello',
      voice_id: 'vo1',
      callback_id: 'job_01HZX',
      callback_url: 'https://gw.example/webhooks/heygen/acc1',
    });
    // The caller's stored request is not modified.
    expect(body.callback_id).toBe('caller-supplied');
  });

  it('TEMPLATE_VIDEO posts to the encoded template path without template_id in the body', async () => {
    const server = await fakeHeygen([
      { status: 200, body: { data: { id: 'v_tpl', status: 'pending', duration: null, title: 'x' } } },
    ]);
    const { client, conn } = setup(server);
    const body = { template_id: 'tpl/1 a', variables: { name: { type: 'text', properties: { content: 'Ann' } } } };
    const outcome = await client.submitJob(conn, 'TEMPLATE_VIDEO', body, submitOpts);

    expect(outcome).toEqual({ type: 'accepted', items: [{ upstreamId: 'v_tpl', kind: 'video' }] });
    expect(server.requests[0]?.url).toBe('/v3/templates/tpl%2F1%20a');
    expect(server.requests[0]?.json).toEqual({ variables: body.variables, callback_id: 'job_01HZX' });
    expect(body.template_id).toBe('tpl/1 a');
  });

  it('TEMPLATE_VIDEO without a template_id is rejected locally and nothing is sent', async () => {
    const server = await fakeHeygen([]);
    const { client, conn } = setup(server);
    const outcome = await client.submitJob(conn, 'TEMPLATE_VIDEO', { variables: {} }, submitOpts);
    expect(outcome).toMatchObject({ type: 'rejected', httpStatus: 0, code: 'validation_error', param: 'template_id' });
    expect(server.requests).toHaveLength(0);
  });

  it('VIDEO_TRANSLATION yields one item per id, paired with output_languages by index', async () => {
    const server = await fakeHeygen([{ status: 200, body: { data: { video_translation_ids: ['t_es', 't_fr', 't_de'] } } }]);
    const { client, conn } = setup(server);
    const outcome = await client.submitJob(
      conn,
      'VIDEO_TRANSLATION',
      { video: { type: 'url', url: 'https://x/v.mp4' }, output_languages: ['Spanish (Spain)', 'French', 'German'] },
      submitOpts,
    );
    expect(server.requests[0]?.url).toBe('/v3/video-translations');
    expect(outcome).toEqual({
      type: 'accepted',
      items: [
        { upstreamId: 't_es', kind: 'translation', language: 'Spanish (Spain)' },
        { upstreamId: 't_fr', kind: 'translation', language: 'French' },
        { upstreamId: 't_de', kind: 'translation', language: 'German' },
      ],
    });
  });

  it('VIDEO_TRANSLATION does not guess languages when the counts differ', async () => {
    const server = await fakeHeygen([{ status: 200, body: { data: { video_translation_ids: ['t1', 't2'] } } }]);
    const { client, conn, logs } = setup(server);
    const outcome = await client.submitJob(
      conn,
      'VIDEO_TRANSLATION',
      { video: { type: 'url', url: 'https://x/v.mp4' }, output_languages: ['Spanish'] },
      submitOpts,
    );
    expect(outcome).toEqual({
      type: 'accepted',
      items: [
        { upstreamId: 't1', kind: 'translation' },
        { upstreamId: 't2', kind: 'translation' },
      ],
    });
    expect(logs).toHaveLength(1);
  });

  it('VIDEO_AGENT yields the session, with its video id when there is one', async () => {
    const server = await fakeHeygen([
      { status: 200, body: { data: { session_id: 's_1', status: 'generating', video_id: 'v_a', created_at: 1 } } },
      { status: 200, body: { data: { session_id: 's_2', status: 'thinking', video_id: null, created_at: 1 } } },
    ]);
    const { client, conn } = setup(server);
    const first = await client.submitJob(conn, 'VIDEO_AGENT', { prompt: 'Make a video' }, submitOpts);
    const second = await client.submitJob(conn, 'VIDEO_AGENT', { prompt: 'Another' }, { ...submitOpts, idempotencyKey: 'k2' });
    expect(server.requests[0]?.url).toBe('/v3/video-agents');
    expect(first).toEqual({ type: 'accepted', items: [{ upstreamId: 's_1', kind: 'agent_session', videoId: 'v_a' }] });
    expect(second).toEqual({ type: 'accepted', items: [{ upstreamId: 's_2', kind: 'agent_session' }] });
  });

  it('refuses an idempotency key outside the allowed alphabet without sending', async () => {
    const server = await fakeHeygen([]);
    const { client, conn } = setup(server);
    const outcome = await client.submitJob(conn, 'AVATAR_VIDEO', {}, { ...submitOpts, idempotencyKey: 'has space' });
    expect(outcome).toMatchObject({ type: 'rejected', httpStatus: 0, code: 'invalid_request' });
    expect(server.requests).toHaveLength(0);
  });
});

// ----- submitJob: retry policy -----------------------------------------------------------------

const accepted = { status: 200, body: { data: { video_id: 'v_ok', status: 'waiting' } } } as const;

describe('submitJob retry policy', () => {
  it('honours Retry-After in seconds and as an HTTP date', async () => {
    const inFive = new Date(Date.now() + 5_000).toUTCString();
    const server = await fakeHeygen([
      { status: 429, body: { error: { code: 'rate_limit_exceeded', message: 'slow down' } }, headers: { 'retry-after': '3' } },
      { status: 429, body: { error: { code: 'rate_limit_exceeded', message: 'slow down' } }, headers: { 'retry-after': inFive } },
      accepted,
    ]);
    const { client, conn, sleeps } = setup(server);
    const outcome = await client.submitJob(conn, 'AVATAR_VIDEO', { type: 'avatar' }, submitOpts);
    expect(outcome.type).toBe('accepted');
    expect(sleeps).toHaveLength(2);
    expect(sleeps[0]).toBe(3_000);
    expect(sleeps[1]).toBeGreaterThan(3_000);
    expect(sleeps[1]).toBeLessThanOrEqual(5_000);
  });

  it('falls back to capped exponential backoff when 429 has no Retry-After', async () => {
    const limited = { status: 429, body: { error: { code: 'rate_limit_exceeded', message: 'x' } } };
    const server = await fakeHeygen([limited, limited, limited, limited, accepted]);
    const { client, conn, sleeps } = setup(server, { maxAttempts: 5, baseDelayMs: 400, maxDelayMs: 1_000 });
    const outcome = await client.submitJob(conn, 'AVATAR_VIDEO', {}, submitOpts);
    expect(outcome.type).toBe('accepted');
    // random() = 0.5 → 3/4 of min(max, base·2^(n-1))
    expect(sleeps).toEqual([300, 600, 750, 750]);
  });

  it('gives up as unknown when Retry-After is longer than the client waits', async () => {
    const server = await fakeHeygen([
      { status: 429, body: { error: { code: 'rate_limit_exceeded', message: 'x' } }, headers: { 'retry-after': '3600' } },
    ]);
    const { client, conn, sleeps } = setup(server, { maxRetryAfterMs: 60_000 });
    const outcome = await client.submitJob(conn, 'AVATAR_VIDEO', {}, submitOpts);
    expect(outcome).toMatchObject({ type: 'unknown', httpStatus: 429, code: 'rate_limit_exceeded', retryAfterMs: 3_600_000 });
    expect(sleeps).toEqual([]);
  });

  it('429 until attempts run out is unknown, not rejected', async () => {
    const server = await fakeHeygen(() => ({
      status: 429,
      body: { error: { code: 'rate_limit_exceeded', message: 'concurrent jobs' } },
      headers: { 'retry-after': '1' },
    }));
    const { client, conn } = setup(server);
    const outcome = await client.submitJob(conn, 'AVATAR_VIDEO', {}, submitOpts);
    expect(outcome).toMatchObject({ type: 'unknown', httpStatus: 429 });
    expect(server.requests).toHaveLength(3);
  });

  it('retries a 5xx, re-sending the same Idempotency-Key and body', async () => {
    const server = await fakeHeygen([{ status: 502, raw: '<html>bad gateway</html>' }, { status: 503 }, accepted]);
    const { client, conn, sleeps } = setup(server);
    const outcome = await client.submitJob(conn, 'AVATAR_VIDEO', { type: 'avatar', script: 'hi' }, submitOpts);
    expect(outcome).toEqual({ type: 'accepted', items: [{ upstreamId: 'v_ok', kind: 'video' }] });
    expect(server.requests).toHaveLength(3);
    const keys = server.requests.map((r) => r.headers['idempotency-key']);
    expect(keys).toEqual([submitOpts.idempotencyKey, submitOpts.idempotencyKey, submitOpts.idempotencyKey]);
    expect(new Set(server.requests.map((r) => r.body)).size).toBe(1);
    expect(sleeps).toEqual([75, 150]);
  });

  it('timeouts are retried and end as unknown', async () => {
    const server = await fakeHeygen(() => 'hang');
    const { client, conn, sleeps } = setup(server, { timeoutMs: 60, maxAttempts: 3 });
    const outcome = await client.submitJob(conn, 'AVATAR_VIDEO', {}, submitOpts);
    expect(outcome.type).toBe('unknown');
    expect(outcome).toMatchObject({ code: 'timeout' });
    if (outcome.type === 'unknown') expect(outcome.reason).toMatch(/timed out after 60 ms/);
    expect(server.requests).toHaveLength(3);
    expect(sleeps).toHaveLength(2);
  });

  it('a dropped connection is retried and can then succeed', async () => {
    const server = await fakeHeygen(['destroy', accepted]);
    const { client, conn } = setup(server);
    const outcome = await client.submitJob(conn, 'AVATAR_VIDEO', {}, submitOpts);
    expect(outcome.type).toBe('accepted');
    expect(server.requests).toHaveLength(2);
  });

  it('a malformed 2xx is retried and then accepted', async () => {
    const server = await fakeHeygen([{ status: 200, raw: 'not json' }, { status: 200, body: { data: {} } }, accepted]);
    const { client, conn } = setup(server);
    const outcome = await client.submitJob(conn, 'AVATAR_VIDEO', {}, submitOpts);
    expect(outcome.type).toBe('accepted');
    expect(server.requests).toHaveLength(3);
  });

  it('a persistently malformed 2xx ends as unknown', async () => {
    const server = await fakeHeygen(() => ({ status: 200, body: { data: { video_translation_ids: [] } } }));
    const { client, conn } = setup(server);
    const outcome = await client.submitJob(conn, 'VIDEO_TRANSLATION', { output_languages: ['French'] }, submitOpts);
    expect(outcome).toMatchObject({ type: 'unknown', code: 'malformed_response', httpStatus: 200 });
    expect(server.requests).toHaveLength(3);
  });

  it('a 4xx is rejected at once with the parsed v3 error', async () => {
    const server = await fakeHeygen([
      {
        status: 402,
        body: { error: { code: 'insufficient_credit', message: 'Not enough credits', param: 'resolution', doc_url: 'https://d' } },
      },
    ]);
    const { client, conn, sleeps } = setup(server);
    const outcome = await client.submitJob(conn, 'AVATAR_VIDEO', {}, submitOpts);
    expect(outcome).toEqual({
      type: 'rejected',
      httpStatus: 402,
      code: 'insufficient_credit',
      message: 'Not enough credits',
      param: 'resolution',
    });
    expect(server.requests).toHaveLength(1);
    expect(sleeps).toEqual([]);
  });

  it('a 4xx with a non-JSON body is still rejected', async () => {
    const server = await fakeHeygen([{ status: 400, raw: 'Bad Request', headers: { 'content-type': 'text/plain' } }]);
    const { client, conn } = setup(server);
    const outcome = await client.submitJob(conn, 'AVATAR_VIDEO', {}, submitOpts);
    expect(outcome).toEqual({ type: 'rejected', httpStatus: 400, code: 'http_400', message: 'Bad Request' });
  });

  it('409 request_in_progress is retried with the same key', async () => {
    const server = await fakeHeygen([
      { status: 409, body: { error: { code: 'request_in_progress', message: 'in flight' } } },
      accepted,
    ]);
    const { client, conn, sleeps } = setup(server);
    const outcome = await client.submitJob(conn, 'AVATAR_VIDEO', {}, submitOpts);
    expect(outcome.type).toBe('accepted');
    expect(server.requests.map((r) => r.headers['idempotency-key'])).toEqual([submitOpts.idempotencyKey, submitOpts.idempotencyKey]);
    expect(sleeps).toEqual([75]);
  });

  it('any other 409 is unknown (the key may already have created the job), not rejected', async () => {
    const server = await fakeHeygen([{ status: 409, body: { error: { code: 'conflict', message: 'key reused' } } }]);
    const { client, conn } = setup(server);
    const outcome = await client.submitJob(conn, 'AVATAR_VIDEO', {}, submitOpts);
    expect(outcome).toMatchObject({ type: 'unknown', httpStatus: 409, code: 'conflict' });
    expect(server.requests).toHaveLength(1);
  });

  it('does not follow redirects (the API key would travel with them)', async () => {
    const server = await fakeHeygen([{ status: 307, headers: { location: 'http://127.0.0.1:1/elsewhere' } }]);
    const { client, conn } = setup(server);
    const outcome = await client.submitJob(conn, 'AVATAR_VIDEO', {}, submitOpts);
    expect(outcome).toMatchObject({ type: 'unknown', httpStatus: 307 });
    expect(server.requests).toHaveLength(1);
  });
});

// ----- status reads --------------------------------------------------------------------------

function video(data: Record<string, unknown>) {
  return { status: 200, body: { data: { id: 'v1', status: 'completed', duration: 12.4, ...data } } };
}

describe('status reads', () => {
  it('getVideo normalises a completed video and renders the duration as a decimal string', async () => {
    const server = await fakeHeygen([video({ video_url: 'https://cdn/v1.mp4' })]);
    const { client, conn } = setup(server);
    const state = await client.getVideo(conn, 'v1');
    expect(state).toEqual({
      id: 'v1',
      status: 'completed',
      durationSeconds: '12.4',
      failureCode: null,
      failureMessage: null,
      callbackId: null,
      outputUrl: 'https://cdn/v1.mp4',
    });
    expect(server.requests[0]?.method).toBe('GET');
    expect(server.requests[0]?.url).toBe('/v3/videos/v1');
    expect(server.requests[0]?.headers['x-api-key']).toBe(API_KEY);
  });

  it('getVideo renders tiny and huge durations without exponent notation', async () => {
    const server = await fakeHeygen([video({ duration: 1e-7 }), video({ duration: 1.5e21 }), video({ duration: 0 })]);
    const { client, conn } = setup(server);
    expect((await client.getVideo(conn, 'v1')).durationSeconds).toBe('0.0000001');
    expect((await client.getVideo(conn, 'v1')).durationSeconds).toBe('1500000000000000000000');
    expect((await client.getVideo(conn, 'v1')).durationSeconds).toBe('0');
  });

  it('getVideo reports a failure with its code and message', async () => {
    const server = await fakeHeygen([
      video({ status: 'failed', duration: null, failure_code: 'avatar_error', failure_message: 'Avatar unavailable' }),
    ]);
    const { client, conn } = setup(server);
    expect(await client.getVideo(conn, 'v1')).toMatchObject({
      status: 'failed',
      durationSeconds: null,
      failureCode: 'avatar_error',
      failureMessage: 'Avatar unavailable',
    });
  });

  it('a negative duration is malformed: retried, then a retryable HeygenError', async () => {
    const server = await fakeHeygen(() => video({ duration: -3 }));
    const { client, conn } = setup(server);
    const error = await client.getVideo(conn, 'v1').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HeygenError);
    expect(error).toMatchObject({ code: 'malformed_response', retryable: true, httpStatus: 200 });
    expect(server.requests).toHaveLength(3);
  });

  it('an answer about a different id is malformed', async () => {
    const server = await fakeHeygen(() => video({ id: 'someone-else' }));
    const { client, conn } = setup(server, { maxAttempts: 1 });
    await expect(client.getVideo(conn, 'v1')).rejects.toMatchObject({ code: 'malformed_response' });
  });

  it('an unknown status value is malformed', async () => {
    const server = await fakeHeygen(() => video({ status: 'exploded' }));
    const { client, conn } = setup(server, { maxAttempts: 1 });
    await expect(client.getVideo(conn, 'v1')).rejects.toMatchObject({ code: 'malformed_response' });
  });

  it('getVideo passes on only a plain http(s) video_url; anything else is ignored, never an error', async () => {
    const server = await fakeHeygen([video({ video_url: 42 }), video({ video_url: 'javascript:alert(1)' }), video({ video_url: null })]);
    const { client, conn } = setup(server);
    for (let i = 0; i < 3; i++) expect(await client.getVideo(conn, 'v1')).toMatchObject({ status: 'completed', durationSeconds: '12.4', outputUrl: null });
  });

  it('getVideo: a v3 404 is not_found; a 404 without a v3 error body throws', async () => {
    const server = await fakeHeygen([
      { status: 404, body: { error: { code: 'not_found', message: 'Video not found' } } },
      { status: 404, raw: '<html>Not Found</html>', headers: { 'content-type': 'text/html' } },
    ]);
    const { client, conn } = setup(server);
    expect(await client.getVideo(conn, 'v/404')).toEqual({
      id: 'v/404',
      status: 'not_found',
      durationSeconds: null,
      failureCode: null,
      failureMessage: null,
      callbackId: null,
      outputUrl: null,
    });
    expect(server.requests[0]?.url).toBe('/v3/videos/v%2F404');
    await expect(client.getVideo(conn, 'v1')).rejects.toMatchObject({ httpStatus: 404, code: 'http_404', retryable: false });
  });

  it('reads retry 5xx and 429, then succeed', async () => {
    const server = await fakeHeygen([
      { status: 500, body: { error: { code: 'internal_error', message: 'oops' } } },
      { status: 429, headers: { 'retry-after': '2' } },
      video({}),
    ]);
    const { client, conn, sleeps } = setup(server);
    expect((await client.getVideo(conn, 'v1')).status).toBe('completed');
    expect(sleeps).toEqual([75, 2_000]);
  });

  it('reads throw a non-retryable HeygenError on other 4xx', async () => {
    const server = await fakeHeygen([{ status: 401, body: { error: { code: 'unauthorized', message: 'Invalid API key' } } }]);
    const { client, conn } = setup(server);
    const error = await client.getVideo(conn, 'v1').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HeygenError);
    expect(error).toMatchObject({ httpStatus: 401, code: 'unauthorized', retryable: false });
    expect(server.requests).toHaveLength(1);
  });

  it('reads that keep failing throw a retryable HeygenError', async () => {
    const server = await fakeHeygen(() => ({ status: 503 }));
    const { client, conn } = setup(server);
    await expect(client.getTranslation(conn, 't1')).rejects.toMatchObject({ httpStatus: 503, retryable: true });
    expect(server.requests).toHaveLength(3);
  });

  it('getTranslation maps running to processing and keeps callback_id and duration', async () => {
    const server = await fakeHeygen([
      { status: 200, body: { data: { id: 't1', status: 'running', duration: null, callback_id: 'job_1' } } },
      { status: 200, body: { data: { id: 't1', status: 'completed', duration: 61.25, callback_id: 'job_1', output_language: 'fr' } } },
      { status: 404, body: { error: { code: 'not_found', message: 'nope' } } },
    ]);
    const { client, conn } = setup(server);
    expect(await client.getTranslation(conn, 't1')).toEqual({
      id: 't1',
      status: 'processing',
      durationSeconds: null,
      failureCode: null,
      failureMessage: null,
      callbackId: 'job_1',
      outputUrl: null,
    });
    expect(server.requests[0]?.url).toBe('/v3/video-translations/t1');
    expect(await client.getTranslation(conn, 't1')).toMatchObject({ status: 'completed', durationSeconds: '61.25' });
    expect((await client.getTranslation(conn, 't1')).status).toBe('not_found');
  });

  it('getAgentSession normalises the session', async () => {
    const server = await fakeHeygen([
      { status: 200, body: { data: { session_id: 's1', status: 'waiting_for_input', video_id: null, created_at: 1, progress: 40 } } },
      { status: 200, body: { data: { session_id: 's1', status: 'completed', video_id: 'v9', created_at: 1 } } },
    ]);
    const { client, conn } = setup(server);
    expect(await client.getAgentSession(conn, 's1')).toEqual({ sessionId: 's1', status: 'waiting_for_input', videoId: null });
    expect(await client.getAgentSession(conn, 's1')).toEqual({ sessionId: 's1', status: 'completed', videoId: 'v9' });
    expect(server.requests[0]?.url).toBe('/v3/video-agents/s1');
  });
});

// ----- bulk statuses ---------------------------------------------------------------------------

describe('bulk statuses', () => {
  const cycle = ['queued', 'processing', 'completed', 'failed', 'not_found'] as const;

  function answerFor(param: string) {
    return (req: RecordedRequest): Reply => {
      const url = new URL(req.url, 'http://x');
      const ids = (url.searchParams.get(param) ?? '').split(',');
      return {
        status: 200,
        body: {
          data: [
            ...ids.map((videoId) => ({ video_id: videoId, status: cycle[Number(videoId.slice(3)) % cycle.length] })),
            { video_id: null, status: 'queued', batch_id: 'b1', item_index: 0 },
            { video_id: 'not-asked-for', status: 'completed' },
          ],
          has_more: false,
        },
      };
    };
  }

  it('getVideoStatuses chunks by 100 and maps the statuses', async () => {
    const server = await fakeHeygen(answerFor('video_ids'));
    const { client, conn } = setup(server);
    const ids = Array.from({ length: 250 }, (_, i) => `vid${i}`);
    const statuses = await client.getVideoStatuses(conn, [...ids, 'vid0']);

    expect(server.requests).toHaveLength(3);
    const sizes = server.requests.map((r) => new URL(r.url, 'http://x').searchParams.get('video_ids')?.split(',').length);
    expect(sizes).toEqual([100, 100, 50]);
    expect(server.requests.every((r) => r.url.startsWith('/v3/videos/statuses?video_ids='))).toBe(true);
    expect(statuses.size).toBe(250);
    expect(statuses.get('vid0')).toBe('pending');
    expect(statuses.get('vid1')).toBe('processing');
    expect(statuses.get('vid2')).toBe('completed');
    expect(statuses.get('vid3')).toBe('failed');
    expect(statuses.get('vid4')).toBe('not_found');
    expect(statuses.has('not-asked-for')).toBe(false);
  });

  it('getTranslationStatuses uses video_translation_ids', async () => {
    const server = await fakeHeygen(answerFor('video_translation_ids'));
    const { client, conn } = setup(server);
    const statuses = await client.getTranslationStatuses(conn, ['vid1', 'vid2']);
    expect(server.requests[0]?.url).toBe('/v3/video-translations/statuses?video_translation_ids=vid1,vid2');
    expect([...statuses]).toEqual([
      ['vid1', 'processing'],
      ['vid2', 'completed'],
    ]);
  });

  it('leaves out statuses it does not know, and sends nothing for no ids', async () => {
    const server = await fakeHeygen([{ status: 200, body: { data: [{ video_id: 'a', status: 'teleported' }, { video_id: 'b', status: 'failed' }] } }]);
    const { client, conn, logs } = setup(server);
    expect(await client.getVideoStatuses(conn, [])).toEqual(new Map());
    expect(server.requests).toHaveLength(0);
    const statuses = await client.getVideoStatuses(conn, ['a', 'b']);
    expect([...statuses]).toEqual([['b', 'failed']]);
    expect(logs).toHaveLength(1);
  });
});

// ----- user, webhooks --------------------------------------------------------------------------

describe('getUser', () => {
  it('normalises usage_based and wallet amounts to decimal strings', async () => {
    const usage = {
      data: {
        username: 'ent',
        email: null,
        first_name: null,
        last_name: null,
        billing_type: 'usage_based',
        wallet: null,
        subscription: null,
        usage_based: { included_credits: 600000, remaining_credits: 123456.5, spending_cap_usd: null, spending_current_usd: 833 },
      },
    };
    const wallet = {
      data: {
        username: 'pkg',
        email: 'a@b',
        first_name: null,
        last_name: null,
        billing_type: 'wallet',
        wallet: { currency: 'credits', remaining_balance: 1e-7, auto_reload: null },
        usage_based: null,
      },
    };
    const server = await fakeHeygen([
      { status: 200, body: usage },
      { status: 200, body: wallet },
    ]);
    const { client, conn } = setup(server);
    expect(await client.getUser(conn)).toEqual({
      billingType: 'usage_based',
      usageBased: { includedCredits: '600000', remainingCredits: '123456.5', spendingCapUsd: null, spendingCurrentUsd: '833' },
      wallet: null,
      raw: usage,
    });
    expect(server.requests[0]?.url).toBe('/v3/users/me');
    expect(await client.getUser(conn)).toMatchObject({
      billingType: 'wallet',
      usageBased: null,
      wallet: { currency: 'credits', remainingBalance: '0.0000001' },
    });
  });

  it('uses the configured path and rejects an unknown wallet currency', async () => {
    const server = await fakeHeygen(() => ({
      status: 200,
      body: { data: { username: 'x', billing_type: 'wallet', wallet: { currency: 'eur', remaining_balance: 5 } } },
    }));
    const { client, conn } = setup(server, { userMePath: '/v3/user/me', maxAttempts: 1 });
    await expect(client.getUser(conn)).rejects.toMatchObject({ code: 'malformed_response' });
    expect(server.requests[0]?.url).toBe('/v3/user/me');
  });
});

describe('registerWebhookEndpoint', () => {
  it('posts url and events with an idempotency key and returns id and secret', async () => {
    const server = await fakeHeygen([
      { status: 500 },
      {
        status: 200,
        body: {
          data: {
            endpoint_id: 'ep_1',
            url: 'https://gw/wh',
            events: ['avatar_video.success'],
            status: 'enabled',
            created_at: '2026-01-01T00:00:00Z',
            secret: 'whsec_abc',
          },
        },
      },
    ]);
    const { client, conn } = setup(server);
    const result = await client.registerWebhookEndpoint(conn, 'https://gw/wh', ['avatar_video.success']);
    expect(result).toEqual({ endpointId: 'ep_1', secret: 'whsec_abc' });
    expect(server.requests[1]?.url).toBe('/v3/webhooks/endpoints');
    expect(server.requests[1]?.json).toEqual({ url: 'https://gw/wh', events: ['avatar_video.success'] });
    const keys = server.requests.map((r) => r.headers['idempotency-key']);
    expect(keys[0]).toBeTruthy();
    expect(keys[1]).toBe(keys[0]);
  });
});

describe('verifyWebhookSignature', () => {
  const secret = 'whsec_test_secret';
  const body = '{"event_type":"avatar_video.success","event_data":{"video_id":"v1"}}';
  const hex = createHmac('sha256', secret).update(body).digest('hex');
  const b64 = createHmac('sha256', secret).update(body).digest('base64');

  it('accepts a good hex signature, with or without sha256=, string or Buffer body', () => {
    expect(verifyWebhookSignature(body, secret, hex)).toBe(true);
    expect(verifyWebhookSignature(body, secret, `sha256=${hex}`)).toBe(true);
    expect(verifyWebhookSignature(body, secret, hex.toUpperCase())).toBe(true);
    expect(verifyWebhookSignature(Buffer.from(body), secret, hex)).toBe(true);
  });

  it('accepts a good base64 signature in the base64 scheme only', () => {
    expect(verifyWebhookSignature(body, secret, b64, 'hmac-sha256-base64')).toBe(true);
    expect(verifyWebhookSignature(body, secret, `sha256=${b64}`, 'hmac-sha256-base64')).toBe(true);
    expect(verifyWebhookSignature(body, secret, b64)).toBe(false);
    expect(verifyWebhookSignature(body, secret, hex, 'hmac-sha256-base64')).toBe(false);
  });

  it('rejects bad, truncated, over-long, missing and wrong-secret signatures', () => {
    const flipped = (hex[0] === 'a' ? 'b' : 'a') + hex.slice(1);
    expect(verifyWebhookSignature(body, secret, flipped)).toBe(false);
    expect(verifyWebhookSignature(body + ' ', secret, hex)).toBe(false);
    expect(verifyWebhookSignature(body, 'other', hex)).toBe(false);
    expect(verifyWebhookSignature(body, secret, hex.slice(0, 62))).toBe(false);
    expect(verifyWebhookSignature(body, secret, `${hex}00`)).toBe(false);
    expect(verifyWebhookSignature(body, secret, b64.slice(0, 20), 'hmac-sha256-base64')).toBe(false);
    expect(verifyWebhookSignature(body, secret, '')).toBe(false);
    expect(verifyWebhookSignature(body, secret, null)).toBe(false);
    expect(verifyWebhookSignature(body, secret, undefined)).toBe(false);
    expect(verifyWebhookSignature(body, '', createHmac('sha256', '').update(body).digest('hex'))).toBe(false);
  });
});

describe('parseWebhookEvent', () => {
  it.each([
    ['avatar_video.success', { video_id: 'v1', url: 'u', callback_id: 'job_1' }, 'video', 'success', 'v1'],
    ['avatar_video.fail', { video_id: 'v1', msg: 'boom', callback_id: 'job_1' }, 'video', 'fail', 'v1'],
    ['video_translate.success', { video_translate_id: 't1', url: 'u', callback_id: 'job_1' }, 'translation', 'success', 't1'],
    ['video_translate.fail', { video_translate_id: 't1', message: 'x', callback_id: 'job_1' }, 'translation', 'fail', 't1'],
    ['video_agent.success', { video_id: 'v2', session_id: 's1', callback_id: 'job_1' }, 'agent', 'success', 'v2'],
    ['video_agent.fail', { session_id: 's1', callback_id: 'job_1' }, 'agent', 'fail', 's1'],
  ] as const)('%s', (eventType, eventData, kind, outcome, upstreamId) => {
    const event = parseWebhookEvent({ event_type: eventType, event_id: 'evt_1', created_at: 't', event_data: eventData });
    expect(event).toMatchObject({ eventType, eventId: 'evt_1', callbackId: 'job_1', kind, outcome, upstreamId });
  });

  it('reports events it does not follow as unknown, and throws on a non-event', () => {
    expect(parseWebhookEvent({ event_type: 'avatar_video_gif.success', event_data: { video_id: 'v' } })).toMatchObject({
      kind: 'unknown',
      outcome: 'unknown',
      eventId: null,
      callbackId: null,
    });
    expect(parseWebhookEvent({ event_type: 'video_translate.preflight.validation_failed' })).toMatchObject({
      kind: 'unknown',
      outcome: 'unknown',
      upstreamId: null,
    });
    expect(() => parseWebhookEvent({ hello: 'world' })).toThrow(HeygenError);
    expect(() => parseWebhookEvent('nope')).toThrow(HeygenError);
  });
});

// ----- helpers -------------------------------------------------------------------------------

describe('helpers', () => {
  it('formatDecimal never produces exponent notation', () => {
    expect(formatDecimal(12.4)).toBe('12.4');
    expect(formatDecimal(1e-7)).toBe('0.0000001');
    expect(formatDecimal(-2.5e-8)).toBe('-0.000000025');
    expect(formatDecimal(1.2345e21)).toBe('1234500000000000000000');
    expect(formatDecimal(-0)).toBe('0');
    expect(() => formatDecimal(Number.NaN)).toThrow(RangeError);
    expect(() => formatDecimal(Number.POSITIVE_INFINITY)).toThrow(RangeError);
  });

  it('parseRetryAfter reads seconds and HTTP dates and ignores junk', () => {
    const now = Date.parse('Wed, 21 Oct 2026 07:28:00 GMT');
    expect(parseRetryAfter('2', now)).toBe(2_000);
    expect(parseRetryAfter('0.5', now)).toBe(500);
    expect(parseRetryAfter('Wed, 21 Oct 2026 07:28:10 GMT', now)).toBe(10_000);
    expect(parseRetryAfter('Wed, 21 Oct 2026 07:27:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('-1', now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});

// ----- the API key never leaks ------------------------------------------------------------------

describe('API key secrecy', () => {
  function expectNoKey(value: unknown) {
    const seen = new WeakSet<object>();
    const text = JSON.stringify(value, (_k, v: unknown) => {
      if (v instanceof Error) return { ...v, name: v.name, message: v.message, stack: v.stack };
      if (typeof v === 'object' && v !== null) {
        if (seen.has(v)) return '[cycle]';
        seen.add(v);
      }
      return v;
    });
    expect(text).not.toContain(API_KEY);
    if (value instanceof Error) {
      expect(value.message).not.toContain(API_KEY);
      expect(String(value.stack)).not.toContain(API_KEY);
    }
  }

  it('is scrubbed from echoed error bodies, retry logs, outcomes and thrown errors', async () => {
    // A hostile or buggy upstream that echoes the key back everywhere.
    const echo = (req: RecordedRequest): Reply => ({
      status: req.method === 'POST' ? 503 : 403,
      body: { error: { code: `bad_${String(req.headers['x-api-key'])}`, message: `key ${String(req.headers['x-api-key'])} is wrong`, param: String(req.headers['x-api-key']) } },
    });
    const server = await fakeHeygen(echo);
    const { client, conn, logs } = setup(server);

    const unknown = await client.submitJob(conn, 'AVATAR_VIDEO', {}, submitOpts);
    expect(unknown.type).toBe('unknown');
    expectNoKey(unknown);

    const readError = await client.getVideo(conn, 'v1').catch((e: unknown) => e);
    expect(readError).toBeInstanceOf(HeygenError);
    expectNoKey(readError);

    const rejecting = await fakeHeygen((req) => ({
      status: 400,
      body: { error: { code: 'validation_error', message: `bad key ${String(req.headers['x-api-key'])}`, param: String(req.headers['x-api-key']) } },
    }));
    const rejected = await client.submitJob({ ...conn, baseUrl: rejecting.baseUrl }, 'AVATAR_VIDEO', {}, submitOpts);
    expect(rejected.type).toBe('rejected');
    expectNoKey(rejected);

    expect(logs.length).toBeGreaterThan(0);
    expectNoKey(logs);
  });

  it('is absent from network errors and from the error for an invalid key', async () => {
    const closed = await fakeHeygen([]);
    const { client, logs } = setup(closed);
    const [server] = openServers.splice(0);
    await new Promise<void>((resolve) => server?.close(() => resolve()));

    const refused = await client.submitJob({ baseUrl: closed.baseUrl, apiKey: API_KEY }, 'AVATAR_VIDEO', {}, submitOpts);
    expect(refused).toMatchObject({ type: 'unknown', code: 'network_error' });
    expectNoKey(refused);
    const readError = await client.getUser({ baseUrl: closed.baseUrl, apiKey: API_KEY }).catch((e: unknown) => e);
    expect(readError).toMatchObject({ code: 'network_error', retryable: true });
    expectNoKey(readError);
    expectNoKey(logs);

    // fetch would quote a header value with a newline in its error; the client refuses it first.
    const badKey = `${API_KEY}\n`;
    const error = await client.getVideo({ baseUrl: closed.baseUrl, apiKey: badKey }, 'v1').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'invalid_api_key' });
    expectNoKey(error);
  });
});

describe('answer size cap', () => {
  /** Answers every request with `bytes` of zeros (or `body` when given), streamed with backpressure; counts what it wrote. */
  async function streamingHeygen(opts: { bytes: number; declareLength: boolean; body?: string }) {
    const seen = { requests: 0, written: 0, closedEarly: 0 };
    const server = http.createServer((req, res) => {
      seen.requests += 1;
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json', ...(opts.declareLength ? { 'content-length': String(opts.body?.length ?? opts.bytes) } : {}) });
      if (opts.body !== undefined) return void res.end(opts.body);
      const block = Buffer.alloc(64 * 1024, 0x30);
      let sent = 0;
      const source = new Readable({
        read() {
          if (sent >= opts.bytes) return void this.push(null);
          const n = Math.min(block.length, opts.bytes - sent);
          sent += n;
          seen.written = sent;
          this.push(block.subarray(0, n));
        },
      });
      res.on('close', () => {
        if (!res.writableFinished) seen.closedEarly += 1;
      });
      pipeline(source, res, () => undefined);
    });
    openServers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return { server: { baseUrl: `http://127.0.0.1:${port}`, requests: [], unexpected: [] } as FakeServer, seen };
  }

  it('a chunked 1 GiB answer to a read is dropped past the limit: one request, a retryable response_too_large', async () => {
    const { server, seen } = await streamingHeygen({ bytes: 1024 ** 3, declareLength: false });
    const { client, conn, logs } = setup(server, { maxResponseBytes: 256 * 1024, timeoutMs: 20_000 });
    const error = await client.getVideoStatuses(conn, ['v1']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HeygenError);
    expect(error).toMatchObject({ code: 'response_too_large', retryable: true, httpStatus: 200 });
    expect(seen.requests).toBe(1);
    // The connection was dropped: the server wrote a few socket buffers past the limit, not the gigabyte.
    await vi.waitFor(() => expect(seen.closedEarly).toBe(1));
    expect(seen.written).toBeLessThan(32 * 1024 * 1024);
    expect(logs).toContainEqual(expect.objectContaining({ op: 'getVideoStatuses', limitBytes: 256 * 1024 }));
  });

  it('a Content-Length over the limit ends a create as unknown before its body is read, without retrying', async () => {
    const { server, seen } = await streamingHeygen({ bytes: 1024 ** 3, declareLength: true });
    const { client, conn } = setup(server, { maxResponseBytes: 1024 * 1024 });
    const outcome = await client.submitJob(conn, 'AVATAR_VIDEO', { type: 'avatar' }, submitOpts);
    expect(outcome).toMatchObject({ type: 'unknown', code: 'response_too_large', httpStatus: 200 });
    expect(outcome.type === 'unknown' && outcome.reason).toContain('declares 1073741824 bytes');
    expect(seen.requests).toBe(1);
    await vi.waitFor(() => expect(seen.closedEarly).toBe(1));
    expect(seen.written).toBeLessThan(32 * 1024 * 1024);
  });

  it('an answer of exactly the limit is read', async () => {
    const json = JSON.stringify({ data: { id: 'v1', status: 'processing' } });
    const body = json + ' '.repeat(4096 - json.length);
    for (const declareLength of [true, false]) {
      const { server } = await streamingHeygen({ bytes: 0, declareLength, body });
      const { client, conn } = setup(server, { maxResponseBytes: 4096 });
      await expect(client.getVideo(conn, 'v1')).resolves.toMatchObject({ id: 'v1', status: 'processing' });
      const { server: over } = await streamingHeygen({ bytes: 0, declareLength, body: `${body} ` });
      const { client: strict, conn: overConn } = setup(over, { maxResponseBytes: 4096 });
      await expect(strict.getVideo(overConn, 'v1')).rejects.toMatchObject({ code: 'response_too_large' });
    }
  });
});

// ----- observer (metrics and tracing hook) --------------------------------------------------------

describe('observer', () => {
  it('is told of every attempt as it starts and how it ended: a dropped connection, a 503, then the answer', async () => {
    const server = await fakeHeygen([
      'destroy',
      { status: 503, body: { error: { code: 'unavailable', message: 'busy' } } },
      { status: 200, body: { data: { id: 'v1', status: 'completed', duration: 12.5 } } },
    ]);
    const seen: string[] = [];
    const { client, conn } = setup(server, {
      observe: (attempt) => {
        seen.push(`start ${attempt.op} ${attempt.method} #${attempt.attempt}`);
        return (result) => seen.push(`end #${attempt.attempt} ${result.status ?? '-'} ${result.error ?? '-'}`);
      },
    });
    const state = await client.getVideo(conn, 'v1');
    expect(state.status).toBe('completed');
    expect(seen).toEqual([
      'start getVideo GET #1',
      'end #1 - network_error',
      'start getVideo GET #2',
      'end #2 503 -',
      'start getVideo GET #3',
      'end #3 200 -',
    ]);
  });

  it('an oversized answer ends its attempt as response_too_large', async () => {
    const server = await fakeHeygen([{ status: 200, raw: 'x'.repeat(8192) }]);
    const seen: string[] = [];
    const { client, conn } = setup(server, {
      maxResponseBytes: 4096,
      observe: () => (result) => seen.push(`${result.status} ${result.error}`),
    });
    await expect(client.getVideo(conn, 'v1')).rejects.toMatchObject({ code: 'response_too_large' });
    expect(seen).toEqual(['200 response_too_large']);
  });
});

// Outputs are read fresh from HeyGen, bounded per request: each item once, a few at a time, a fixed number at most;
// HeyGen being away is an UpstreamError (retryable for the caller), never an unexpected error. No database needed.
import { describe, expect, it } from 'vitest';
import { cleanUpstreamBody, createOutputReader, type OutputDeps } from '../src/jobs/outputs.js';
import { HeygenError, type HeygenClient, type RawAnswer } from '../src/heygen/client.js';
import { UpstreamError, ValidationError } from '../src/errors.js';
import type { AccountRow } from '../src/accounts/accounts.js';
import type { JobItemRow } from '../src/jobs/submit.js';

function item(n: number, kind: JobItemRow['kind'] = 'video'): JobItemRow {
  return {
    id: `00000000-0000-0000-0000-${String(n).padStart(12, '0')}`,
    jobId: '00000000-0000-0000-0000-000000000000',
    upstreamId: `vid_${n}`,
    kind,
    videoId: null,
    language: kind === 'translation' ? 'French (France)' : null,
    status: 'processing',
    durationSeconds: null,
    costMicroCs: null,
    failureMessage: null,
    createAnswer: null,
    createdAt: new Date(0),
  };
}

function fakeDeps(answer: (path: string) => Promise<RawAnswer>) {
  let active = 0;
  let maxActive = 0;
  const paths: string[] = [];
  const heygen = {
    getRaw: async (_conn: unknown, path: string) => {
      paths.push(path);
      active += 1;
      maxActive = Math.max(maxActive, active);
      try {
        await new Promise((r) => setImmediate(r));
        return await answer(path);
      } finally {
        active -= 1;
      }
    },
  } as unknown as HeygenClient;
  const deps: OutputDeps = { db: null as never, box: { decrypt: () => 'sk_fake_key_for_test' } as never, heygen };
  const account = { id: 'acc', baseUrl: 'http://heygen.invalid', apiKeyCiphertext: 'x' } as unknown as AccountRow;
  return { deps, account, paths, maxActive: () => maxActive };
}

const completed = (path: string): Promise<RawAnswer> =>
  Promise.resolve({
    status: 200,
    body: { data: { id: path.split('/').pop(), status: 'completed', video_url: `https://cdn.example/${path}.mp4`, thumbnail_url: 'https://cdn.example/t.jpg', duration: 12.5, callback_id: 'job-1' } },
  });

describe('createOutputReader', () => {
  it('reads each item once, at most `concurrency` at a time, and refuses past `maxItemsPerRequest`', async () => {
    const f = fakeDeps(completed);
    const read = createOutputReader(f.deps, async () => f.account, { maxItemsPerRequest: 5, concurrency: 2 });
    const outputs = await Promise.all([1, 2, 3, 4, 5, 1, 2].map((n) => read(item(n), 'acc')));
    expect(f.paths).toHaveLength(5);
    expect(f.maxActive()).toBeLessThanOrEqual(2);
    expect(outputs[0]).toMatchObject({ upstreamId: 'vid_1', status: 'completed', durationSeconds: '12.5', thumbnailUrl: 'https://cdn.example/t.jpg' });
    expect(outputs[0]!.videoUrl).toContain('/v3/videos/vid_1');
    await expect(read(item(6), 'acc')).rejects.toBeInstanceOf(ValidationError);
    expect(f.paths).toHaveLength(5);
  });

  it('a translation reads its translation; HeyGen away is an UpstreamError; an id HeyGen no longer knows is null', async () => {
    const f = fakeDeps(async (path) => {
      if (path.includes('vid_2')) throw new HeygenError('down', { httpStatus: 503, code: 'http_503', retryable: true });
      if (path.includes('vid_3')) return { status: 404, body: { error: { code: 'not_found', message: 'Video not found', param: null, doc_url: null } } };
      return { status: 200, body: { data: { id: 'vid_1', status: 'completed', output_language: null, srt_caption_url: 'https://cdn.example/c.srt' } } };
    });
    const read = createOutputReader(f.deps, async () => f.account);
    const translation = await read(item(1, 'translation'), 'acc');
    expect(f.paths[0]).toBe('/v3/video-translations/vid_1');
    expect(translation).toMatchObject({ captionUrl: 'https://cdn.example/c.srt', language: 'French (France)' });
    await expect(read(item(2), 'acc')).rejects.toBeInstanceOf(UpstreamError);
    await expect(read(item(3), 'acc')).resolves.toBeNull();
  });

  it("an agent session without a video yet is not read; with one, its video is", async () => {
    const f = fakeDeps(completed);
    const read = createOutputReader(f.deps, async () => f.account);
    expect(await read(item(1, 'agent_session'), 'acc')).toMatchObject({ upstreamId: 'vid_1', status: 'processing', videoUrl: null });
    expect(f.paths).toHaveLength(0);
    await read({ ...item(2, 'agent_session'), videoId: 'v_of_session' }, 'acc');
    expect(f.paths).toEqual(['/v3/videos/v_of_session']);
  });
});

describe('cleanUpstreamBody', () => {
  it("blanks the gateway's callback_id and callback_url at every depth and keeps the shape", () => {
    expect(cleanUpstreamBody({ data: [{ id: 'a', callback_id: 'job', nested: { callback_url: 'https://gw/cb' } }] })).toEqual({
      data: [{ id: 'a', callback_id: null, nested: { callback_url: null } }],
    });
  });
});

// Every billable product through the gateway, with the simulator as HeyGen: lipsync, text to speech, translation
// proofreads, avatar creation (per call) and the three batch endpoints. Each job is submitted through GraphQL,
// followed to its end, and settled at exactly what the simulator billed (to the micro-credit-second), with the
// ledger invariants holding. A batch is one admission (held whole or refused whole, nothing written) settled per
// item: completed items billed, failed ones released. Hostile bodies are typed ValidationErrors, nothing written.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { createTree, issueServiceToken, JOB_QUERY, setBudget, SUBMIT, type Tree } from './support/fixtures.js';
import { expectCountersEqualLedger } from './support/invariants.js';
import { mp4, startMediaServer, wav, type MediaServer } from './support/media.js';
import { queryRows } from '../src/db/client.js';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startSimulator } from '../src/heygen/simulator/server.js';

let h: Harness;
let tree: Tree;
let token: string;
let media: MediaServer;

beforeAll(async () => {
  media = await startMediaServer({
    '/v.mp4': { body: mp4(20_000), type: 'video/mp4' },
    '/a.wav': { body: wav(5_000), type: 'audio/wav' },
    '/long.wav': { body: wav(25_000), type: 'audio/wav' },
  });
  h = await startHarness();
  tree = await createTree(h, { name: 'Products' });
  token = (await issueServiceToken(h, tree.projectId, 'products-app')).token;
});
afterAll(async () => {
  await h?.close();
  await media?.close();
});

async function submit(kind: string, request: unknown, opts: { estimatedSeconds?: string; projectId?: string; token?: string } = {}) {
  const input = { projectId: opts.projectId ?? tree.projectId, kind, request, ...(opts.estimatedSeconds ? { estimatedSeconds: opts.estimatedSeconds } : {}) };
  const res = await h.gql(SUBMIT, { input }, opts.token ?? token);
  expect(res.errors).toBeUndefined();
  return res.data.submitJob;
}

async function admitted(kind: string, request: unknown) {
  const r = await submit(kind, request);
  expect(r.__typename, JSON.stringify(r)).toBe('SubmitJobPayload');
  return r.job;
}

const ITEMS_QUERY = `query($id: ID!) { job(id: $id) { id kind product status estimatedCreditSeconds reservedCreditSeconds actualSeconds actualCreditSeconds failureCode upstreamItems { upstreamId kind language status durationSeconds createAnswer } } }`;

async function settled(id: string) {
  return waitFor(async () => {
    const job = (await h.gql(ITEMS_QUERY, { id })).data.job;
    return ['SUCCEEDED', 'FAILED'].includes(job.status) ? job : null;
  }, 20_000);
}

/** The job's row and its items' simulator ids (a batch item's own id, else the item's upstream id). */
async function dbJob(globalId: string) {
  const id = decodeGlobalID(globalId).id;
  const [job] = await queryRows<{ actual: string; estimated: string; reserved: string }>(
    h.services.db,
    sql`select actual_micro_cs::text as actual, estimated_micro_cs::text as estimated, reserved_micro_cs::text as reserved from jobs where id = ${id}`,
  );
  const items = await queryRows<{ sim_id: string; status: string; cost: string | null }>(
    h.services.db,
    sql`select coalesce(video_id, upstream_id) as sim_id, status, cost_micro_cs::text as cost from job_items where job_id = ${id} order by upstream_id`,
  );
  return { ...job!, items };
}

/** Settled cost = Σ what the simulator billed for the job's outputs, exactly; hold ≥ bill; invariants hold. */
async function expectSettledAsBilled(globalId: string): Promise<bigint> {
  const job = await dbJob(globalId);
  let billed = 0n;
  for (const item of job.items) {
    const simJob = h.sim.job(item.sim_id);
    expect(simJob, `simulator job ${item.sim_id}`).toBeDefined();
    billed += simJob!.costMicroCreditSeconds;
    expect(BigInt(item.cost ?? '0')).toBe(simJob!.costMicroCreditSeconds);
  }
  expect(BigInt(job.actual)).toBe(billed);
  expect(BigInt(job.reserved)).toBe(0n);
  expect(BigInt(job.estimated)).toBeGreaterThanOrEqual(billed);
  await expectCountersEqualLedger(h.services.db);
  return billed;
}

const MONEY_TABLES = ['jobs', 'job_items', 'ledger_entries', 'usage_rollups', 'audit_events', 'drift_notes'];
async function counts(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of MONEY_TABLES) {
    const [row] = await queryRows<{ n: number }>(h.services.db, sql.raw(`select count(*)::int as n from ${t}`));
    out[t] = Number(row!.n);
  }
  return out;
}

const video = () => ({ type: 'url', url: media.url('/v.mp4') });
const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`).join(' ');

describe('lipsync', () => {
  it('speed: held at the longer of source video and new audio, settled at what HeyGen billed', async () => {
    const job = await admitted('LIPSYNC', { video: video(), audio: { type: 'url', url: media.url('/long.wav') }, mode: 'speed' });
    // 25 s of audio (longer than the 20 s video) × 3 cs/s × 1.10
    expect(job.estimatedCreditSeconds).toBe('82.5');
    const done = await settled(job.id);
    expect(done).toMatchObject({ status: 'SUCCEEDED', product: 'LIPSYNC_SPEED', actualSeconds: '25', actualCreditSeconds: '75' });
    expect(await expectSettledAsBilled(job.id)).toBe(75_000_000n);
  });

  it('precision: an excerpt of the source, at the precision rate', async () => {
    const job = await admitted('LIPSYNC', { video: video(), audio: { type: 'url', url: media.url('/a.wav') }, mode: 'precision', start_time: 2, end_time: 10 });
    expect(job.estimatedCreditSeconds).toBe('52.8'); // max(8 s excerpt, 5 s audio) × 6 × 1.10
    const done = await settled(job.id);
    expect(done).toMatchObject({ status: 'SUCCEEDED', product: 'LIPSYNC_PRECISION', actualCreditSeconds: '48' });
    await expectSettledAsBilled(job.id);
  });
});

describe('text to speech', () => {
  it('is synchronous: settled from the audio duration in the create answer, without following', async () => {
    const text = 'x'.repeat(137); // the simulator reads 14 characters a second: 9.786 s (to the ms)
    const r = await submit('TTS', { text, voice_id: 'v1' });
    expect(r.__typename).toBe('SubmitJobPayload');
    // Settled inside the submission: HeyGen answered with the audio.
    expect(r.job.status).toBe('SUCCEEDED');
    expect(r.job.reservedCreditSeconds).toBe('0');
    // Held at 5 characters a second: 27.4 s × 0.01998 cs/s × 1.10
    expect(r.job.estimatedCreditSeconds).toBe('0.602198'); // 0.6021972, rounded up
    const job = (await h.gql(ITEMS_QUERY, { id: r.job.id })).data.job;
    expect(job.actualSeconds).toBe('9.786');
    expect(job.actualCreditSeconds).toBe('0.195525'); // 9.786 × 0.01998, rounded up to a micro-credit-second
    expect(job.upstreamItems[0]).toMatchObject({ kind: 'speech', status: 'completed', durationSeconds: '9.786' });
    expect(job.upstreamItems[0].createAnswer.audio_url).toMatch(/\/_sim\/media\/.+\.mp3$/);
    expect(await expectSettledAsBilled(r.job.id)).toBe(195_525n);
  });

  it('slower speech and SSML pauses raise the hold, which still bounds the bill', async () => {
    const ssml = `<speak>${words(20)}<break time="3s"/>${words(5)}<break/></speak>`;
    const r = await submit('TTS', { text: ssml, voice_id: 'v1', input_type: 'ssml', speed: 0.5 });
    expect(r.job.status).toBe('SUCCEEDED');
    await expectSettledAsBilled(r.job.id);
  });
});

describe('translation proofread', () => {
  it('one session per language, each billed at the measured source length', async () => {
    const job = await admitted('TRANSLATION_PROOFREAD', { video: video(), output_languages: ['es', 'fr'], title: 'Onboarding' });
    expect(job.estimatedCreditSeconds).toBe('21.9912'); // 2 × 20 s × 0.4998 × 1.10
    const done = await settled(job.id);
    expect(done).toMatchObject({ status: 'SUCCEEDED', product: 'TRANSLATION_PROOFREAD', actualSeconds: '40', actualCreditSeconds: '19.992' });
    expect(done.upstreamItems.map((i: { language: string }) => i.language).sort()).toEqual(['es', 'fr']);
    await expectSettledAsBilled(job.id);
  });
});

describe('avatar creation', () => {
  it('is priced per call, not per second: one created avatar costs its rate', async () => {
    for (const type of ['photo', 'digital_twin']) {
      const job = await admitted('AVATAR_CREATION', { type, name: `Ava ${type}`, file: { type: 'url', url: 'https://example.com/face.jpg' } });
      expect(job.estimatedCreditSeconds).toBe('66'); // 60 cs per call × 1.10
      const done = await settled(job.id);
      expect(done).toMatchObject({ status: 'SUCCEEDED', product: 'AVATAR_CREATION', actualCreditSeconds: '60' });
      expect(done.upstreamItems[0].kind).toBe('avatar_look');
      // HeyGen's create answer is kept: the new look and its group, as an app would have received them.
      expect(done.upstreamItems[0].createAnswer.avatar_item.id).toBe(done.upstreamItems[0].upstreamId);
      expect(done.upstreamItems[0].createAnswer.avatar_group.id).toEqual(expect.any(String));
      expect(await expectSettledAsBilled(job.id)).toBe(60_000_000n);
    }
  });

  it('a failed training is not billed', async () => {
    h.sim.configure({ failNextJobs: 1 });
    const job = await admitted('AVATAR_CREATION', { type: 'photo', name: 'Unlucky', file: { type: 'asset_id', asset_id: 'img1' } });
    const done = await settled(job.id);
    expect(done).toMatchObject({ status: 'FAILED', actualCreditSeconds: '0', reservedCreditSeconds: '0' });
    await expectSettledAsBilled(job.id);
  });
});

describe('batches', () => {
  it('a batch of 5 videos whose items partly fail settles only the completed items and releases the rest', async () => {
    h.sim.configure({ failNextJobs: 2 });
    const videos = Array.from({ length: 5 }, (_, i) => ({ type: 'avatar', avatar_id: 'a1', voice_id: 'v1', script: words(10 + i * 5) }));
    const job = await admitted('VIDEO_BATCH', { title: 'five', videos });
    const done = await settled(job.id);
    expect(done.status).toBe('SUCCEEDED');
    expect(done.failureCode).toBe('partial_failure');
    const statuses = done.upstreamItems.map((i: { status: string }) => i.status).sort();
    expect(statuses).toEqual(['completed', 'completed', 'completed', 'failed', 'failed']);
    const billed = await expectSettledAsBilled(job.id);
    expect(billed).toBeGreaterThan(0n);
    const row = await dbJob(job.id);
    expect(row.items.filter((i) => i.status === 'failed').every((i) => i.cost === null)).toBe(true);
  });

  it('translation and lipsync batches: one item per payload, each settled at what HeyGen billed', async () => {
    const tr = await admitted('VIDEO_TRANSLATION_BATCH', {
      video_translations: [
        { video: video(), output_languages: ['es'] },
        { video: video(), output_languages: ['de'], start_time: 5 },
      ],
    });
    const ls = await admitted('LIPSYNC_BATCH', {
      lipsyncs: [
        { video: video(), audio: { type: 'url', url: media.url('/a.wav') } },
        { video: video(), audio: { type: 'url', url: media.url('/long.wav') } },
      ],
    });
    const trDone = await settled(tr.id);
    expect(trDone).toMatchObject({ status: 'SUCCEEDED', actualSeconds: '35', actualCreditSeconds: '105' }); // (20 + 15) s × 3
    expect(trDone.upstreamItems.map((i: { language: string }) => i.language)).toEqual(['es', 'de']);
    await expectSettledAsBilled(tr.id);
    const lsDone = await settled(ls.id);
    expect(lsDone).toMatchObject({ status: 'SUCCEEDED', actualCreditSeconds: '135' }); // (20 + 25) s × 3
    await expectSettledAsBilled(ls.id);
  });

  it('a batch that does not fit the budget is refused whole, with nothing written', async () => {
    const other = await issueServiceToken(h, tree.otherProjectId, 'batch-budget');
    await setBudget(h, { orgUnitId: tree.otherProjectId, window: 'MONTHLY', limitCreditSeconds: '100', enforcement: 'HARD' });
    const before = await counts();
    const simBefore = h.sim.jobs().length;
    // 5 × 8 s × 6 cs × 1.10 = 264 cs > 100 cs: none of the five may start.
    const videos = Array.from({ length: 5 }, () => ({ type: 'avatar', avatar_id: 'a1', voice_id: 'v1', script: words(20) }));
    const r = await submit('VIDEO_BATCH', { videos }, { projectId: tree.otherProjectId, token: other.token });
    expect(r.__typename).toBe('BudgetExceededError');
    expect(r.requestedCreditSeconds).toBe('264');
    expect(await counts()).toEqual(before);
    expect(h.sim.jobs()).toHaveLength(simBefore);
    // One that fits is held whole: 2 × 52.8 = 105.6 > 100 still refused; 1 fits.
    const two = await submit('VIDEO_BATCH', { videos: videos.slice(0, 2) }, { projectId: tree.otherProjectId, token: other.token });
    expect(two.__typename).toBe('BudgetExceededError');
    expect(await counts()).toEqual(before);
  });
});

describe('hostile inputs: typed ValidationError, nothing written', () => {
  const lipsync = () => ({ video: video(), audio: { type: 'url', url: media.url('/a.wav') } });
  const avatarVideo = (script = 'hello there') => ({ type: 'avatar', avatar_id: 'a1', voice_id: 'v1', script });
  const cases: [string, string, () => unknown, string, string?][] = [
    ['LIPSYNC', 'no audio', () => ({ video: video() }), 'request.audio'],
    ['LIPSYNC', 'unknown mode', () => ({ ...lipsync(), mode: 'turbo' }), 'request.mode'],
    ['LIPSYNC', 'end before start', () => ({ ...lipsync(), start_time: 9, end_time: 3 }), 'request.end_time'],
    ['LIPSYNC', 'absurd start', () => ({ ...lipsync(), start_time: 1e12 }), 'request.start_time'],
    ['LIPSYNC', 'a callback_url into the private network', () => ({ ...lipsync(), callback_url: 'https://10.0.0.7/cb' }), 'request.callback_url'],
    ['LIPSYNC', 'a body that is an array', () => [lipsync()], 'request'],
    ['TTS', 'text past 5000 characters', () => ({ text: 'x'.repeat(5001), voice_id: 'v1' }), 'request.text'],
    ['TTS', 'no voice', () => ({ text: 'hello' }), 'request.voice_id'],
    ['TTS', 'speed 3', () => ({ text: 'hello', voice_id: 'v1', speed: 3 }), 'request.speed'],
    ['TTS', 'text not a string', () => ({ text: 12, voice_id: 'v1' }), 'request.text'],
    ['TRANSLATION_PROOFREAD', 'asset_id source (unmeasurable)', () => ({ video: { type: 'asset_id', asset_id: 'x' }, output_languages: ['es'], title: 't' }), 'request.video.type'],
    ['TRANSLATION_PROOFREAD', 'no title', () => ({ video: video(), output_languages: ['es'] }), 'request.title'],
    ['TRANSLATION_PROOFREAD', '51 languages', () => ({ video: video(), output_languages: Array.from({ length: 51 }, (_, i) => `l${i}`), title: 't' }), 'request.output_languages'],
    ['TRANSLATION_PROOFREAD', 'a caller estimate', () => ({ video: video(), output_languages: ['es'], title: 't' }), 'estimatedSeconds', '5'],
    ['AVATAR_CREATION', 'prompt avatars (unpriced)', () => ({ type: 'prompt', name: 'n', prompt: 'a face' }), 'request.type'],
    ['AVATAR_CREATION', 'no file', () => ({ type: 'photo', name: 'n' }), 'request.file'],
    ['AVATAR_CREATION', 'a caller estimate', () => ({ type: 'photo', name: 'n', file: { type: 'asset_id', asset_id: 'i' } }), 'estimatedSeconds', '5'],
    ['VIDEO_BATCH', 'no payloads', () => ({ videos: [] }), 'request.videos'],
    ['VIDEO_BATCH', '101 payloads', () => ({ videos: Array.from({ length: 101 }, () => avatarVideo()) }), 'request.videos'],
    ['VIDEO_BATCH', 'videos not an array', () => ({ videos: 'many' }), 'request.videos'],
    ['VIDEO_BATCH', 'one bad payload', () => ({ videos: [avatarVideo(), avatarVideo(), avatarVideo('x'.repeat(5001))] }), 'request.videos.2.script'],
    ['VIDEO_BATCH', 'a payload callback_id', () => ({ videos: [{ ...avatarVideo(), callback_id: 'mine' }] }), 'request.videos.0.callback_id'],
    ['VIDEO_BATCH', 'a batch callback_url at the metadata address', () => ({ videos: [avatarVideo()], callback_url: 'https://169.254.169.254/latest' }), 'request.callback_url'],
    ['VIDEO_BATCH', 'mixed engines (two rates)', () => ({ videos: [avatarVideo(), { ...avatarVideo(), engine: 'avatar_iii' }] }), 'request.videos.1'],
    [
      'VIDEO_TRANSLATION_BATCH',
      'two languages in one payload',
      () => ({ video_translations: [{ video: video(), output_languages: ['es', 'fr'] }] }),
      'request.video_translations.0.output_languages',
    ],
    [
      'VIDEO_TRANSLATION_BATCH',
      'mixed modes (two rates)',
      () => ({ video_translations: [{ video: video(), output_languages: ['es'] }, { video: video(), output_languages: ['de'], mode: 'precision' }] }),
      'request.video_translations.1',
    ],
    ['LIPSYNC_BATCH', 'mixed modes (two rates)', () => ({ lipsyncs: [lipsync(), { ...lipsync(), mode: 'precision' }] }), 'request.lipsyncs.1'],
    ['LIPSYNC_BATCH', 'an unreadable audio in one payload', () => ({ lipsyncs: [lipsync(), { ...lipsync(), audio: { type: 'url', url: media.url('/missing.wav') } }] }), 'request.lipsyncs.1.audio.url'],
  ];
  it.each(cases)('%s: %s', async (kind, _what, body, field, estimatedSeconds) => {
    const before = await counts();
    const r = await submit(kind, body(), estimatedSeconds ? { estimatedSeconds } : {});
    expect(r.__typename, JSON.stringify(r)).toBe('ValidationError');
    expect(r.field).toBe(field);
    expect(await counts()).toEqual(before);
  });
});

describe('the simulator counts every asynchronous generation against the concurrency limit', () => {
  it('batch items queue for free slots; lipsyncs, proofreads and avatar trainings hold slots; TTS does not', async () => {
    // The two slots stay taken until the test completes their items (a render timer could free one on a slow machine
    // before the refusals are checked); items started after that render on their own.
    const sim = await startSimulator({ config: { renderMs: 100, autoComplete: false, mediaDurations: 'configured' }, accounts: [{ apiKey: 'k_conc', concurrencyLimit: 2 }] });
    const call = async (path: string, body: unknown) => {
      const res = await fetch(`${sim.url}${path}`, { method: 'POST', headers: { 'x-api-key': 'k_conc', 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: res.status, json: (await res.json()) as any };
    };
    try {
      const batch = await call('/v3/lipsyncs/batches', {
        lipsyncs: Array.from({ length: 3 }, () => ({ video: { type: 'asset_id', asset_id: 'v' }, audio: { type: 'asset_id', asset_id: 'a' } })),
      });
      expect(batch.status).toBe(202);
      expect(sim.stats().inFlight['k_conc']).toBe(2);
      const read = await fetch(`${sim.url}/v3/lipsyncs/batches/${batch.json.data.batch_id}`, { headers: { 'x-api-key': 'k_conc' } });
      const items = ((await read.json()) as any).data.items as { status: string; video_id: string | null }[];
      expect(items.map((i) => i.status)).toEqual(['processing', 'processing', 'queued']);
      // Slots are full: an asynchronous create is refused, the synchronous TTS is not.
      expect((await call('/v3/lipsyncs', { video: { type: 'asset_id', asset_id: 'v' }, audio: { type: 'asset_id', asset_id: 'a' } })).status).toBe(429);
      expect((await call('/v3/avatars', { type: 'photo', name: 'n', file: { type: 'asset_id', asset_id: 'i' } })).status).toBe(429);
      expect((await call('/v3/voices/speech', { text: 'hello', voice_id: 'v' })).status).toBe(200);
      sim.configure({ autoComplete: true });
      for (const item of items.slice(0, 2)) expect(sim.completeNow(item.video_id!)).toBe(true);
      await waitFor(async () => {
        const res = await fetch(`${sim.url}/v3/lipsyncs/batches/${batch.json.data.batch_id}`, { headers: { 'x-api-key': 'k_conc' } });
        return ((await res.json()) as any).data.status === 'completed';
      });
      expect(sim.stats().inFlight['k_conc']).toBe(0);
    } finally {
      await sim.close();
    }
  });
});

describe('the HeyGen client on the new endpoints', () => {
  it('reads every page of a batch, and webhooks of proofreads and avatar trainings name their items', async () => {
    const { createHeygenClient, parseWebhookEvent } = await import('../src/heygen/client.js');
    const sim = await startSimulator({ config: { autoComplete: false, mediaDurations: 'configured' }, accounts: [{ apiKey: 'k_pages', concurrencyLimit: 1000 }] });
    try {
      const payloads = Array.from({ length: 60 }, () => ({ video: { type: 'asset_id', asset_id: 'v' }, output_languages: ['es', 'fr'] }));
      const res = await fetch(`${sim.url}/v3/video-translations/batches`, {
        method: 'POST',
        headers: { 'x-api-key': 'k_pages', 'content-type': 'application/json' },
        body: JSON.stringify({ video_translations: payloads }),
      });
      expect(res.status).toBe(202);
      const batchId = ((await res.json()) as any).data.batch_id;
      const items = await createHeygenClient().getBatch({ baseUrl: sim.url, apiKey: 'k_pages' }, 'translation', batchId);
      expect(items).toHaveLength(120); // two pages of the simulator's 100
      expect(items.map((i) => i.index)).toEqual(Array.from({ length: 120 }, (_, i) => i));
      expect(items.every((i) => i.id !== null && i.status === 'processing')).toBe(true);
    } finally {
      await sim.close();
    }
    expect(parseWebhookEvent({ event_type: 'proofread_creation.success', event_data: { proofread_id: 'p1' } }).upstreamId).toBe('p1');
    expect(parseWebhookEvent({ event_type: 'photo_avatar_train.fail', event_data: { avatar_id: 'look1' } }).upstreamId).toBe('look1');
  });
});

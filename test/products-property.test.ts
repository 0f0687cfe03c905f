// Property: for generated bodies of the newer products (lipsync, text to speech, proofread, avatar creation and the
// three batch kinds), the gateway's hold is at least what the simulator bills for the same body, and at least what
// the gateway itself will settle from the simulator's answers; both sides pick the same product. The gateway runs
// its estimate path (validation, media measured on loopback, the default price book); the simulator its own HTTP
// create path and billing. They share only the pricing model.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { estimateJob, itemCostMicroCs, prepareJob } from '../src/jobs/estimate.js';
import { defaultPriceBook } from '../src/accounts/price-book.js';
import { ValidationError } from '../src/errors.js';
import type { JobKind } from '../src/db/schema.js';
import { startSimulator, type Simulator } from '../src/heygen/simulator/server.js';
import { secondsToMicro } from '../src/primitives/money.js';
import { mp4, startMediaServer, wav, type MediaServer } from './support/media.js';
import { upstreamCall } from './support/v3-bodies.js';

const KEY = 'sk_products_property_01';
const LIMITS = { timeoutMs: 3000, maxBytes: 512 * 1024, allowPrivate: true };
const book = defaultPriceBook();

let media: MediaServer;
let sim: Simulator;
let audio: string[];
let videos: string[];

beforeAll(async () => {
  media = await startMediaServer({
    '/a-3200.wav': { body: wav(3200), type: 'audio/wav' },
    '/a-45500.wav': { body: wav(45_500), type: 'audio/wav' },
    '/v-30000.mp4': { body: mp4(30_000), type: 'video/mp4' },
    '/v-7.mp4': { body: mp4(7), type: 'video/mp4' },
  });
  audio = ['/a-3200.wav', '/a-45500.wav', '/missing.wav'].map(media.url);
  videos = ['/v-30000.mp4', '/v-7.mp4', '/missing.mp4'].map(media.url);
  sim = await startSimulator({
    config: { autoComplete: false, enforceBalance: false, mediaAllowPrivate: true, mediaMaxBytes: LIMITS.maxBytes, mediaTimeoutMs: LIMITS.timeoutMs },
    accounts: [{ apiKey: KEY, concurrencyLimit: 1_000_000 }],
  });
});

afterAll(async () => {
  await sim?.close();
  await media?.close();
});

const idArb = fc.stringMatching(/^[a-z0-9_]{1,12}$/);
const source = (urls: () => string[]) =>
  fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(0, 1, 2).map((i) => ({ type: 'url', url: urls()[i]! })) },
    { weight: 1, arbitrary: fc.record({ type: fc.constant('asset_id'), asset_id: idArb }) },
  );
const lipsyncArb = (mode: fc.Arbitrary<string>) =>
  fc.record(
    {
      video: source(() => videos),
      audio: source(() => audio),
      mode,
      start_time: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.double({ min: 0, max: 40, noNaN: true })),
      end_time: fc.oneof(fc.integer({ min: 1, max: 60 }), fc.double({ min: 0.5, max: 60, noNaN: true })),
    },
    { requiredKeys: ['video', 'audio'] },
  );
const ssmlArb = fc
  .array(fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('<break/>', '<break time="1500ms"/>', '<break time="2s"/>', '<break strength="x-strong"/>')), { maxLength: 12 })
  .map((parts) => `<speak>${parts.join(' ')}</speak>`);
const ttsArb = fc.oneof(
  fc.record({ text: fc.string({ minLength: 1, maxLength: 600 }), voice_id: idArb, speed: fc.double({ min: 0.5, max: 2, noNaN: true }) }, { requiredKeys: ['text', 'voice_id'] }),
  fc.record({ text: ssmlArb, voice_id: idArb, input_type: fc.constant('ssml'), speed: fc.constantFrom(0.5, 1, 1.7) }, { requiredKeys: ['text', 'voice_id', 'input_type'] }),
);
const proofreadArb = fc.record({
  video: fc.constantFrom(0, 1).map((i) => ({ type: 'url', url: videos[i]! })),
  output_languages: fc.array(fc.constantFrom('es', 'fr', 'de', 'ja'), { minLength: 1, maxLength: 4 }),
  title: fc.constant('t'),
});
const avatarArb = fc.record({
  type: fc.constantFrom('photo', 'digital_twin'),
  name: fc.constant('n'),
  file: fc.oneof(fc.record({ type: fc.constant('asset_id'), asset_id: idArb }), fc.constant({ type: 'url', url: 'https://img.example/a.jpg' })),
});
const videoPayload = fc.record({
  type: fc.constant('avatar'),
  avatar_id: idArb,
  voice_id: idArb,
  script: fc.integer({ min: 1, max: 400 }).map((n) => Array.from({ length: n }, () => 'w').join(' ')),
});
const translationPayload = fc.record(
  { video: source(() => videos), output_languages: fc.constantFrom(['es'], ['fr']), start_time: fc.integer({ min: 0, max: 20 }) },
  { requiredKeys: ['video', 'output_languages'] },
);

const bodyArb: fc.Arbitrary<{ kind: JobKind; body: Record<string, unknown> }> = fc.oneof(
  lipsyncArb(fc.constantFrom('speed', 'precision')).map((body) => ({ kind: 'LIPSYNC' as const, body })),
  ttsArb.map((body) => ({ kind: 'TTS' as const, body })),
  proofreadArb.map((body) => ({ kind: 'TRANSLATION_PROOFREAD' as const, body })),
  avatarArb.map((body) => ({ kind: 'AVATAR_CREATION' as const, body })),
  fc.array(videoPayload, { minLength: 1, maxLength: 6 }).map((v) => ({ kind: 'VIDEO_BATCH' as const, body: { videos: v } })),
  fc.array(translationPayload, { minLength: 1, maxLength: 4 }).map((v) => ({ kind: 'VIDEO_TRANSLATION_BATCH' as const, body: { video_translations: v } })),
  fc.array(lipsyncArb(fc.constant('speed')), { minLength: 1, maxLength: 4 }).map((v) => ({ kind: 'LIPSYNC_BATCH' as const, body: { lipsyncs: v } })),
);

async function simPost(path: string, body: unknown): Promise<{ status: number; data: any }> {
  const res = await fetch(`${sim.url}${path}`, { method: 'POST', headers: { 'x-api-key': KEY, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, data: ((await res.json()) as { data?: unknown }).data };
}

async function simGet(path: string): Promise<any> {
  const res = await fetch(`${sim.url}${path}`, { headers: { 'x-api-key': KEY } });
  return ((await res.json()) as { data?: unknown }).data;
}

/** The simulator ids of every output a create answer made (a batch: its items that were created). */
async function outputIds(kind: JobKind, path: string, data: any): Promise<string[]> {
  switch (kind) {
    case 'LIPSYNC':
      return [data.lipsync_id];
    case 'TTS':
      return [data.request_id];
    case 'TRANSLATION_PROOFREAD':
      return data.proofread_ids;
    case 'AVATAR_CREATION':
      return [data.avatar_item.id];
    default: {
      const batch = await simGet(`${path}/${data.batch_id}`);
      return batch.items.filter((i: { video_id: string | null }) => i.video_id).map((i: { video_id: string }) => i.video_id);
    }
  }
}

describe('pricing model of the newer products: gateway hold ≥ simulator bill', () => {
  it('for generated bodies of every new kind', async () => {
    const billedByKind: Record<string, number> = {};
    let worst = 0;
    await fc.assert(
      fc.asyncProperty(bodyArb, async ({ kind, body }) => {
        let estimate: ReturnType<typeof estimateJob> | null = null;
        let perOutputMicro = 0n;
        try {
          const prepared = await prepareJob(kind, body, LIMITS);
          estimate = estimateJob(prepared, null, book);
          perOutputMicro = secondsToMicro(estimate.estimatedSeconds) / BigInt(prepared.plan.outputs);
        } catch (error) {
          if (!(error instanceof ValidationError)) throw error;
        }
        const call = upstreamCall(kind, body);
        const created = await simPost(call.path, call.body);
        if (created.status !== 200 && created.status !== 202) return;
        const ids = await outputIds(kind, call.path, created.data);
        let bill = 0n;
        let settles = 0n;
        for (const id of ids) {
          sim.completeNow(id);
          const job = sim.job(id)!;
          bill += job.costMicroCreditSeconds;
          if (estimate) {
            // What the gateway settles: the reported duration (a proofread: the measured length) × its rate.
            const seconds = kind === 'TRANSLATION_PROOFREAD' ? perOutputMicro : secondsToMicro(String(job.durationSeconds));
            settles += itemCostMicroCs(estimate.product, seconds, estimate.rateMicroCsPerSecond, book.billingIncrementSeconds);
            expect(job.product.toUpperCase()).toBe(estimate.product);
          }
        }
        if (!estimate || ids.length === 0) return;
        billedByKind[kind] = (billedByKind[kind] ?? 0) + 1;
        expect(settles, JSON.stringify({ kind, body })).toBe(bill);
        expect(estimate.estimatedMicroCs, JSON.stringify({ kind, body })).toBeGreaterThanOrEqual(bill);
        if (bill > 0n) worst = Math.max(worst, Number((estimate.estimatedMicroCs * 1000n) / bill) / 1000);
      }),
      { numRuns: 300, seed: 20261206, endOnFailure: true },
    );
    console.log('products property:', JSON.stringify({ billedByKind, worstHoldToBill: worst }));
    for (const kind of ['LIPSYNC', 'TTS', 'TRANSLATION_PROOFREAD', 'AVATAR_CREATION', 'VIDEO_BATCH', 'VIDEO_TRANSLATION_BATCH', 'LIPSYNC_BATCH']) {
      expect(billedByKind[kind] ?? 0, kind).toBeGreaterThan(3);
    }
  }, 240_000);
});

// Property: for every v3 body generated from the request schemas, the gateway's hold is at least what the
// simulator bills for the same body. The gateway side runs its estimate path (validation, media measured on
// loopback, the account's price book); the simulator side runs its own HTTP create path and billing. They
// share only the pricing model. Where both accept a body, they must also agree on product and length.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { estimateJob, prepareJob, costMicroCs } from '../src/jobs/estimate.js';
import { defaultPriceBook } from '../src/accounts/price-book.js';
import { ValidationError } from '../src/errors.js';
import { startSimulator, type Simulator } from '../src/heygen/simulator/server.js';
import { formatCreditSeconds, secondsToMicro } from '../src/primitives/money.js';
import { mp3, mp4, startMediaServer, wav, type MediaServer } from './support/media.js';
import { upstreamCall, v3BodyArb, type MediaUrls } from './support/v3-bodies.js';

const KEY = 'sk_property_key_0001';
const LIMITS = { timeoutMs: 3000, maxBytes: 512 * 1024, allowPrivate: true };
const book = defaultPriceBook();

let media: MediaServer;
let sim: Simulator;
let urls: MediaUrls;

beforeAll(async () => {
  media = await startMediaServer({
    '/a-3200.wav': { body: wav(3200), type: 'audio/wav' },
    '/a-45500.wav': { body: wav(45_500), type: 'audio/wav' },
    '/a-10000.mp3': { body: mp3(10_000), type: 'audio/mpeg' },
    '/a-599999.m4a': { body: mp4(599_999), type: 'audio/mp4' },
    '/a-700000.m4a': { body: mp4(700_000), type: 'audio/mp4' },
    '/v-30000.mp4': { body: mp4(30_000), type: 'video/mp4' },
    '/v-125250.mp4': { body: mp4(125_250, { padding: 2_000_000, moovAtEnd: true }), type: 'video/mp4' },
    '/v-7.mp4': { body: mp4(7), type: 'video/mp4' },
    '/not-media.txt': { body: Buffer.from('this is not audio'.repeat(50)), type: 'text/plain' },
    '/large.wav': { body: wav(200_000), type: 'audio/wav' },
  });
  urls = {
    audio: ['/a-3200.wav', '/a-45500.wav', '/a-10000.mp3', '/a-599999.m4a', '/a-700000.m4a', '/v-30000.mp4'].map(media.url),
    video: ['/v-30000.mp4', '/v-125250.mp4', '/v-7.mp4'].map(media.url),
    broken: ['/missing.mp4', '/not-media.txt', '/norange/large.wav'].map(media.url),
    inline: [mp4(2500).toString('base64'), mp4(61_000).toString('base64')],
  };
  sim = await startSimulator({
    config: { autoComplete: false, enforceBalance: false, mediaAllowPrivate: true, mediaMaxBytes: LIMITS.maxBytes, mediaTimeoutMs: LIMITS.timeoutMs },
    accounts: [{ apiKey: KEY, concurrencyLimit: 1_000_000 }],
  });
});

afterAll(async () => {
  await sim?.close();
  await media?.close();
});

interface SimOutcome {
  ids: string[];
  status: number;
}

async function simCreate(path: string, body: Record<string, unknown>): Promise<SimOutcome> {
  const res = await fetch(`${sim.url}${path}`, { method: 'POST', headers: { 'x-api-key': KEY, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = (await res.json()) as { data?: Record<string, unknown> };
  if (res.status !== 200) return { ids: [], status: res.status };
  const data = json.data!;
  const ids = (data['video_translation_ids'] as string[] | undefined) ?? [String(data['video_id'] ?? data['id'])];
  return { ids, status: 200 };
}

describe('pricing model: gateway hold ≥ simulator bill', () => {
  it('for every generated v3 body of every kind; worst hold/bill ≤ 1.5 where the length is known', async () => {
    const stats = {
      runs: 0,
      gatewayRefused: 0,
      simulatorRefused: 0,
      billed: { AVATAR_VIDEO: 0, TEMPLATE_VIDEO: 0, VIDEO_TRANSLATION: 0, VIDEO_AGENT: 0 } as Record<string, number>,
      knownLength: 0,
      worstKnownRatio: 0,
      worstKnownBody: null as unknown,
      worstAnyRatio: 0,
    };
    await fc.assert(
      fc.asyncProperty(v3BodyArb(urls), async ({ kind, body, estimatedSeconds }) => {
        stats.runs += 1;
        // Gateway: validate, measure, estimate.
        let hold: bigint | null = null;
        let gateway: ReturnType<typeof estimateJob> | null = null;
        let known = false;
        let modelledPerOutput: bigint | null = null;
        try {
          const prepared = await prepareJob(kind, body, LIMITS);
          gateway = estimateJob(prepared, estimatedSeconds, book);
          hold = gateway.estimatedMicroCs;
          known = prepared.plan.parts.every((p) => p.type !== 'unmeasured' && !(p.type === 'excerpt' && !('field' in p.video)));
          // The model's own length, before any raise by the caller's estimatedSeconds.
          modelledPerOutput = secondsToMicro(estimateJob(prepared, null, book).estimatedSeconds) / BigInt(prepared.plan.outputs);
        } catch (error) {
          if (!(error instanceof ValidationError)) throw error;
          stats.gatewayRefused += 1;
        }
        // Simulator: its own create path, then complete every output and read what it billed.
        const call = upstreamCall(kind, body);
        const created = await simCreate(call.path, call.body);
        if (created.status !== 200) stats.simulatorRefused += 1;
        let bill = 0n;
        let gatewaySettles = 0n;
        for (const id of created.ids) {
          expect(sim.completeNow(id)).toBe(true);
          const job = sim.job(id)!;
          bill += job.costMicroCreditSeconds;
          if (gateway) gatewaySettles += costMicroCs(secondsToMicro(String(job.durationSeconds)), gateway.rateMicroCsPerSecond, book.billingIncrementSeconds);
        }
        if (hold === null || created.status !== 200) return; // one side refused: nothing is held, or nothing is billed
        stats.billed[kind] = (stats.billed[kind] ?? 0) + 1;
        const sample = sim.job(created.ids[0]!)!;
        // They read the body the same way: the same product, and (for a known length, without a caller's raise) the same length.
        expect(sample.product.toUpperCase(), JSON.stringify(body)).toBe(gateway!.product);
        expect(created.ids.length).toBeGreaterThan(0);
        if (known && modelledPerOutput !== null && (estimatedSeconds === null || secondsToMicro(estimatedSeconds) <= modelledPerOutput)) {
          expect(secondsToMicro(String(sample.durationSeconds)), JSON.stringify(body)).toBe(modelledPerOutput);
        }
        // The invariant: the hold covers the bill, and covers what the gateway itself will settle.
        expect(hold, JSON.stringify({ kind, body, estimatedSeconds })).toBeGreaterThanOrEqual(bill);
        expect(hold).toBeGreaterThanOrEqual(gatewaySettles);
        const ratio = Number((hold * 1_000_000n) / bill) / 1_000_000;
        stats.worstAnyRatio = Math.max(stats.worstAnyRatio, ratio);
        const callerRaised = estimatedSeconds !== null && modelledPerOutput !== null && secondsToMicro(estimatedSeconds) > modelledPerOutput;
        if (known && !callerRaised) {
          stats.knownLength += 1;
          if (ratio > stats.worstKnownRatio) {
            stats.worstKnownRatio = ratio;
            stats.worstKnownBody = { kind, body: JSON.stringify(body).slice(0, 300), hold: formatCreditSeconds(hold), bill: formatCreditSeconds(bill) };
          }
        }
      }),
      { numRuns: 600, seed: 20261201, endOnFailure: true },
    );
    const report = { ...stats, worstKnownRatio: stats.worstKnownRatio.toFixed(6), worstAnyRatio: stats.worstAnyRatio.toFixed(6) };
    console.log('pricing property:', JSON.stringify(report));
    // Not vacuous: bodies of every kind were priced by both sides, many with a known length.
    for (const kind of ['AVATAR_VIDEO', 'TEMPLATE_VIDEO', 'VIDEO_TRANSLATION', 'VIDEO_AGENT']) expect(stats.billed[kind], kind).toBeGreaterThan(5);
    expect(stats.knownLength).toBeGreaterThan(50);
    expect(stats.gatewayRefused).toBeGreaterThan(10);
    expect(stats.worstKnownRatio).toBeLessThanOrEqual(1.5);
    expect(stats.worstKnownRatio).toBeGreaterThanOrEqual(1);
  }, 240_000);
});

// The gateway's estimate, on the shared pricing model: exact holds for known lengths, refusals for bodies
// HeyGen could read two ways, and maxima (never a caller's smaller figure) for what cannot be measured.
import { describe, expect, it } from 'vitest';
import { estimateJob, planJob, type PreparedJob } from '../src/jobs/estimate.js';
import { defaultPriceBook } from '../src/accounts/price-book.js';
import type { JobKind } from '../src/db/schema.js';

const book = defaultPriceBook();
const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`).join(' ');

function prepared(kind: JobKind, request: unknown, measured: Record<string, number> = {}): PreparedJob {
  const { body, plan, callback } = planJob(kind, request);
  return { kind, body, callback, plan, measured: new Map(Object.entries(measured).map(([k, s]) => [k, BigInt(Math.round(s * 1000)) * 1000n])) };
}
const estimate = (kind: JobKind, request: unknown, caller: string | null = null, measured: Record<string, number> = {}, priceBook = book) =>
  estimateJob(prepared(kind, request, measured), caller, priceBook);

describe('estimates', () => {
  it('a script is read at 150 words per minute, × rate × 110 %', () => {
    const e = estimate('AVATAR_VIDEO', { type: 'avatar', avatar_id: 'a', script: words(150) });
    expect(e).toMatchObject({ product: 'AVATAR_IV', estimatedSeconds: '60', estimatedMicroCs: 396_000_000n }); // 60 s × 6 × 1.1
  });

  it('the caller can raise an estimate but not lower it below the request or the maximum', () => {
    const script = { type: 'avatar', avatar_id: 'a', script: words(150) };
    expect(estimate('AVATAR_VIDEO', script, '0.000001').estimatedSeconds).toBe('60');
    expect(estimate('AVATAR_VIDEO', script, '90').estimatedSeconds).toBe('90');
    // Video Agent: held at the account's maximum (180 s); a tiny caller estimate does not shrink the hold.
    expect(estimate('VIDEO_AGENT', { prompt: 'x' }, '0.000001').estimatedSeconds).toBe('180');
    expect(estimate('VIDEO_AGENT', { prompt: 'x' }, '600').estimatedSeconds).toBe('600');
  });

  it('a translation holds its measured source per output language; "1" from the caller changes nothing', () => {
    const body = { video: { type: 'url', url: 'https://media.example/v.mp4' }, output_languages: ['fr', 'de'], mode: 'precision' };
    const e = estimate('VIDEO_TRANSLATION', body, '1', { 'video.url': 30 });
    expect(e).toMatchObject({ product: 'TRANSLATION_PRECISION', estimatedSeconds: '60', estimatedMicroCs: 396_000_000n });
    // start/end cut the measured source; an end past the source is capped at the source.
    expect(estimate('VIDEO_TRANSLATION', { ...body, start_time: 10, end_time: 500 }, null, { 'video.url': 30 }).estimatedSeconds).toBe('40');
    expect(() => estimate('VIDEO_TRANSLATION', { ...body, start_time: 31 }, null, { 'video.url': 30 })).toThrow(/past the end/);
  });

  it('audio-driven videos hold the measured audio; an audio asset is held at the 600 s maximum', () => {
    const e = estimate('AVATAR_VIDEO', { type: 'avatar', avatar_id: 'a', audio_url: 'https://media.example/a.wav' }, '1', { audio_url: 12.345 });
    expect(e).toMatchObject({ estimatedSeconds: '12.345', estimatedMicroCs: 81_477_000n }); // 12.345 × 6 × 1.1
    expect(estimate('AVATAR_VIDEO', { type: 'avatar', avatar_id: 'a', audio_asset_id: 'as_1' }, '1').estimatedSeconds).toBe('600');
    expect(() => estimate('AVATAR_VIDEO', { type: 'avatar', avatar_id: 'a', audio_url: 'https://media.example/a.wav' }, null, { audio_url: 600.001 })).toThrow(
      /600-second limit/,
    );
  });

  it('the rate follows what is rendered, not a stray engine: cinematic and studio bodies with a top-level engine are refused', () => {
    expect(() => planJob('AVATAR_VIDEO', { type: 'cinematic_avatar', avatar_id: ['a'], prompt: 'p', engine: 'avatar_iii' })).toThrow(/engine/);
    expect(() => planJob('AVATAR_VIDEO', { scenes: [{ type: 'video', source: { type: 'asset_id', asset_id: 'c' } }], engine: 'avatar_iii' })).toThrow(/engine/);
    // Cinematic: its own product, 10 s by default, 15 s (HeyGen's maximum) with auto_duration.
    expect(estimate('AVATAR_VIDEO', { type: 'cinematic_avatar', avatar_id: ['a'], prompt: 'p' })).toMatchObject({ product: 'CINEMATIC_AVATAR', estimatedSeconds: '10' });
    expect(estimate('AVATAR_VIDEO', { type: 'cinematic_avatar', avatar_id: ['a'], prompt: 'p', auto_duration: true }).estimatedSeconds).toBe('15');
  });

  it('a script next to scenes is refused: HeyGen would render one and the hold could count the other', () => {
    expect(() => planJob('AVATAR_VIDEO', { type: 'avatar', avatar_id: 'a', script: Array(2499).fill('w').join(' '), scenes: [{ script: 'hi' }] })).toThrow(
      expect.objectContaining({ field: 'request.scenes' }),
    );
    expect(() => planJob('AVATAR_VIDEO', { type: 'studio', script: words(10), scenes: [{ type: 'video', source: { type: 'asset_id', asset_id: 'c' } }] })).toThrow(
      expect.objectContaining({ field: 'request.script' }),
    );
  });

  it('a studio video sums its scenes and is billed at its costliest engine', () => {
    const body = {
      scenes: [
        { type: 'avatar_video', input: { type: 'avatar', avatar_id: 'a', script: words(30), engine: { type: 'avatar_v' } } },
        { type: 'image', source: { type: 'url', url: 'https://media.example/i.png' }, duration: 2.5 },
        { type: 'video', source: { type: 'url', url: 'https://media.example/c.mp4' } },
        { type: 'video', source: { type: 'asset_id', asset_id: 'clip' } },
      ],
    };
    const costlier = { ...book, rates: { ...book.rates, AVATAR_V: '7' } };
    const e = estimate('AVATAR_VIDEO', body, null, { 'scenes.2.source.url': 4 }, costlier);
    // 12 s speech + 2.5 s still + 4 s measured clip + 1,800 s (the maximum for a clip given by asset id)
    expect(e).toMatchObject({ product: 'AVATAR_V', estimatedSeconds: '1818.5' });
    expect(e.estimatedMicroCs).toBe((1_818_500_000n * 7n * 110n) / 100n);
  });
});

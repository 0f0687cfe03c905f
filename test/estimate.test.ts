import { describe, expect, it } from 'vitest';
import { estimateJob } from '../src/jobs/estimate.js';
import { defaultPriceBook } from '../src/accounts/price-book.js';

const book = defaultPriceBook();

describe('estimates', () => {
  it('a script is read at 150 words per minute, × rate × 110 %', () => {
    const e = estimateJob('AVATAR_VIDEO', { type: 'avatar', script: Array(150).fill('w').join(' ') }, null, book);
    expect(e).toMatchObject({ product: 'AVATAR_IV', estimatedSeconds: '60', estimatedMicroCs: 396_000_000n }); // 60 s × 6 × 1.1
  });

  it('the caller can raise an estimate but not lower it below the request or the product default', () => {
    const script = { type: 'avatar', script: Array(150).fill('w').join(' ') };
    expect(estimateJob('AVATAR_VIDEO', script, '0.000001', book).estimatedSeconds).toBe('60');
    expect(estimateJob('AVATAR_VIDEO', script, '90', book).estimatedSeconds).toBe('90');
    // Video Agent: the default is 180 s; a tiny caller estimate does not shrink the hold.
    expect(estimateJob('VIDEO_AGENT', { prompt: 'x' }, '0.000001', book).estimatedSeconds).toBe('180');
    expect(estimateJob('VIDEO_AGENT', { prompt: 'x' }, '600', book).estimatedSeconds).toBe('600');
  });

  it('a translation holds per output language', () => {
    const e = estimateJob('VIDEO_TRANSLATION', { video: { type: 'url', url: 'u' }, output_languages: ['fr', 'de'], start_time: 0, end_time: 30, mode: 'precision' }, null, book);
    expect(e).toMatchObject({ product: 'TRANSLATION_PRECISION', estimatedSeconds: '60', estimatedMicroCs: 396_000_000n });
  });

  it('a job with no length anywhere is refused', () => {
    expect(() => estimateJob('AVATAR_VIDEO', { type: 'avatar', audio_url: 'https://x/a.mp3' }, null, book)).toThrow(/cannot be estimated/);
  });
});

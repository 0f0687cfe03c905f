// The default price book, from HeyGen's published per-product rates read as 1 credit = 60 credit-seconds
// (the unit is unconfirmed upstream, so every account can edit its own copy).
import type { PriceBook } from '../db/schema.js';
import { PRODUCTS, type Product, type UnmeasuredSource } from '../pricing/model.js';

export const PRICE_BOOK_UNIT = 'credit-seconds per output second' as const;
// Per-call products (AVATAR_CREATION) are the exception the unit names: their rate is credit-seconds per output.

export { PRODUCTS, type Product };

/** Sources whose length the price book bounds (cinematic auto-duration is bounded by HeyGen's own 15 s). */
export const PRICE_BOOK_MAXIMA = ['audio_asset', 'video_asset', 'template', 'video_agent'] as const satisfies readonly UnmeasuredSource[];

export function defaultPriceBook(): PriceBook {
  return {
    unit: PRICE_BOOK_UNIT,
    rates: {
      AVATAR_IV: '6', // 0.1 credits/s
      AVATAR_V: '6', // 0.1 credits/s
      AVATAR_III: '0.198', // 0.0033 credits/s
      CINEMATIC_AVATAR: '6', // unpublished: priced like Avatar IV until HeyGen says otherwise
      TEMPLATE: '6', // rendered with Avatar IV unless the account says otherwise
      VIDEO_AGENT: '4.002', // 0.0667 credits/s
      TRANSLATION_SPEED: '3', // 0.05 credits/s
      TRANSLATION_PRECISION: '6', // 0.1 credits/s
      TRANSLATION_PROOFREAD: '0.4998', // 0.00833 credits/s
      LIPSYNC_SPEED: '3', // 0.05 credits/s
      LIPSYNC_PRECISION: '6', // 0.1 credits/s
      TTS: '0.01998', // 0.000333 credits/s
      AVATAR_CREATION: '60', // 1 credit per call: credit-seconds per created avatar, not per second (PER_CALL_PRODUCTS)
    } satisfies Record<Product, string>,
    // Seconds held for one output (or one audio asset) whose length can be neither measured nor read from the
    // request: never a caller's smaller figure. audio_asset is HeyGen's documented audio limit.
    maxSeconds: { audio_asset: '600', video_asset: '1800', template: '300', video_agent: '180' },
    wordsPerMinute: 150,
    safetyMarginPercent: 110,
    billingIncrementSeconds: 0,
  };
}

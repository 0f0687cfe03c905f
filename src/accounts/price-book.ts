// The default price book, from HeyGen's published per-product rates read as 1 credit = 60 credit-seconds
// (heygen-api.md: the unit is unconfirmed upstream, so every account can edit its own copy).
import type { JobKind, PriceBook } from '../db/schema.js';

export const PRICE_BOOK_UNIT = 'credit-seconds per output second' as const;

export const PRODUCTS = [
  'AVATAR_IV',
  'AVATAR_V',
  'AVATAR_III',
  'TEMPLATE',
  'VIDEO_AGENT',
  'TRANSLATION_SPEED',
  'TRANSLATION_PRECISION',
] as const;
export type Product = (typeof PRODUCTS)[number];

export function defaultPriceBook(): PriceBook {
  return {
    unit: PRICE_BOOK_UNIT,
    rates: {
      AVATAR_IV: '6', // 0.1 credits/s
      AVATAR_V: '6', // 0.1 credits/s
      AVATAR_III: '0.198', // 0.0033 credits/s
      TEMPLATE: '6', // rendered with Avatar IV unless the account says otherwise
      VIDEO_AGENT: '4.002', // 0.0667 credits/s
      TRANSLATION_SPEED: '3', // 0.05 credits/s
      TRANSLATION_PRECISION: '6', // 0.1 credits/s
    },
    defaultSeconds: { TEMPLATE_VIDEO: '60', VIDEO_AGENT: '180' } satisfies Partial<Record<JobKind, string>>,
    wordsPerMinute: 150,
    safetyMarginPercent: 110,
    billingIncrementSeconds: 0,
  };
}

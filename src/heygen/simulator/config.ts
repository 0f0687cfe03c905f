import { z } from 'zod';
import { numberToDecimal } from './money.js';

/** Products the simulator prices, one rate each (credits per output second): the pricing model's, in lower case. */
export const RATE_PRODUCTS = [
  'avatar_v',
  'avatar_iv',
  'avatar_iii',
  'cinematic_avatar',
  'template',
  'video_agent',
  'translation_speed',
  'translation_precision',
  'translation_proofread',
  'lipsync_speed',
  'lipsync_precision',
  'tts',
  /** Credits per created avatar (billed per call, not per second). */
  'avatar_creation',
] as const;
export type RateProduct = (typeof RATE_PRODUCTS)[number];

export const MALFORMED_KINDS = ['invalid_json', 'missing_data', 'random'] as const;
export type MalformedKind = (typeof MALFORMED_KINDS)[number];

export interface SimulatorConfig {
  /** Seed of the PRNG behind every probabilistic fault; changing it re-seeds. */
  seed: number;

  // Lifecycle
  /** Time from create to terminal state; the job turns `processing` at half of it. 0 = next tick. */
  renderMs: number;
  /** false: jobs stop at `processing` until forced with completeNow/failNow or the control API. */
  autoComplete: boolean;

  // Durations (seconds; decimals allowed, kept to the millisecond)
  /** Overrides every computed duration when set. */
  fixedDurationSeconds: number | null;
  wordsPerMinute: number;
  minVideoSeconds: number;
  /** 'measure': read the length of media URLs and inline data like HeyGen does; 'configured': use the lengths below. */
  mediaDurations: 'measure' | 'configured';
  mediaTimeoutMs: number;
  mediaMaxBytes: number;
  /** Let media URLs resolve to loopback or private addresses (tests serving media on 127.0.0.1). */
  mediaAllowPrivate: boolean;
  /** Length of audio_asset_id inputs (HeyGen caps audio at 600 s), and of audio URLs when not measured. */
  audioDurationSeconds: number;
  /** cinematic_avatar without `duration` (HeyGen's documented default is 10). */
  cinematicDefaultSeconds: number;
  /** Length of a `video` clip scene given by asset id (or by URL when not measured). */
  videoClipSeconds: number;
  templateDurationSeconds: number;
  /** Length of a translation source video given by asset id (or by URL when not measured). */
  translationSourceSeconds: number;
  /** Video Agent output length; null = derived from the prompt (see agentDurationMs). */
  agentDurationSeconds: number | null;
  /** Characters a second text to speech reads at speed 1 (the audio's length is text ÷ this ÷ speed). */
  speechCharsPerSecond: number;

  // Billing
  /** Credit-seconds per credit: HeyGen's unit is unconfirmed, 60 reads credits as credit-minutes. */
  creditUnitSeconds: number;
  /** Credits per output second, as decimal strings so that they parse exactly. */
  rates: Record<RateProduct, string>;
  /** Refuse creates with 402 insufficient_credit once a wallet is empty or a spending cap is hit. */
  enforceBalance: boolean;

  // Limits
  defaultConcurrencyLimit: number;
  /** Per api key, fixed one-second window; null = unlimited. */
  requestsPerSecond: number | null;
  /** Retry-After for injected 429s, request-rate 429s and concurrency 429s in manual mode. */
  retryAfterSeconds: number;
  idempotencyTtlMs: number;
  /** Bulk status endpoints report pending jobs as this (the v3 spec text says `queued`). */
  bulkPendingStatus: string;

  // Fault injection
  latencyMs: number;
  fail5xxRate: number;
  fail5xxNext: number;
  /** true: the job is created (and its response stored for replay) before the 5xx is sent. */
  fail5xxAfterCreate: boolean;
  rateLimitNext: number;
  timeoutNext: number;
  timeoutHoldMs: number;
  malformedNext: number;
  malformedKind: MalformedKind;
  /**
   * The next N successful v3 answers (reads and creates; a create still happens and is stored for replay) are
   * replaced by `oversizedBytes` of garbage, streamed without being held in memory: a proxy gone wrong or a
   * hostile upstream, for testing that clients cap what they read.
   */
  oversizedNext: number;
  oversizedBytes: number;
  /** true: the oversized answer announces its length in Content-Length; false: it is sent chunked. */
  oversizedDeclareLength: boolean;
  loseWebhooks: boolean;
  webhookLossRate: number;
  failJobRate: number;
  failNextJobs: number;
  failureCode: string;
  failureMessage: string;

  // Webhooks
  signatureHeader: string;
  webhookMaxAttempts: number;
  webhookRetryBaseMs: number;
  webhookTimeoutMs: number;

  /** Base of the media URLs in responses; null = the simulator's own URL. */
  publicUrl: string | null;
}

/** HeyGen's published per-product rates (credits per second). */
export const DEFAULT_RATES: Record<RateProduct, string> = {
  avatar_v: '0.1',
  avatar_iv: '0.1',
  avatar_iii: '0.0033',
  // Unpublished: priced like Avatar IV until HeyGen says otherwise.
  cinematic_avatar: '0.1',
  template: '0.1',
  video_agent: '0.0667',
  translation_speed: '0.05',
  translation_precision: '0.1',
  translation_proofread: '0.00833',
  lipsync_speed: '0.05',
  lipsync_precision: '0.1',
  tts: '0.000333',
  avatar_creation: '1',
};

export const DEFAULT_CONFIG: SimulatorConfig = {
  seed: 1,
  renderMs: 200,
  autoComplete: true,
  fixedDurationSeconds: null,
  wordsPerMinute: 150,
  minVideoSeconds: 1,
  mediaDurations: 'measure',
  mediaTimeoutMs: 10_000,
  mediaMaxBytes: 4 * 1024 * 1024,
  mediaAllowPrivate: false,
  audioDurationSeconds: 30,
  cinematicDefaultSeconds: 10,
  videoClipSeconds: 10,
  templateDurationSeconds: 30,
  translationSourceSeconds: 60,
  agentDurationSeconds: null,
  speechCharsPerSecond: 14,
  creditUnitSeconds: 60,
  rates: DEFAULT_RATES,
  enforceBalance: true,
  defaultConcurrencyLimit: 10,
  requestsPerSecond: null,
  retryAfterSeconds: 1,
  idempotencyTtlMs: 24 * 60 * 60 * 1000,
  bulkPendingStatus: 'queued',
  latencyMs: 0,
  fail5xxRate: 0,
  fail5xxNext: 0,
  fail5xxAfterCreate: false,
  rateLimitNext: 0,
  timeoutNext: 0,
  timeoutHoldMs: 30_000,
  malformedNext: 0,
  malformedKind: 'random',
  oversizedNext: 0,
  oversizedBytes: 1024 * 1024 * 1024,
  oversizedDeclareLength: false,
  loseWebhooks: false,
  webhookLossRate: 0,
  failJobRate: 0,
  failNextJobs: 0,
  failureCode: 'render_failed',
  failureMessage: 'Simulated render failure',
  signatureHeader: 'X-HeyGen-Signature',
  webhookMaxAttempts: 4,
  webhookRetryBaseMs: 50,
  webhookTimeoutMs: 2_000,
  publicUrl: null,
};

/** A config patch: like Partial<SimulatorConfig>, but rates may be patched one product at a time. */
export type SimulatorConfigPatch = Partial<Omit<SimulatorConfig, 'rates'>> & {
  rates?: Partial<Record<RateProduct, string | number>>;
};

const count = z.number().int().min(0);
const probability = z.number().min(0).max(1);
const seconds = z.number().positive();
const decimalRate = z.union([z.string().regex(/^\d+(\.\d+)?$/), z.number().min(0)]);

/** Validates patches arriving over the control API. */
export const configPatchSchema = z.strictObject({
  seed: z.number().int().optional(),
  renderMs: count.optional(),
  autoComplete: z.boolean().optional(),
  fixedDurationSeconds: seconds.nullable().optional(),
  wordsPerMinute: seconds.optional(),
  minVideoSeconds: z.number().min(0).optional(),
  mediaDurations: z.enum(['measure', 'configured']).optional(),
  mediaTimeoutMs: z.number().int().positive().optional(),
  mediaMaxBytes: z.number().int().positive().optional(),
  mediaAllowPrivate: z.boolean().optional(),
  audioDurationSeconds: seconds.optional(),
  cinematicDefaultSeconds: seconds.optional(),
  videoClipSeconds: seconds.optional(),
  templateDurationSeconds: seconds.optional(),
  translationSourceSeconds: seconds.optional(),
  agentDurationSeconds: seconds.nullable().optional(),
  speechCharsPerSecond: seconds.optional(),
  creditUnitSeconds: z.number().int().positive().optional(),
  rates: z.partialRecord(z.enum(RATE_PRODUCTS), decimalRate).optional(),
  enforceBalance: z.boolean().optional(),
  defaultConcurrencyLimit: count.optional(),
  requestsPerSecond: z.number().int().positive().nullable().optional(),
  retryAfterSeconds: count.optional(),
  idempotencyTtlMs: count.optional(),
  bulkPendingStatus: z.string().min(1).optional(),
  latencyMs: count.optional(),
  fail5xxRate: probability.optional(),
  fail5xxNext: count.optional(),
  fail5xxAfterCreate: z.boolean().optional(),
  rateLimitNext: count.optional(),
  timeoutNext: count.optional(),
  timeoutHoldMs: count.optional(),
  malformedNext: count.optional(),
  malformedKind: z.enum(MALFORMED_KINDS).optional(),
  oversizedNext: count.optional(),
  oversizedBytes: z.number().int().positive().max(2 ** 40).optional(),
  oversizedDeclareLength: z.boolean().optional(),
  loseWebhooks: z.boolean().optional(),
  webhookLossRate: probability.optional(),
  failJobRate: probability.optional(),
  failNextJobs: count.optional(),
  failureCode: z.string().min(1).optional(),
  failureMessage: z.string().min(1).optional(),
  signatureHeader: z.string().regex(/^[A-Za-z0-9-]+$/).optional(),
  webhookMaxAttempts: z.number().int().min(1).optional(),
  webhookRetryBaseMs: count.optional(),
  webhookTimeoutMs: z.number().int().positive().optional(),
  publicUrl: z.url().nullable().optional(),
});

export function applyConfigPatch(base: SimulatorConfig, patch: SimulatorConfigPatch): SimulatorConfig {
  const { rates, ...rest } = patch;
  const defined = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
  const next: SimulatorConfig = { ...base, ...defined, rates: { ...base.rates } };
  for (const [product, rate] of Object.entries(rates ?? {})) {
    if (rate !== undefined) next.rates[product as RateProduct] = typeof rate === 'number' ? numberToDecimal(rate) : rate;
  }
  return next;
}

// Validates a job's HeyGen v3 body and estimates its cost in micro-credit-seconds before anything is
// reserved. A job that cannot be estimated is refused: nothing is ever forwarded unreserved.
import { z } from 'zod';
import type { JobKind, PriceBook } from '../db/schema.js';
import { ValidationError } from '../errors.js';
import { DEFAULT_MAX_JSON_DEPTH, requireStorableValue } from '../validation.js';
import { formatCreditSeconds } from '../billing/money.js';
import { formatDecimal as numberToDecimal } from '../heygen/client.js';
import type { Product } from '../accounts/price-book.js';

const MICRO = 1_000_000n;
/** No HeyGen output we forward is longer than this; a larger estimate is a mistake, not a job. */
export const MAX_ESTIMATED_SECONDS = 4 * 3600;
export const MAX_SCRIPT_CHARS = 5000;
const MAX_LANGUAGES = 50;
/** Longest source video a translation may cut from (a day), so times stay plain decimals. */
const MAX_SOURCE_SECONDS = 86_400;

const scriptSchema = z.string().max(MAX_SCRIPT_CHARS, `script is limited to ${MAX_SCRIPT_CHARS} characters`);
const gatewayOwned = {
  callback_id: z.undefined({ error: 'callback_id is set by the gateway' }).optional(),
  callback_url: z.undefined({ error: 'callback_url is set by the gateway' }).optional(),
};

const avatarVideoSchema = z.looseObject({
  ...gatewayOwned,
  type: z.enum(['avatar', 'image', 'cinematic_avatar']).optional(),
  engine: z.enum(['avatar_v', 'avatar_iv', 'avatar_iii']).optional(),
  script: scriptSchema.optional(),
  voice_id: z.string().optional(),
  audio_url: z.string().optional(),
  audio_asset_id: z.string().optional(),
  duration: z.number().positive().max(MAX_ESTIMATED_SECONDS).optional(),
  resolution: z.enum(['720p', '1080p', '4k']).optional(),
  scenes: z.array(z.looseObject({ script: scriptSchema.optional() })).min(1).max(100).optional(),
}).refine((b) => b.type !== undefined || b.scenes !== undefined, { message: 'type or scenes is required', path: ['type'] });

const templateVideoSchema = z.looseObject({
  ...gatewayOwned,
  template_id: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, 'template_id must be a HeyGen template id'),
  variables: z.record(z.string(), z.unknown()),
});

const translationSchema = z.looseObject({
  ...gatewayOwned,
  video: z.looseObject({ type: z.string() }),
  output_languages: z.array(z.string().min(2).max(35)).min(1).max(MAX_LANGUAGES),
  mode: z.enum(['speed', 'precision']).optional(),
  translate_audio_only: z.boolean().optional(),
  start_time: z.number().min(0).max(MAX_SOURCE_SECONDS).optional(),
  end_time: z.number().positive().max(MAX_SOURCE_SECONDS).optional(),
}).refine((b) => b.start_time === undefined || b.end_time === undefined || b.end_time > b.start_time, {
  message: 'end_time must be after start_time',
  path: ['end_time'],
});

const videoAgentSchema = z.looseObject({
  ...gatewayOwned,
  prompt: z.string().min(1).max(10000),
  mode: z.enum(['generate', 'chat']).optional(),
});

const schemas = {
  AVATAR_VIDEO: avatarVideoSchema,
  TEMPLATE_VIDEO: templateVideoSchema,
  VIDEO_TRANSLATION: translationSchema,
  VIDEO_AGENT: videoAgentSchema,
} as const;

export interface Estimate {
  product: Product;
  rateMicroCsPerSecond: bigint;
  /** Output seconds the hold covers (all languages together), before the safety margin. */
  estimatedSeconds: string;
  /** The hold: seconds × rate × margin, rounded up to a whole micro-credit-second. */
  estimatedMicroCs: bigint;
}

/** A decimal string or number of seconds to integer microseconds, rounding up past 6 decimals. */
export function secondsToMicro(value: string | number): bigint {
  const text = typeof value === 'number' ? numberToDecimal(value) : value.trim();
  const match = /^(\d+)(?:\.(\d+))?$/.exec(text);
  if (!match) throw new RangeError(`not a non-negative decimal: ${text}`);
  const whole = BigInt(match[1]!);
  const frac = match[2] ?? '';
  const head = BigInt((frac.slice(0, 6) + '000000').slice(0, 6));
  const roundUp = /[1-9]/.test(frac.slice(6)) ? 1n : 0n;
  return whole * MICRO + head + roundUp;
}

function ceilDiv(a: bigint, b: bigint): bigint {
  return (a + b - 1n) / b;
}

/** Applies the account's billing increment to one output's length (0 = exact seconds). */
export function billableMicroSeconds(microSeconds: bigint, incrementSeconds: number): bigint {
  if (incrementSeconds <= 0) return microSeconds;
  const step = BigInt(incrementSeconds) * MICRO;
  return ceilDiv(microSeconds, step) * step;
}

/** Cost of one output: billable seconds × rate (micro-cs per second), rounded up to a micro-credit-second. */
export function costMicroCs(microSeconds: bigint, rateMicroCsPerSecond: bigint, incrementSeconds: number): bigint {
  return ceilDiv(billableMicroSeconds(microSeconds, incrementSeconds) * rateMicroCsPerSecond, MICRO);
}

function wordsToMicroSeconds(script: string, wordsPerMinute: number): bigint {
  const words = script.trim() === '' ? 0 : script.trim().split(/\s+/).length;
  const micro = ceilDiv(BigInt(words) * 60n * MICRO, BigInt(wordsPerMinute));
  return micro < MICRO ? MICRO : micro;
}

function productOf(kind: JobKind, body: Record<string, unknown>): Product {
  switch (kind) {
    case 'AVATAR_VIDEO':
      return body.engine === 'avatar_iii' ? 'AVATAR_III' : body.engine === 'avatar_v' ? 'AVATAR_V' : 'AVATAR_IV';
    case 'TEMPLATE_VIDEO':
      return 'TEMPLATE';
    case 'VIDEO_TRANSLATION':
      return body.mode === 'precision' ? 'TRANSLATION_PRECISION' : 'TRANSLATION_SPEED';
    case 'VIDEO_AGENT':
      return 'VIDEO_AGENT';
  }
}

/** Output seconds the request itself implies, or null when only the caller or a default can tell. */
function secondsFromRequest(kind: JobKind, body: Record<string, unknown>, wpm: number): bigint | null {
  if (kind === 'AVATAR_VIDEO') {
    if (body.type === 'cinematic_avatar' && typeof body.duration === 'number') return secondsToMicro(body.duration);
    if (Array.isArray(body.scenes)) {
      const scripts = body.scenes.map((s) => (s as { script?: unknown }).script).filter((s): s is string => typeof s === 'string');
      return scripts.length === body.scenes.length ? scripts.reduce((sum, s) => sum + wordsToMicroSeconds(s, wpm), 0n) : null;
    }
    if (typeof body.script === 'string' && !body.audio_url && !body.audio_asset_id) return wordsToMicroSeconds(body.script, wpm);
    return null;
  }
  if (kind === 'VIDEO_TRANSLATION' && typeof body.end_time === 'number') {
    return secondsToMicro(body.end_time) - secondsToMicro(typeof body.start_time === 'number' ? body.start_time : 0);
  }
  return null;
}

function fieldOf(issue: z.core.$ZodIssue): string {
  return ['request', ...issue.path.map(String)].join('.');
}

export function validateJobRequest(kind: JobKind, request: unknown, maxJsonDepth: number = DEFAULT_MAX_JSON_DEPTH): Record<string, unknown> {
  if (typeof request !== 'object' || request === null || Array.isArray(request)) {
    throw new ValidationError('request', 'request must be a JSON object (the HeyGen v3 body)');
  }
  requireStorableValue(request, 'request', maxJsonDepth);
  const parsed = schemas[kind].safeParse(request);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ValidationError(fieldOf(issue), issue.message);
  }
  return request as Record<string, unknown>;
}

/**
 * Estimate = max(what the request implies, the caller's estimatedSeconds), else the product default;
 * × number of outputs (languages) × safety margin.
 */
export function estimateJob(
  kind: JobKind,
  body: Record<string, unknown>,
  callerEstimatedSeconds: string | null,
  priceBook: PriceBook,
): Estimate {
  let caller: bigint | null = null;
  if (callerEstimatedSeconds !== null) {
    try {
      caller = secondsToMicro(callerEstimatedSeconds);
    } catch {
      throw new ValidationError('estimatedSeconds', 'estimatedSeconds must be a positive decimal number of seconds');
    }
    if (caller <= 0n || caller > BigInt(MAX_ESTIMATED_SECONDS) * MICRO) {
      throw new ValidationError('estimatedSeconds', `estimatedSeconds must be greater than 0 and at most ${MAX_ESTIMATED_SECONDS}`);
    }
  }
  // The largest of what is known: the request's own length, else the product default, and the caller's figure.
  // A caller can raise an estimate but never push it below what the request or the default implies.
  const fallback = priceBook.defaultSeconds[kind];
  const floor = secondsFromRequest(kind, body, priceBook.wordsPerMinute) ?? (fallback !== undefined ? secondsToMicro(fallback) : null);
  const perOutput = floor !== null && caller !== null ? (floor > caller ? floor : caller) : (floor ?? caller);
  if (perOutput === null || perOutput <= 0n) {
    throw new ValidationError('estimatedSeconds', 'the job length cannot be estimated from the request; give estimatedSeconds');
  }
  if (perOutput > BigInt(MAX_ESTIMATED_SECONDS) * MICRO) {
    throw new ValidationError('request', `the request implies more than ${MAX_ESTIMATED_SECONDS} seconds of output`);
  }
  const outputs = kind === 'VIDEO_TRANSLATION' ? BigInt((body.output_languages as unknown[]).length) : 1n;
  const product = productOf(kind, body);
  const rateText = priceBook.rates[product];
  if (rateText === undefined) throw new ValidationError('kind', `the account's price book has no rate for ${product}`);
  const rate = secondsToMicro(rateText);
  const perOutputCost = costMicroCs(perOutput, rate, priceBook.billingIncrementSeconds);
  const estimatedMicroCs = ceilDiv(perOutputCost * outputs * BigInt(priceBook.safetyMarginPercent), 100n);
  return { product, rateMicroCsPerSecond: rate, estimatedSeconds: formatCreditSeconds(perOutput * outputs) /* seconds, same 6-decimal fixed point */, estimatedMicroCs };
}

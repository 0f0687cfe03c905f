// Validates a job's HeyGen v3 body, measures the media it points at, and estimates its cost in
// micro-credit-seconds with the shared pricing model (src/pricing) before anything is reserved.
// A job that cannot be priced is refused: nothing is ever forwarded unreserved.
import { z } from 'zod';
import { RESOLUTIONS, type JobKind, type PriceBook, type Resolution } from '../db/schema.js';
import { ValidationError } from '../errors.js';
import { DEFAULT_MAX_JSON_DEPTH, requireStorableValue } from '../validation.js';
import { formatCreditSeconds, secondsToMicro } from '../primitives/money.js';
import { defaultPriceBook } from '../accounts/price-book.js';
import {
  billedProduct,
  DOCUMENTED_MAX_SECONDS,
  mediaOf,
  outputMicro,
  planRequest,
  PricingError,
  type Endpoint,
  type Product,
  type RequestPlan,
  type UnmeasuredSource,
  isPerCall,
  MAX_BATCH_ITEMS,
} from '../pricing/model.js';
import { MediaError, measureMediaBytes, measureMediaUrl, type MediaProbeLimits } from '../pricing/media.js';
import { extractCallback, STRICT_CALLBACK_POLICY, type CallbackPolicy, type RequestedCallback } from './callback.js';

const MICRO = 1_000_000n;
/** No HeyGen output we forward is longer than this; a larger estimate is a mistake, not a job. */
export const MAX_ESTIMATED_SECONDS = 4 * 3600;
const MAX_LANGUAGES = 50;
/** Longest source video a translation may cut from (a day), so times stay plain decimals. */
const MAX_SOURCE_SECONDS = 86_400;

// An app's callback belongs to the whole job (src/jobs/callback.ts takes it from the top of the body); a batch
// payload's callback_id names its item for the gateway, so payloads cannot carry their own.
const payloadCallbackRefused = {
  callback_id: z.undefined({ error: "a batch payload's callback_id is set by the gateway (it names the item): put callback_id on the batch" }).optional(),
  callback_url: z.undefined({ error: 'a batch payload cannot have its own callback_url: give the batch one callback_url, called when the whole batch has ended' }).optional(),
};

const translationLimits = z.looseObject({
  output_languages: z.array(z.string().min(2).max(35)).min(1).max(MAX_LANGUAGES),
  start_time: z.number().min(0).max(MAX_SOURCE_SECONDS).optional(),
  end_time: z.number().positive().max(MAX_SOURCE_SECONDS).optional(),
});
const lipsyncLimits = z.looseObject({
  start_time: z.number().min(0).max(MAX_SOURCE_SECONDS).nullish(),
  end_time: z.number().positive().max(MAX_SOURCE_SECONDS).nullish(),
});

// The gateway's own limits on top of the pricing model (which checks every field that decides the price).
const schemas = {
  AVATAR_VIDEO: z.looseObject({}),
  TEMPLATE_VIDEO: z.looseObject({
    template_id: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, 'template_id must be a HeyGen template id'),
  }),
  VIDEO_TRANSLATION: translationLimits,
  VIDEO_AGENT: z.looseObject({}),
  LIPSYNC: lipsyncLimits,
  TTS: z.looseObject({}),
  TRANSLATION_PROOFREAD: z.looseObject({
    // HeyGen's proofread read reports no duration: the gateway bills the length it measured, so it must be able to.
    video: z.looseObject({ type: z.literal('url', { error: 'a proofread needs video as {type: "url", url}: HeyGen reports no length for proofreads, so the gateway bills the source length it measures, and an asset_id cannot be measured' }) }),
    output_languages: z.array(z.string().min(2).max(35)).min(1).max(MAX_LANGUAGES),
  }),
  AVATAR_CREATION: z.looseObject({}),
  VIDEO_BATCH: z.looseObject({ videos: z.array(z.looseObject({ ...payloadCallbackRefused })).max(MAX_BATCH_ITEMS) }),
  VIDEO_TRANSLATION_BATCH: z.looseObject({
    // One language per payload: HeyGen expands a multi-language payload into several items whose item_index is not
    // documented, and money must not depend on guessing which language an index is.
    video_translations: z
      .array(translationLimits.extend({ ...payloadCallbackRefused, output_languages: z.array(z.string().min(2).max(35)).min(1).max(1, 'a translation batch takes one output language per payload: give each language its own payload') }))
      .max(MAX_BATCH_ITEMS),
  }),
  LIPSYNC_BATCH: z.looseObject({ lipsyncs: z.array(lipsyncLimits.extend(payloadCallbackRefused)).max(MAX_BATCH_ITEMS) }),
} as const satisfies Record<JobKind, z.ZodType>;

const ENDPOINT: Record<JobKind, Endpoint> = {
  AVATAR_VIDEO: 'video',
  TEMPLATE_VIDEO: 'template',
  VIDEO_TRANSLATION: 'translation',
  VIDEO_AGENT: 'agent',
  LIPSYNC: 'lipsync',
  TTS: 'speech',
  TRANSLATION_PROOFREAD: 'proofread',
  AVATAR_CREATION: 'avatar',
  VIDEO_BATCH: 'video_batch',
  VIDEO_TRANSLATION_BATCH: 'translation_batch',
  LIPSYNC_BATCH: 'lipsync_batch',
};

/** Outputs of one batch job (after a translation payload expands per language): one page of HeyGen's batch read. */
export const MAX_BATCH_OUTPUTS = 100;

/** Kinds whose whole length the gateway measures or counts: a caller's estimatedSeconds has nothing to raise. */
const NO_CALLER_ESTIMATE: readonly JobKind[] = ['TRANSLATION_PROOFREAD', 'AVATAR_CREATION'];

/** A validated job with its pricing plan and the measured length of every media file it points at. */
export interface PreparedJob {
  kind: JobKind;
  /** The body forwarded to HeyGen: the app's `callback_url` / `callback_id` are taken out of it (see `callback`). */
  body: Record<string, unknown>;
  /** The app's own callback, from the body; null when it named none. */
  callback: RequestedCallback | null;
  plan: RequestPlan;
  /** Micro-seconds per media field (MediaRef.field). */
  measured: ReadonlyMap<string, bigint>;
}

export interface Estimate {
  product: Product;
  rateMicroCsPerSecond: bigint;
  /** Output seconds the hold covers (all languages together), before the safety margin. */
  estimatedSeconds: string;
  /** The hold: seconds × rate × margin, rounded up to a whole micro-credit-second. */
  estimatedMicroCs: bigint;
  /** The longest single output, in micro-seconds (0 for a product billed per call). */
  longestOutputMicroSeconds: bigint;
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

function fieldOf(issue: z.core.$ZodIssue): string {
  return ['request', ...issue.path.map(String)].join('.');
}

function requestField(field: string): string {
  return field === '' ? 'request' : `request.${field}`;
}

/**
 * Checks the body (the gateway's limits, the app's callback, then the pricing model) and returns the body to forward
 * (without the app's callback fields) with its plan and the callback. Sync, no I/O.
 */
export function planJob(
  kind: JobKind,
  request: unknown,
  maxJsonDepth: number = DEFAULT_MAX_JSON_DEPTH,
  callbackPolicy: CallbackPolicy = STRICT_CALLBACK_POLICY,
): { body: Record<string, unknown>; plan: RequestPlan; callback: RequestedCallback | null } {
  if (typeof request !== 'object' || request === null || Array.isArray(request)) {
    throw new ValidationError('request', 'request must be a JSON object (the HeyGen v3 body)');
  }
  requireStorableValue(request, 'request', maxJsonDepth);
  const parsed = schemas[kind].safeParse(request);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ValidationError(fieldOf(issue), issue.message);
  }
  const { body, callback } = extractCallback(request as Record<string, unknown>, callbackPolicy);
  try {
    const plan = planRequest(ENDPOINT[kind], body);
    if (plan.items && plan.outputs > MAX_BATCH_OUTPUTS) {
      throw new ValidationError('request', `the batch has ${plan.outputs} outputs (payloads × languages); at most ${MAX_BATCH_OUTPUTS} go in one batch job`);
    }
    return { body, plan, callback };
  } catch (error) {
    if (error instanceof PricingError) throw new ValidationError(requestField(error.field), error.message);
    throw error;
  }
}

export function validateJobRequest(kind: JobKind, request: unknown, maxJsonDepth: number = DEFAULT_MAX_JSON_DEPTH): Record<string, unknown> {
  return planJob(kind, request, maxJsonDepth).body;
}

/** At most this many media files are read at once for one request. */
const PROBE_PARALLELISM = 4;

/**
 * Validates a job and measures the media its length depends on. Network I/O: call it before, never inside,
 * the admission transaction. Unreachable, unparseable or oversized media is a ValidationError naming the field.
 */
export async function prepareJob(
  kind: JobKind,
  request: unknown,
  limits: MediaProbeLimits,
  maxJsonDepth: number = DEFAULT_MAX_JSON_DEPTH,
  callbackPolicy: CallbackPolicy = STRICT_CALLBACK_POLICY,
): Promise<PreparedJob> {
  const { body, plan, callback } = planJob(kind, request, maxJsonDepth, callbackPolicy);
  const refs = mediaOf(plan);
  const measured = new Map<string, bigint>();
  // One deadline for the whole request: fifty slow media URLs cannot hold an admission for fifty timeouts.
  const deadline = Date.now() + limits.timeoutMs;
  // And one byte budget: a body pointing at many files cannot make the gateway read more than one file's worth.
  const shared = { bytesLeft: limits.maxBytes };
  for (let i = 0; i < refs.length; i += PROBE_PARALLELISM) {
    await Promise.all(
      refs.slice(i, i + PROBE_PARALLELISM).map(async (ref) => {
        try {
          const remaining = { ...limits, timeoutMs: Math.max(1, deadline - Date.now()), shared };
          const micro =
            'url' in ref.source
              ? await measureMediaUrl(ref.source.url, remaining)
              : await measureMediaBytes(decodeBase64(ref.field, ref.source.data, limits.maxBytes), ref.source.mediaType ?? undefined, remaining);
          measured.set(ref.field, micro);
        } catch (error) {
          if (error instanceof MediaError) {
            const message = error.reason === 'timeout' ? `the media could not be read within ${limits.timeoutMs} ms` : error.message;
            throw new ValidationError(requestField(ref.field), `${message} (${error.reason})`);
          }
          throw error;
        }
      }),
    );
  }
  return { kind, body, callback, plan, measured };
}

function decodeBase64(field: string, data: string, maxBytes: number): Uint8Array {
  if (data.length > Math.ceil((maxBytes * 4) / 3) + 4) throw new MediaError('oversized', `inline media is larger than ${maxBytes} bytes`);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(data)) throw new ValidationError(requestField(field), 'data must be base64');
  return new Uint8Array(Buffer.from(data, 'base64'));
}

/** Seconds the gateway holds for what it cannot measure: the account's maximum (HeyGen's own where documented). */
function unmeasuredMicro(source: UnmeasuredSource, priceBook: PriceBook): bigint {
  const documented = DOCUMENTED_MAX_SECONDS[source];
  if (source === 'cinematic_auto') return BigInt(documented!) * MICRO;
  const value = priceBook.maxSeconds?.[source] ?? defaultPriceBook().maxSeconds[source];
  if (value === undefined) throw new ValidationError('request', `the account's price book has no maximum for ${source}`);
  return secondsToMicro(value);
}

function rateOf(product: Product, priceBook: PriceBook): bigint {
  // A price book written before a product existed falls back to the default rate for it.
  const text = priceBook.rates[product] ?? defaultPriceBook().rates[product];
  if (text === undefined) throw new ValidationError('kind', `the account's price book has no rate for ${product}`);
  return secondsToMicro(text);
}

/**
 * The hold: each output's length from the pricing model (script at the account's words per minute, measured
 * media, fixed fields, else the account's maximum), raised (never lowered) by the caller's estimatedSeconds,
 * × the costliest candidate product's rate × outputs × safety margin.
 */
export function estimateJob(job: PreparedJob, callerEstimatedSeconds: string | null, priceBook: PriceBook): Estimate {
  let caller: bigint | null = null;
  if (callerEstimatedSeconds !== null) {
    if (NO_CALLER_ESTIMATE.includes(job.kind)) {
      throw new ValidationError('estimatedSeconds', `a ${job.kind} job takes no estimatedSeconds: its length is measured (or it is billed per call)`);
    }
    try {
      caller = secondsToMicro(callerEstimatedSeconds);
    } catch {
      throw new ValidationError('estimatedSeconds', 'estimatedSeconds must be a positive decimal number of seconds');
    }
    if (caller <= 0n || caller > BigInt(MAX_ESTIMATED_SECONDS) * MICRO) {
      throw new ValidationError('estimatedSeconds', `estimatedSeconds must be greater than 0 and at most ${MAX_ESTIMATED_SECONDS}`);
    }
  }
  const { product, rate } = billedProduct(job.plan, (p) => rateOf(p, priceBook), (a, b) => (a > b ? 1 : a < b ? -1 : 0));
  const perCall = isPerCall(product);
  // A batch is the sum of its items, each held at its own length; anything else is one item.
  let seconds = 0n;
  let cost = 0n;
  let longest = 0n;
  for (const item of job.plan.items ?? [job.plan]) {
    const perOutput = perCall ? 0n : outputLength(job, item, caller, priceBook);
    if (perOutput > longest) longest = perOutput;
    const outputs = BigInt(item.outputs);
    seconds += perOutput * outputs;
    cost += itemCostMicroCs(product, perOutput, rate, priceBook.billingIncrementSeconds) * outputs;
  }
  const estimatedMicroCs = ceilDiv(cost * BigInt(priceBook.safetyMarginPercent), 100n);
  return {
    product,
    rateMicroCsPerSecond: rate,
    estimatedSeconds: formatCreditSeconds(seconds) /* seconds, same 6-decimal fixed point */,
    estimatedMicroCs,
    longestOutputMicroSeconds: longest,
  };
}

/** The resolution HeyGen renders a video at when its body names none. */
export const DEFAULT_RESOLUTION: Resolution = '1080p';

/** What unit policies judge a job by (docs/governance.md); the hold itself is the job's cost. */
export interface GovernedFacts {
  kind: JobKind;
  /** Every product an output of the job may be billed at. */
  products: Product[];
  /** The highest resolution it asks for; null for kinds that render no avatar video. */
  resolution: Resolution | null;
  longestOutputMicroSeconds: bigint;
  /** Target languages of a translation (or proofread), in request order. */
  languages: string[];
}

export function governedFacts(job: PreparedJob, estimate: Estimate): GovernedFacts {
  const plans = [job.plan, ...(job.plan.items ?? [])];
  const products = [...new Set(plans.flatMap((p) => p.products))];
  const languages = [...new Set(plans.flatMap((p) => p.languages))];
  let resolution: Resolution | null = null;
  if (job.kind === 'AVATAR_VIDEO' || job.kind === 'VIDEO_BATCH') {
    const bodies = job.kind === 'VIDEO_BATCH' ? ((job.body.videos as Record<string, unknown>[] | undefined) ?? []) : [job.body];
    for (const body of bodies) {
      const asked = RESOLUTIONS.includes(body.resolution as Resolution) ? (body.resolution as Resolution) : DEFAULT_RESOLUTION;
      if (resolution === null || RESOLUTIONS.indexOf(asked) > RESOLUTIONS.indexOf(resolution)) resolution = asked;
    }
  }
  return { kind: job.kind, products, resolution, longestOutputMicroSeconds: estimate.longestOutputMicroSeconds, languages };
}

/** What HeyGen bills for one completed output: per call, its rate; else its seconds × rate. */
export function itemCostMicroCs(product: string, microSeconds: bigint, rateMicroCsPerSecond: bigint, incrementSeconds: number): bigint {
  return isPerCall(product as Product) ? rateMicroCsPerSecond : costMicroCs(microSeconds, rateMicroCsPerSecond, incrementSeconds);
}

/** One output's length from the pricing model, raised (never lowered) by the caller's estimate. */
function outputLength(job: PreparedJob, plan: RequestPlan, caller: bigint | null, priceBook: PriceBook): bigint {
  let modelled: bigint;
  try {
    modelled = outputMicro(plan, {
      wordsPerMinute: priceBook.wordsPerMinute,
      minSpeechMicro: MICRO,
      media: (ref) => {
        const micro = job.measured.get(ref.field);
        if (micro === undefined) throw new Error(`media at ${ref.field} was not measured before estimating`);
        return micro;
      },
      unmeasured: (source) => unmeasuredMicro(source, priceBook),
    });
  } catch (error) {
    if (error instanceof PricingError) throw new ValidationError(requestField(error.field), error.message);
    throw error;
  }
  const perOutput = caller !== null && caller > modelled ? caller : modelled;
  if (perOutput > BigInt(MAX_ESTIMATED_SECONDS) * MICRO) {
    throw new ValidationError('request', `the request implies more than ${MAX_ESTIMATED_SECONDS} seconds of output`);
  }
  return perOutput;
}

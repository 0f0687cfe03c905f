// The one pricing model of HeyGen v3 create requests. For a body it says which product each output is
// billed at (and so which rate) and how long each output will be, as a sum of parts whose length comes
// from text, from fixed fields, from measured media or from a bounded unknown the caller's side supplies.
// The gateway's estimate and the simulator's rendering both use it, so they cannot read a body two ways.
// Where HeyGen's documentation leaves a body open to two readings, the model refuses it (PricingError).
import { z } from 'zod';

/** Billable products: each output of a request is billed at one of them (the costliest of its candidates). */
export const PRODUCTS = [
  'AVATAR_IV',
  'AVATAR_V',
  'AVATAR_III',
  'CINEMATIC_AVATAR',
  'TEMPLATE',
  'VIDEO_AGENT',
  'TRANSLATION_SPEED',
  'TRANSLATION_PRECISION',
] as const;
export type Product = (typeof PRODUCTS)[number];

/** The HeyGen create endpoints the model prices. */
export type Endpoint = 'video' | 'template' | 'translation' | 'agent';

/**
 * Lengths no request field and no readable media tells. `audio_asset` and `cinematic_auto` have documented
 * maxima (DOCUMENTED_MAX_SECONDS); the others are bounded only by what the caller's side configures.
 */
export const UNMEASURED_SOURCES = ['audio_asset', 'video_asset', 'template', 'video_agent', 'cinematic_auto'] as const;
export type UnmeasuredSource = (typeof UNMEASURED_SOURCES)[number];

/** HeyGen's documented limits: audio inputs are at most 600 s; a cinematic avatar video is 4–15 s. */
export const DOCUMENTED_MAX_SECONDS: Partial<Record<UnmeasuredSource, number>> = { audio_asset: 600, cinematic_auto: 15 };
export const MAX_AUDIO_SECONDS = 600;
export const CINEMATIC_DEFAULT_SECONDS = 10;
export const MAX_SCRIPT_CHARS = 5000;
export const MAX_PROMPT_CHARS = 10_000;
export const MAX_SCENES = 50;
export const MAX_IMAGE_SCENE_SECONDS = 300;

const MICRO = 1_000_000n;

/** A body that cannot be priced, or that HeyGen's documentation leaves open to two readings. */
export class PricingError extends Error {
  constructor(
    /** Dotted path inside the body ('' = the body itself). */
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'PricingError';
  }
}

/** Media a length depends on: a URL to read, or inline base64 data. */
export interface MediaRef {
  /** Where it sits in the body; also its key in a map of measured lengths. */
  field: string;
  kind: 'audio' | 'video';
  source: { url: string } | { data: string; mediaType: string | null };
}

export type LengthPart =
  | { type: 'speech'; field: string; words: number }
  | { type: 'fixed'; field: string; micro: bigint }
  | { type: 'media'; field: string; media: MediaRef }
  | { type: 'unmeasured'; field: string; source: UnmeasuredSource; prompt: string | null }
  /** A translation: the source video from start to end (end capped at the source's length). */
  | { type: 'excerpt'; field: string; video: MediaRef | { unmeasured: 'video_asset' }; startMicro: bigint; endMicro: bigint | null };

export interface RequestPlan {
  endpoint: Endpoint;
  /** The products an output may be billed at; it is billed at the costliest of them. */
  products: readonly Product[];
  /** Billable outputs (one per translation language, else one). */
  outputs: number;
  /** Each output's length is the sum of these parts. */
  parts: readonly LengthPart[];
  /** Output languages of a translation, in request order. */
  languages: readonly string[];
}

/** What the caller's side supplies to turn parts into seconds. */
export interface LengthContext {
  wordsPerMinute: number;
  /** The shortest spoken part (HeyGen renders at least this much for any script). */
  minSpeechMicro: bigint;
  /** The measured length of a media reference, in micro-seconds. */
  media(ref: MediaRef): bigint;
  /** The length to assume for something unmeasurable (the gateway: its maximum; the simulator: its render). */
  unmeasured(source: UnmeasuredSource, part: { prompt: string | null }): bigint;
}

// ---------------------------------------------------------------- schemas (pricing fields only)

const script = z.string({ error: 'script must be a string' }).max(MAX_SCRIPT_CHARS, `script must be at most ${MAX_SCRIPT_CHARS} characters`);
const text = z.string().min(1);
const ENGINES = ['avatar_v', 'avatar_iv', 'avatar_iii'] as const;
const engine = z
  .union([z.enum(ENGINES), z.looseObject({ type: z.enum(ENGINES) })], { error: `engine must be one of ${ENGINES.join(', ')}` })
  .nullish();
const asset = z.discriminatedUnion(
  'type',
  [
    z.looseObject({ type: z.literal('url'), url: text }),
    z.looseObject({ type: z.literal('asset_id'), asset_id: text }),
    z.looseObject({ type: z.literal('base64'), data: text, media_type: z.string().nullish() }),
  ],
  { error: 'must be {type: "url", url} or {type: "asset_id", asset_id} or {type: "base64", data, media_type}' },
);
const speech = {
  script: script.nullish(),
  audio_url: text.nullish(),
  audio_asset_id: text.nullish(),
};
/** Fields that belong to another body shape: their presence makes a body ambiguous, so it is refused. */
const absent = (why: string) => z.undefined({ error: why }).optional();

const notForStudio = 'belongs in a scene: a studio video (scenes) has no top-level script, audio or engine';
const avatarVideo = z.looseObject({
  type: z.enum(['avatar', 'image']),
  engine,
  ...speech,
  resolution: z.enum(['4k', '1080p', '720p']).nullish(),
  scenes: absent('scenes belong to a studio video (type "studio" or no type), not to an avatar or image video'),
  duration: absent('duration applies to cinematic_avatar videos and image scenes only'),
  auto_duration: absent('auto_duration applies to cinematic_avatar videos only'),
});
const cinematic = z.looseObject({
  type: z.literal('cinematic_avatar'),
  duration: z.number().int('duration must be a whole number of seconds').min(4, 'duration must be 4 to 15 seconds').max(15, 'duration must be 4 to 15 seconds').nullish(),
  auto_duration: z.boolean().nullish(),
  resolution: z.enum(['720p', '1080p']).nullish(),
  engine: absent('a cinematic_avatar video is not rendered by an avatar engine; engine would be ignored'),
  script: absent('a cinematic_avatar video is made from a prompt; script would be ignored'),
  audio_url: absent('a cinematic_avatar video takes no audio'),
  audio_asset_id: absent('a cinematic_avatar video takes no audio'),
  scenes: absent('scenes belong to a studio video, not to a cinematic_avatar video'),
});
const sceneInput = z.discriminatedUnion(
  'type',
  [
    z.looseObject({ type: z.literal('avatar'), engine, ...speech }),
    z.looseObject({ type: z.literal('image'), ...speech, engine: absent('an image input of a scene takes no engine') }),
  ],
  { error: 'input.type must be avatar or image' },
);
const scene = z.discriminatedUnion(
  'type',
  [
    z.looseObject({ type: z.literal('avatar_video'), input: sceneInput }),
    z.looseObject({
      type: z.literal('image'),
      source: asset,
      ...speech,
      duration: z.number().positive('duration must be > 0').max(MAX_IMAGE_SCENE_SECONDS, `duration must be at most ${MAX_IMAGE_SCENE_SECONDS}`).nullish(),
    }),
    z.looseObject({ type: z.literal('video'), source: asset, script: absent('a video clip scene plays at its own length; script would be ignored') }),
  ],
  { error: 'scene type must be avatar_video, image or video' },
);
const studio = z.looseObject({
  type: z.literal('studio').optional(),
  scenes: z.array(scene, { error: 'scenes must be an array' }).min(1, 'scenes must hold 1 to 50 scenes').max(MAX_SCENES, 'scenes must hold 1 to 50 scenes'),
  resolution: z.enum(['4k', '1080p', '720p']).nullish(),
  script: absent(notForStudio),
  audio_url: absent(notForStudio),
  audio_asset_id: absent(notForStudio),
  engine: absent(notForStudio),
  duration: absent('duration applies to image scenes, not to a studio video'),
});
const template = z.looseObject({ variables: z.record(z.string(), z.unknown(), { error: 'variables must be an object' }) });
const translation = z.looseObject({
  video: z.discriminatedUnion(
    'type',
    [z.looseObject({ type: z.literal('url'), url: text }), z.looseObject({ type: z.literal('asset_id'), asset_id: text })],
    { error: 'video must be {type: "url", url} or {type: "asset_id", asset_id}' },
  ),
  output_languages: z.array(z.string().min(1), { error: 'output_languages must be an array of languages' }).min(1, 'output_languages must not be empty'),
  mode: z.enum(['speed', 'precision']).nullish(),
  translate_audio_only: z.boolean().nullish(),
  start_time: z.number().min(0, 'start_time must be ≥ 0').nullish(),
  end_time: z.number().positive('end_time must be > 0').nullish(),
});
const agent = z.looseObject({
  prompt: z.string({ error: 'prompt must be 1-10000 characters' }).min(1, 'prompt must be 1-10000 characters').max(MAX_PROMPT_CHARS, 'prompt must be 1-10000 characters'),
  mode: z.enum(['generate', 'chat']).nullish(),
});

function parse<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  throw new PricingError(issue.path.map(String).join('.'), issue.message);
}

// ---------------------------------------------------------------- planning

/** Exact decimal of a JSON number, as micro-units rounded up (no float arithmetic on the way). */
export function numberToMicro(value: number): bigint {
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`not a non-negative finite number: ${value}`);
  const [whole, frac = ''] = value.toFixed(7).split('.');
  const micro = BigInt(whole!) * MICRO + BigInt(frac.slice(0, 6));
  return frac[6] && frac[6] !== '0' ? micro + 1n : micro;
}

export function countWords(value: string): number {
  return value.split(/\s+/).filter((word) => word.length > 0).length;
}

const engineProduct = (e: z.infer<typeof engine>): Product => {
  const name = e == null ? 'avatar_iv' : typeof e === 'string' ? e : e.type;
  return name === 'avatar_v' ? 'AVATAR_V' : name === 'avatar_iii' ? 'AVATAR_III' : 'AVATAR_IV';
};

function mediaRef(field: string, kind: MediaRef['kind'], input: z.infer<typeof asset>): MediaRef | null {
  if (input.type === 'url') return { field: `${field}.url`, kind, source: { url: input.url } };
  if (input.type === 'base64') return { field: `${field}.data`, kind, source: { data: input.data, mediaType: input.media_type ?? null } };
  return null;
}

/** The spoken part of an avatar, image or scene: exactly one of script, audio_url, audio_asset_id. */
function speechPart(input: { script?: string | null; audio_url?: string | null; audio_asset_id?: string | null }, prefix: string): LengthPart {
  const given = (['script', 'audio_url', 'audio_asset_id'] as const).filter((k) => input[k] != null);
  if (given.length > 1) {
    throw new PricingError(`${prefix}${given[1]}`, `${given.join(' and ')} are mutually exclusive: give one of script, audio_url, audio_asset_id`);
  }
  if (input.audio_url != null) {
    return { type: 'media', field: `${prefix}audio_url`, media: { field: `${prefix}audio_url`, kind: 'audio', source: { url: input.audio_url } } };
  }
  if (input.audio_asset_id != null) return { type: 'unmeasured', field: `${prefix}audio_asset_id`, source: 'audio_asset', prompt: null };
  if (input.script == null || input.script.trim() === '') {
    throw new PricingError(`${prefix}script`, 'provide a non-empty script, an audio_url or an audio_asset_id');
  }
  return { type: 'speech', field: `${prefix}script`, words: countWords(input.script) };
}

function planVideo(body: Record<string, unknown>): RequestPlan {
  const type = body['type'];
  const one = (products: Product[], parts: LengthPart[]): RequestPlan => ({ endpoint: 'video', products, outputs: 1, parts, languages: [] });
  if (type === 'avatar' || type === 'image') {
    const input = parse(avatarVideo, body);
    return one([engineProduct(input.engine)], [speechPart(input, '')]);
  }
  if (type === 'cinematic_avatar') {
    const input = parse(cinematic, body);
    if (input.auto_duration && input.duration != null) throw new PricingError('duration', 'omit duration when auto_duration is true');
    const part: LengthPart = input.auto_duration
      ? { type: 'unmeasured', field: 'auto_duration', source: 'cinematic_auto', prompt: null }
      : { type: 'fixed', field: 'duration', micro: BigInt(input.duration ?? CINEMATIC_DEFAULT_SECONDS) * MICRO };
    return one(['CINEMATIC_AVATAR'], [part]);
  }
  if (type === 'studio' || (type === undefined && body['scenes'] !== undefined)) {
    const input = parse(studio, body);
    // A studio video is billed like an Avatar IV video unless one of its avatar scenes asks for a costlier engine.
    const products = new Set<Product>(['AVATAR_IV']);
    const parts = input.scenes.map((s, i): LengthPart => {
      const prefix = `scenes.${i}.`;
      if (s.type === 'avatar_video') {
        if (s.input.type === 'avatar') products.add(engineProduct(s.input.engine));
        return speechPart(s.input, `${prefix}input.`);
      }
      if (s.type === 'image') {
        if (s.duration != null) {
          const other = (['script', 'audio_url', 'audio_asset_id'] as const).find((k) => s[k] != null);
          if (other) throw new PricingError(`${prefix}duration`, `duration and ${other} are mutually exclusive in an image scene`);
          return { type: 'fixed', field: `${prefix}duration`, micro: numberToMicro(s.duration) };
        }
        return speechPart(s, prefix);
      }
      const ref = mediaRef(`${prefix}source`, 'video', s.source);
      return ref
        ? { type: 'media', field: ref.field, media: ref }
        : { type: 'unmeasured', field: `${prefix}source.asset_id`, source: 'video_asset', prompt: null };
    });
    return one([...products], parts);
  }
  if (type === undefined) throw new PricingError('type', 'type (avatar, image, cinematic_avatar, studio) or scenes is required');
  throw new PricingError('type', 'type must be one of avatar, image, cinematic_avatar, studio');
}

function planTranslation(body: Record<string, unknown>): RequestPlan {
  const input = parse(translation, body);
  const start = numberToMicro(input.start_time ?? 0);
  const end = input.end_time == null ? null : numberToMicro(input.end_time);
  if (end !== null && end <= start) throw new PricingError('end_time', 'end_time must be greater than start_time');
  const video = input.video.type === 'url' ? { field: 'video.url', kind: 'video' as const, source: { url: input.video.url } } : { unmeasured: 'video_asset' as const };
  // Precision costs at least speed; audio-only in precision mode is priced at the costlier of the two.
  const products: Product[] = input.mode === 'precision' ? ['TRANSLATION_PRECISION', ...(input.translate_audio_only ? (['TRANSLATION_SPEED'] as const) : [])] : ['TRANSLATION_SPEED'];
  return {
    endpoint: 'translation',
    products,
    outputs: input.output_languages.length,
    parts: [{ type: 'excerpt', field: 'video', video, startMicro: start, endMicro: end }],
    languages: input.output_languages,
  };
}

/** Reads a create body: its products, outputs and length parts. Refuses what cannot be priced. */
export function planRequest(endpoint: Endpoint, body: unknown): RequestPlan {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new PricingError('', 'the request body must be a JSON object');
  const record = body as Record<string, unknown>;
  switch (endpoint) {
    case 'video':
      return planVideo(record);
    case 'template':
      parse(template, record);
      return { endpoint, products: ['TEMPLATE'], outputs: 1, parts: [{ type: 'unmeasured', field: 'template_id', source: 'template', prompt: null }], languages: [] };
    case 'translation':
      return planTranslation(record);
    case 'agent': {
      const input = parse(agent, record);
      return { endpoint, products: ['VIDEO_AGENT'], outputs: 1, parts: [{ type: 'unmeasured', field: 'prompt', source: 'video_agent', prompt: input.prompt }], languages: [] };
    }
  }
}

/** The media a plan's length depends on (to be measured before pricing). */
export function mediaOf(plan: RequestPlan): MediaRef[] {
  return plan.parts.flatMap((p) => (p.type === 'media' ? [p.media] : p.type === 'excerpt' && 'field' in p.video ? [p.video] : []));
}

function ceilDiv(a: bigint, b: bigint): bigint {
  return (a + b - 1n) / b;
}

/** A script's spoken length at `wordsPerMinute`, never below the minimum. */
export function speechMicro(words: number, wordsPerMinute: number, minMicro: bigint): bigint {
  const wpmMicro = numberToMicro(wordsPerMinute);
  if (wpmMicro <= 0n) throw new RangeError('wordsPerMinute must be positive');
  const micro = ceilDiv(BigInt(words) * 60n * MICRO * MICRO, wpmMicro);
  return micro < minMicro ? minMicro : micro;
}

function audioChecked(ref: MediaRef, micro: bigint): bigint {
  if (ref.kind === 'audio' && micro > BigInt(MAX_AUDIO_SECONDS) * MICRO) {
    throw new PricingError(ref.field, `the audio is longer than HeyGen's ${MAX_AUDIO_SECONDS}-second limit`);
  }
  return micro;
}

function partMicro(part: LengthPart, ctx: LengthContext): bigint {
  switch (part.type) {
    case 'speech':
      return speechMicro(part.words, ctx.wordsPerMinute, ctx.minSpeechMicro);
    case 'fixed':
      return part.micro;
    case 'media':
      return audioChecked(part.media, ctx.media(part.media));
    case 'unmeasured':
      return ctx.unmeasured(part.source, part);
    case 'excerpt': {
      const source = 'field' in part.video ? ctx.media(part.video) : ctx.unmeasured('video_asset', { prompt: null });
      const end = part.endMicro === null || part.endMicro > source ? source : part.endMicro;
      if (end <= part.startMicro) throw new PricingError('start_time', 'start_time is at or past the end of the source video');
      return end - part.startMicro;
    }
  }
}

/** One output's length in micro-seconds, rounded up to a whole millisecond (HeyGen reports milliseconds). */
export function outputMicro(plan: RequestPlan, ctx: LengthContext): bigint {
  const total = plan.parts.reduce((sum, part) => sum + partMicro(part, ctx), 0n);
  return ceilDiv(total, 1000n) * 1000n;
}

/** The product an output is billed at: the costliest candidate under `rateOf` (ties: the first listed). */
export function billedProduct<R>(plan: RequestPlan, rateOf: (product: Product) => R, compare: (a: R, b: R) => number): { product: Product; rate: R } {
  let best: { product: Product; rate: R } | null = null;
  for (const product of plan.products) {
    const rate = rateOf(product);
    if (!best || compare(rate, best.rate) > 0) best = { product, rate };
  }
  return best!;
}

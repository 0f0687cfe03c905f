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
  'TRANSLATION_PROOFREAD',
  'LIPSYNC_SPEED',
  'LIPSYNC_PRECISION',
  'TTS',
  'AVATAR_CREATION',
] as const;
export type Product = (typeof PRODUCTS)[number];

/** Products billed per call (per created output) instead of per output second: the rate is what one output costs. */
export const PER_CALL_PRODUCTS: readonly Product[] = ['AVATAR_CREATION'];
export const isPerCall = (product: Product): boolean => PER_CALL_PRODUCTS.includes(product);

/** The HeyGen create endpoints the model prices. */
export type Endpoint =
  | 'video'
  | 'template'
  | 'translation'
  | 'agent'
  | 'lipsync'
  | 'speech'
  | 'proofread'
  | 'avatar'
  | 'video_batch'
  | 'translation_batch'
  | 'lipsync_batch';

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
/** HeyGen's limits on POST /v3/voices/speech: text of 1–5000 characters, speed 0.5–2.0. */
export const MAX_SPEECH_CHARS = 5000;
export const MIN_SPEECH_SPEED = 0.5;
export const MAX_SPEECH_SPEED = 2;
/**
 * The speaking rate the gateway holds text-to-speech at: characters per second at speed 1. Real speech runs at
 * about 12–16 characters a second; 5 is a conservative floor so that the hold bounds the audio HeyGen returns
 * (SSML markup counts as characters, which only lengthens the bound).
 */
export const SPEECH_HOLD_CHARS_PER_SECOND = 5;
/** An SSML `<break>` without a `time` attribute is held as this long (SSML's strongest break is shorter). */
export const SSML_UNTIMED_BREAK_SECONDS = 2;
/** Items of one batch request (HeyGen's own cap). */
export const MAX_BATCH_ITEMS = 100;

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
  | { type: 'excerpt'; field: string; video: MediaRef | { unmeasured: 'video_asset' }; startMicro: bigint; endMicro: bigint | null }
  /** Text to speech: `chars` characters read at `speed`, plus explicit pauses. */
  | { type: 'text'; field: string; chars: number; speed: number; pauseMicro: bigint }
  /** The longest of several lengths (a lipsync may stretch its video to its new audio). */
  | { type: 'longest'; field: string; parts: readonly LengthPart[] };

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
  /**
   * A batch: one plan per submitted payload, in request order (a translation payload expands to one output per
   * language). Every item has the same candidate products (so one rate prices them all, whatever the price
   * book); each item's length is its own. The batch's `outputs` is the sum of its items'.
   */
  items?: readonly RequestPlan[];
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
  /** Characters a second text-to-speech reads at speed 1 (default: SPEECH_HOLD_CHARS_PER_SECOND, the hold's). */
  speechCharsPerSecond?: number;
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

const urlOrAsset = (what: string) =>
  z.discriminatedUnion(
    'type',
    [z.looseObject({ type: z.literal('url'), url: text }), z.looseObject({ type: z.literal('asset_id'), asset_id: text })],
    { error: `${what} must be {type: "url", url} or {type: "asset_id", asset_id}` },
  );
const lipsync = z.looseObject({
  video: urlOrAsset('video'),
  audio: urlOrAsset('audio'),
  mode: z.enum(['speed', 'precision'], { error: 'mode must be speed or precision' }).nullish(),
  start_time: z.number().min(0, 'start_time must be ≥ 0').nullish(),
  end_time: z.number().positive('end_time must be > 0').nullish(),
});
const speechRequest = z.looseObject({
  text: z.string({ error: `text must be 1-${MAX_SPEECH_CHARS} characters` }).min(1, `text must be 1-${MAX_SPEECH_CHARS} characters`).max(MAX_SPEECH_CHARS, `text must be 1-${MAX_SPEECH_CHARS} characters`),
  voice_id: z.string({ error: 'voice_id is required' }).min(1, 'voice_id is required'),
  input_type: z.enum(['text', 'ssml'], { error: 'input_type must be text or ssml' }).nullish(),
  speed: z.number({ error: 'speed must be a number' }).min(MIN_SPEECH_SPEED, 'speed must be 0.5 to 2.0').max(MAX_SPEECH_SPEED, 'speed must be 0.5 to 2.0').nullish(),
});
const proofread = z.looseObject({
  video: urlOrAsset('video'),
  output_languages: z.array(z.string().min(1), { error: 'output_languages must be an array of languages' }).min(1, 'output_languages must not be empty'),
  mode: z.enum(['speed', 'precision'], { error: 'mode must be speed or precision' }).nullish(),
  title: z.string({ error: 'title is required' }).min(1, 'title is required'),
});
const avatarCreate = z.discriminatedUnion(
  'type',
  [
    z.looseObject({ type: z.literal('photo'), name: text, file: asset }),
    z.looseObject({ type: z.literal('digital_twin'), name: text, file: asset }),
  ],
  { error: 'type must be photo or digital_twin (prompt-generated avatars have no published price)' },
);

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

function excerpt(video: z.infer<ReturnType<typeof urlOrAsset>>, start_time: number | null | undefined, end_time: number | null | undefined): LengthPart {
  const start = numberToMicro(start_time ?? 0);
  const end = end_time == null ? null : numberToMicro(end_time);
  if (end !== null && end <= start) throw new PricingError('end_time', 'end_time must be greater than start_time');
  const ref = video.type === 'url' ? { field: 'video.url', kind: 'video' as const, source: { url: video.url } } : { unmeasured: 'video_asset' as const };
  return { type: 'excerpt', field: 'video', video: ref, startMicro: start, endMicro: end };
}

/** A lipsync keeps its source video (or the excerpt asked for) but may stretch it to the new audio: the longer of the two. */
function planLipsync(body: Record<string, unknown>): RequestPlan {
  const input = parse(lipsync, body);
  const audio: LengthPart =
    input.audio.type === 'url'
      ? { type: 'media', field: 'audio.url', media: { field: 'audio.url', kind: 'audio', source: { url: input.audio.url } } }
      : { type: 'unmeasured', field: 'audio.asset_id', source: 'audio_asset', prompt: null };
  return {
    endpoint: 'lipsync',
    products: [input.mode === 'precision' ? 'LIPSYNC_PRECISION' : 'LIPSYNC_SPEED'],
    outputs: 1,
    parts: [{ type: 'longest', field: 'video', parts: [excerpt(input.video, input.start_time, input.end_time), audio] }],
    languages: [],
  };
}

const SSML_BREAK = /<break\b([^>]*)>/gi;
const SSML_TIME = /\btime\s*=\s*["']\s*(\d{1,7}(?:\.\d{1,6})?)\s*(ms|s)\s*["']/i;

/** Explicit pauses of an SSML text: each `<break time="…">` as stated, each untimed break as SSML_UNTIMED_BREAK_SECONDS. */
export function ssmlPauseMicro(ssml: string): bigint {
  let total = 0n;
  for (const match of ssml.matchAll(SSML_BREAK)) {
    const time = SSML_TIME.exec(match[1] ?? '');
    if (!time) {
      total += BigInt(SSML_UNTIMED_BREAK_SECONDS) * MICRO;
      continue;
    }
    const micro = numberToMicro(Number(time[1]));
    total += time[2]!.toLowerCase() === 'ms' ? (micro + 999n) / 1000n : micro;
  }
  return total;
}

function planSpeech(body: Record<string, unknown>): RequestPlan {
  const input = parse(speechRequest, body);
  const pauseMicro = input.input_type === 'ssml' ? ssmlPauseMicro(input.text) : 0n;
  return {
    endpoint: 'speech',
    products: ['TTS'],
    outputs: 1,
    parts: [{ type: 'text', field: 'text', chars: [...input.text].length, speed: input.speed ?? 1, pauseMicro }],
    languages: [],
  };
}

/** A proofread session per output language, each over the whole source video. */
function planProofread(body: Record<string, unknown>): RequestPlan {
  const input = parse(proofread, body);
  return {
    endpoint: 'proofread',
    products: ['TRANSLATION_PROOFREAD'],
    outputs: input.output_languages.length,
    parts: [excerpt(input.video, null, null)],
    languages: input.output_languages,
  };
}

/** Avatar creation is billed per call: one output of no length. */
function planAvatar(body: Record<string, unknown>): RequestPlan {
  if (body['type'] === 'prompt') throw new PricingError('type', 'prompt-generated avatars have no published price; only photo and digital_twin avatars can be created');
  parse(avatarCreate, body);
  return { endpoint: 'avatar', products: ['AVATAR_CREATION'], outputs: 1, parts: [], languages: [] };
}

function prefixPart(part: LengthPart, prefix: string): LengthPart {
  const field = `${prefix}.${part.field}`;
  switch (part.type) {
    case 'media':
      return { ...part, field, media: { ...part.media, field: `${prefix}.${part.media.field}` } };
    case 'excerpt':
      return { ...part, field, video: 'field' in part.video ? { ...part.video, field: `${prefix}.${part.video.field}` } : part.video };
    case 'longest':
      return { ...part, field, parts: part.parts.map((p) => prefixPart(p, prefix)) };
    default:
      return { ...part, field };
  }
}

const BATCHES = {
  video_batch: { key: 'videos', item: 'video' },
  translation_batch: { key: 'video_translations', item: 'translation' },
  lipsync_batch: { key: 'lipsyncs', item: 'lipsync' },
} as const satisfies Partial<Record<Endpoint, { key: string; item: Endpoint }>>;

/**
 * A batch: each payload planned like its own create call (fields prefixed `videos.3.…`). The items must share
 * their candidate products: a job has one rate, and HeyGen bills each item at its own product.
 */
function planBatch(endpoint: keyof typeof BATCHES, body: Record<string, unknown>): RequestPlan {
  const { key, item } = BATCHES[endpoint];
  const input = parse(
    z.looseObject({
      [key]: z.array(z.unknown(), { error: `${key} must be an array of payloads` }).min(1, `${key} must hold 1 to ${MAX_BATCH_ITEMS} payloads`).max(MAX_BATCH_ITEMS, `${key} must hold 1 to ${MAX_BATCH_ITEMS} payloads`),
      title: z.string().nullish(),
    }),
    body,
  );
  const payloads = input[key] as unknown[];
  const items = payloads.map((payload, i) => {
    const prefix = `${key}.${i}`;
    try {
      const plan = planRequest(item, payload);
      return { ...plan, parts: plan.parts.map((p) => prefixPart(p, prefix)) };
    } catch (error) {
      if (error instanceof PricingError) throw new PricingError(error.field ? `${prefix}.${error.field}` : prefix, error.message);
      throw error;
    }
  });
  const first = [...items[0]!.products].sort().join(',');
  const other = items.findIndex((p) => [...p.products].sort().join(',') !== first);
  if (other >= 0) {
    throw new PricingError(
      `${key}.${other}`,
      `every payload of a batch must be billed at the same product (${items[0]!.products.join('/')}); this one is ${items[other]!.products.join('/')}: submit it in another batch`,
    );
  }
  return {
    endpoint,
    products: items[0]!.products,
    outputs: items.reduce((sum, p) => sum + p.outputs, 0),
    parts: [],
    languages: items.flatMap((p) => p.languages),
    items,
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
    case 'lipsync':
      return planLipsync(record);
    case 'speech':
      return planSpeech(record);
    case 'proofread':
      return planProofread(record);
    case 'avatar':
      return planAvatar(record);
    case 'video_batch':
    case 'translation_batch':
    case 'lipsync_batch':
      return planBatch(endpoint, record);
  }
}

/** The media a plan's length depends on (to be measured before pricing). */
export function mediaOf(plan: RequestPlan): MediaRef[] {
  const of = (p: LengthPart): MediaRef[] =>
    p.type === 'media' ? [p.media] : p.type === 'excerpt' && 'field' in p.video ? [p.video] : p.type === 'longest' ? p.parts.flatMap(of) : [];
  return [...plan.parts.flatMap(of), ...(plan.items ?? []).flatMap(mediaOf)];
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
    case 'text': {
      const cps = numberToMicro(ctx.speechCharsPerSecond ?? SPEECH_HOLD_CHARS_PER_SECOND);
      const speed = numberToMicro(part.speed);
      if (cps <= 0n || speed <= 0n) throw new RangeError('speech rate and speed must be positive');
      // chars / (cps × speed) seconds, in micro-seconds, rounded up
      return ceilDiv(BigInt(part.chars) * MICRO * MICRO * MICRO, cps * speed) + part.pauseMicro;
    }
    case 'longest':
      return part.parts.reduce((max, p) => {
        const micro = partMicro(p, ctx);
        return micro > max ? micro : max;
      }, 0n);
  }
}

/** One output's length in micro-seconds, rounded up to a whole millisecond (HeyGen reports milliseconds). */
export function outputMicro(plan: RequestPlan, ctx: LengthContext): bigint {
  if (plan.items) throw new RangeError('a batch has one length per item: use outputMicro on each of plan.items');
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

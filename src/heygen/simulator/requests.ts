import { z } from 'zod';
import type { RateProduct, SimulatorConfig } from './config.js';
import { ApiError, validationError } from './errors.js';
import { decimalToMicro } from './money.js';
import {
  billedProduct,
  DOCUMENTED_MAX_SECONDS,
  mediaOf,
  outputMicro,
  planRequest,
  PricingError,
  type Endpoint,
  type RequestPlan,
  type UnmeasuredSource,
} from '../../pricing/model.js';
import { MediaError, measureMediaBytes, measureMediaUrl } from '../../pricing/media.js';

/**
 * Validation of the v3 create bodies. What a body is billed at and how long it renders come from the shared
 * pricing model (src/pricing/model.ts), with media lengths measured like HeyGen does (or configured).
 * Only the fields that change behaviour or billing are checked strictly; the rest pass through,
 * as HeyGen accepts many cosmetic options the simulator has no use for.
 */

export const ENGINES = ['avatar_v', 'avatar_iv', 'avatar_iii'] as const;
export type Engine = (typeof ENGINES)[number];

export const WEBHOOK_EVENT_TYPES = [
  'avatar_video.success',
  'avatar_video.fail',
  'avatar_video_gif.success',
  'avatar_video_gif.fail',
  'video_translate.success',
  'video_translate.fail',
  'video_translate.preflight.validation_failed',
  'video_translate.preflight.download_failed',
  'personalized_video',
  'instant_avatar.success',
  'instant_avatar.fail',
  'photo_avatar_generation.success',
  'photo_avatar_generation.fail',
  'photo_avatar_train.success',
  'photo_avatar_train.fail',
  'photo_avatar_add_motion.success',
  'photo_avatar_add_motion.fail',
  'proofread_creation.success',
  'proofread_creation.fail',
  'live_avatar.success',
  'live_avatar.fail',
  'avatar_video_caption.success',
  'avatar_video_caption.fail',
  'video_agent.success',
  'video_agent.fail',
  'hyperframes_video.success',
  'hyperframes_video.fail',
  'ai_clipping.success',
  'ai_clipping.fail',
  'batch.finished',
] as const;

export const MAX_SCRIPT_CHARS = 5000;
export const MAX_PROMPT_CHARS = 10_000;

interface Callback {
  callbackId: string | null;
  callbackUrl: string | null;
}

export interface VideoPlan extends Callback {
  pricing: RequestPlan;
  outputFormat: 'mp4' | 'webm';
  title: string | null;
}

export interface TranslationPlan extends Callback {
  pricing: RequestPlan;
  languages: string[];
  inputLanguage: string | null;
  translateAudioOnly: boolean;
  title: string | null;
}

export interface AgentPlan extends Callback {
  pricing: RequestPlan;
  prompt: string;
}

export interface WebhookEndpointInput {
  url: string;
  events: string[] | null;
}

const httpUrl = z.url({ protocol: /^https?$/ });
const callbackFields = {
  callback_id: z.string().max(255).nullish(),
  callback_url: httpUrl.nullish(),
  title: z.string().nullish(),
};

const assetInput = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('url'), url: z.string().min(1) }),
  z.looseObject({ type: z.literal('asset_id'), asset_id: z.string().min(1) }),
  z.looseObject({ type: z.literal('base64'), data: z.string().min(1), media_type: z.string().min(1) }),
]);

const engineInput = z
  .union([z.enum(ENGINES), z.looseObject({ type: z.enum(ENGINES) })], {
    error: `engine must be one of ${ENGINES.join(', ')}`,
  })
  .nullish();

const speech = {
  script: z.string().max(MAX_SCRIPT_CHARS, `script must be at most ${MAX_SCRIPT_CHARS} characters`).nullish(),
  voice_id: z.string().nullish(),
  audio_url: httpUrl.nullish(),
  audio_asset_id: z.string().min(1).nullish(),
};

const videoCommon = {
  ...callbackFields,
  output_format: z.enum(['mp4', 'webm']).nullish(),
  resolution: z.enum(['4k', '1080p', '720p']).nullish(),
};

const avatarVideo = z.looseObject({
  ...videoCommon,
  ...speech,
  type: z.literal('avatar'),
  avatar_id: z.string().min(1),
  engine: engineInput,
});

const imageVideo = z.looseObject({
  ...videoCommon,
  ...speech,
  type: z.literal('image'),
  image: assetInput,
  engine: engineInput,
});

const cinematicVideo = z.looseObject({
  ...callbackFields,
  type: z.literal('cinematic_avatar'),
  avatar_id: z.array(z.string().min(1)).min(1).max(3),
  prompt: z.string().min(1),
  duration: z.number().int().min(4).max(15).nullish(),
  auto_duration: z.boolean().nullish(),
  resolution: z.enum(['720p', '1080p']).nullish(),
});

const sceneAvatarInput = z.looseObject({ ...speech, type: z.literal('avatar'), avatar_id: z.string().min(1), engine: engineInput });
const sceneImageInput = z.looseObject({ ...speech, type: z.literal('image'), image: assetInput });
const scene = z.discriminatedUnion('type', [
  z.looseObject({
    type: z.literal('avatar_video'),
    input: z.discriminatedUnion('type', [sceneAvatarInput, sceneImageInput]),
  }),
  z.looseObject({ ...speech, type: z.literal('image'), source: assetInput, duration: z.number().positive().max(300).nullish() }),
  z.looseObject({ type: z.literal('video'), source: assetInput }),
]);

const studioVideo = z.looseObject({
  ...videoCommon,
  type: z.literal('studio').optional(),
  scenes: z.array(scene).min(1).max(50),
});

const templateGenerate = z.looseObject({
  ...callbackFields,
  variables: z.record(z.string(), z.unknown()),
});

const translationCreate = z.looseObject({
  ...callbackFields,
  video: assetInput,
  output_languages: z.array(z.string().min(1)).min(1, 'output_languages must not be empty'),
  mode: z.enum(['speed', 'precision']).nullish(),
  input_language: z.string().nullish(),
  translate_audio_only: z.boolean().nullish(),
  start_time: z.number().min(0).nullish(),
  end_time: z.number().positive().nullish(),
});

const agentCreate = z.looseObject({
  ...callbackFields,
  prompt: z
    .string()
    .min(1, 'prompt must be 1-10000 characters')
    .max(MAX_PROMPT_CHARS, 'prompt must be 1-10000 characters'),
  mode: z.enum(['generate', 'chat']).nullish(),
});

const webhookEndpointCreate = z.looseObject({
  url: httpUrl,
  events: z.array(z.enum(WEBHOOK_EVENT_TYPES)).nullish(),
  entity_id: z.string().nullish(),
});

function parse<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw validationError(null, 'Request body must be a JSON object');
  }
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const param = issue && issue.path.length > 0 ? issue.path.map(String).join('.') : null;
  throw validationError(param, param ? `${param}: ${issue?.message}` : (issue?.message ?? 'Invalid request'));
}

const callbackOf = (body: { callback_id?: string | null; callback_url?: string | null }): Callback => ({
  callbackId: body.callback_id ?? null,
  callbackUrl: body.callback_url ?? null,
});

const secondsToMs = (seconds: number): number => Math.round(seconds * 1000);

/** The shared model's reading of a body; a body it cannot price is a 400 naming the field. */
function priced(endpoint: Endpoint, body: unknown): RequestPlan {
  try {
    return planRequest(endpoint, body);
  } catch (error) {
    if (error instanceof PricingError) throw validationError(error.field || null, error.field ? `${error.field}: ${error.message}` : error.message);
    throw error;
  }
}

/** Endpoints whose `video` is a source video (a translation's, lipsync's or proofread's). */
const SOURCE_VIDEO_ENDPOINTS: readonly Endpoint[] = ['translation', 'lipsync', 'proofread'];

/** The product an output is billed at: the costliest of the model's candidates at this simulator's rates. */
export function productOf(plan: RequestPlan, config: SimulatorConfig): RateProduct {
  const chosen = billedProduct(plan, (p) => decimalToMicro(config.rates[p.toLowerCase() as RateProduct]), (a, b) => (a > b ? 1 : a < b ? -1 : 0));
  return chosen.product.toLowerCase() as RateProduct;
}

/** What the simulator renders for a length no field tells: its configured figures, within HeyGen's documented limits. */
function unmeasuredMs(source: UnmeasuredSource, plan: RequestPlan, prompt: string | null, config: SimulatorConfig): number {
  let ms: number;
  switch (source) {
    case 'audio_asset':
      ms = secondsToMs(config.audioDurationSeconds);
      break;
    case 'video_asset':
      ms = secondsToMs(SOURCE_VIDEO_ENDPOINTS.includes(plan.endpoint) ? config.translationSourceSeconds : config.videoClipSeconds);
      break;
    case 'template':
      ms = secondsToMs(config.templateDurationSeconds);
      break;
    case 'video_agent':
      ms = agentDurationMs(prompt ?? '', config);
      break;
    case 'cinematic_auto':
      ms = secondsToMs(config.cinematicDefaultSeconds);
      break;
  }
  const max = DOCUMENTED_MAX_SECONDS[source];
  return max === undefined ? ms : Math.min(ms, max * 1000);
}

/**
 * Rendered length of one output, in ms. Media the length depends on is measured like HeyGen downloads it
 * (mediaDurations: 'measure'), or taken from the configured lengths ('configured', for offline tests).
 * Media that cannot be read is a 400 download_failed naming the field.
 */
export async function renderedMs(plan: RequestPlan, config: SimulatorConfig): Promise<number> {
  const measured = new Map<string, bigint>();
  if (config.mediaDurations === 'measure') {
    const limits = { timeoutMs: config.mediaTimeoutMs, maxBytes: config.mediaMaxBytes, allowPrivate: config.mediaAllowPrivate };
    for (const ref of mediaOf(plan)) {
      try {
        measured.set(
          ref.field,
          'url' in ref.source
            ? await measureMediaUrl(ref.source.url, limits)
            : await measureMediaBytes(new Uint8Array(Buffer.from(ref.source.data, 'base64')), ref.source.mediaType ?? undefined, limits),
        );
      } catch (error) {
        if (error instanceof MediaError) throw new ApiError(400, 'download_failed', `${ref.field}: ${error.message}`, ref.field);
        throw error;
      }
    }
  }
  const configuredMedia = (kind: 'audio' | 'video'): bigint =>
    BigInt(secondsToMs(kind === 'audio' ? config.audioDurationSeconds : SOURCE_VIDEO_ENDPOINTS.includes(plan.endpoint) ? config.translationSourceSeconds : config.videoClipSeconds)) * 1000n;
  try {
    const micro = outputMicro(plan, {
      wordsPerMinute: config.wordsPerMinute,
      minSpeechMicro: BigInt(secondsToMs(config.minVideoSeconds)) * 1000n,
      media: (ref) => measured.get(ref.field) ?? configuredMedia(ref.kind),
      unmeasured: (source, part) => BigInt(unmeasuredMs(source, plan, part.prompt, config)) * 1000n,
      speechCharsPerSecond: config.speechCharsPerSecond,
    });
    return Number(micro / 1000n);
  } catch (error) {
    if (error instanceof PricingError) throw validationError(error.field || null, `${error.field}: ${error.message}`);
    throw error;
  }
}

/** POST /v3/videos: avatar, image, cinematic_avatar, or a studio video of scenes[]. */
export function planVideo(body: unknown, _config?: SimulatorConfig): VideoPlan {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw validationError(null, 'Request body must be a JSON object');
  }
  const raw = body as Record<string, unknown>;
  const type = raw['type'];
  if (type === 'avatar' || type === 'image') {
    const input = type === 'avatar' ? parse(avatarVideo, body) : parse(imageVideo, body);
    return { ...callbackOf(input), pricing: priced('video', body), outputFormat: input.output_format ?? 'mp4', title: input.title ?? null };
  }
  if (type === 'cinematic_avatar') {
    const input = parse(cinematicVideo, body);
    return { ...callbackOf(input), pricing: priced('video', body), outputFormat: 'mp4', title: input.title ?? null };
  }
  if (type === 'studio' || (type === undefined && 'scenes' in raw)) {
    const input = parse(studioVideo, body);
    return { ...callbackOf(input), pricing: priced('video', body), outputFormat: input.output_format ?? 'mp4', title: input.title ?? null };
  }
  throw validationError('type', 'type must be one of avatar, image, cinematic_avatar, studio (with scenes)');
}

/** POST /v3/templates/{template_id}. */
export function planTemplate(body: unknown, _config?: SimulatorConfig): VideoPlan {
  const input = parse(templateGenerate, body);
  return { ...callbackOf(input), pricing: priced('template', body), outputFormat: 'mp4', title: input.title ?? null };
}

/** POST /v3/video-translations: one billable job per output language. */
export function planTranslation(body: unknown, _config?: SimulatorConfig): TranslationPlan {
  const input = parse(translationCreate, body);
  return {
    ...callbackOf(input),
    pricing: priced('translation', body),
    languages: input.output_languages,
    inputLanguage: input.input_language ?? null,
    translateAudioOnly: input.translate_audio_only ?? false,
    title: input.title ?? null,
  };
}

/**
 * Video Agent output length, unless `agentDurationSeconds` fixes it:
 * 15 s plus 0.1 s per prompt character, capped at 180 s (a 200-character prompt gives 35 s).
 */
export function agentDurationMs(prompt: string, config: SimulatorConfig): number {
  if (config.agentDurationSeconds !== null) return secondsToMs(config.agentDurationSeconds);
  return Math.min(180_000, 15_000 + prompt.length * 100);
}

/** POST /v3/video-agents. */
export function planAgent(body: unknown, _config?: SimulatorConfig): AgentPlan {
  const input = parse(agentCreate, body);
  return { ...callbackOf(input), prompt: input.prompt, pricing: priced('agent', body) };
}

/** POST /v3/webhooks/endpoints. */
export function parseWebhookEndpoint(body: unknown): WebhookEndpointInput {
  const input = parse(webhookEndpointCreate, body);
  return { url: input.url, events: input.events ?? null };
}

const urlOrAsset = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('url'), url: z.string().min(1) }),
  z.looseObject({ type: z.literal('asset_id'), asset_id: z.string().min(1) }),
]);

const lipsyncCreate = z.looseObject({
  ...callbackFields,
  video: urlOrAsset,
  audio: urlOrAsset,
  mode: z.enum(['speed', 'precision']).nullish(),
  start_time: z.number().min(0).nullish(),
  end_time: z.number().positive().nullish(),
});

const speechCreate = z.looseObject({
  text: z.string().min(1, 'text must be 1-5000 characters').max(5000, 'text must be 1-5000 characters'),
  voice_id: z.string().min(1),
  input_type: z.enum(['text', 'ssml']).nullish(),
  speed: z.number().min(0.5).max(2).nullish(),
  language: z.string().nullish(),
  locale: z.string().nullish(),
});

const proofreadCreate = z.looseObject({
  video: urlOrAsset,
  output_languages: z.array(z.string().min(1)).min(1, 'output_languages must not be empty'),
  mode: z.enum(['speed', 'precision']).nullish(),
  title: z.string().min(1),
});

const avatarCreate = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('photo'), name: z.string().min(1), file: assetInput, avatar_group_id: z.string().nullish() }),
  z.looseObject({ type: z.literal('digital_twin'), name: z.string().min(1), file: assetInput, avatar_group_id: z.string().nullish() }),
  z.looseObject({ type: z.literal('prompt'), name: z.string().min(1), prompt: z.string().min(1) }),
]);

export interface LipsyncPlan extends Callback {
  pricing: RequestPlan;
  title: string | null;
}

/** POST /v3/lipsyncs. */
export function planLipsync(body: unknown, _config?: SimulatorConfig): LipsyncPlan {
  const input = parse(lipsyncCreate, body);
  return { ...callbackOf(input), pricing: priced('lipsync', body), title: input.title ?? null };
}

/** POST /v3/voices/speech (synchronous). */
export function planSpeech(body: unknown, _config?: SimulatorConfig): { pricing: RequestPlan; text: string } {
  const input = parse(speechCreate, body);
  return { pricing: priced('speech', body), text: input.text };
}

/** POST /v3/video-translations/proofreads: one session per output language. */
export function planProofread(body: unknown, _config?: SimulatorConfig): { pricing: RequestPlan; languages: string[]; title: string } {
  const input = parse(proofreadCreate, body);
  return { pricing: priced('proofread', body), languages: input.output_languages, title: input.title };
}

/** POST /v3/avatars. */
export function planAvatarCreation(body: unknown, _config?: SimulatorConfig): { pricing: RequestPlan; type: 'photo' | 'digital_twin' | 'prompt'; name: string } {
  const input = parse(avatarCreate, body);
  return { pricing: priced('avatar', body), type: input.type, name: input.name };
}

export type BatchEndpoint = 'video_batch' | 'translation_batch' | 'lipsync_batch';
export const BATCH_KEYS = { video_batch: 'videos', translation_batch: 'video_translations', lipsync_batch: 'lipsyncs' } as const;

const batchCreate = (key: string) =>
  z.looseObject({
    callback_url: httpUrl.nullish(),
    title: z.string().nullish(),
    [key]: z.array(z.unknown()).min(1, `${key} must hold 1 to 100 payloads`).max(100, `${key} must hold 1 to 100 payloads`),
  });

/** A batch create: the envelope is validated whole; each payload is validated on its own later (a bad one fails alone). */
export function planBatchEnvelope(endpoint: BatchEndpoint, body: unknown): { payloads: unknown[]; callbackUrl: string | null; title: string | null } {
  const key = BATCH_KEYS[endpoint];
  const input = parse(batchCreate(key), body) as { callback_url?: string | null; title?: string | null } & Record<string, unknown>;
  return { payloads: input[key] as unknown[], callbackUrl: input.callback_url ?? null, title: input.title ?? null };
}

import { z } from 'zod';
import type { RateProduct, SimulatorConfig } from './config.js';
import { validationError } from './errors.js';

/**
 * Validation of the v3 create bodies, and the deterministic output length each one will have.
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
  product: RateProduct;
  durationMs: number;
  outputFormat: 'mp4' | 'webm';
  title: string | null;
}

export interface TranslationPlan extends Callback {
  product: RateProduct;
  durationMs: number;
  languages: string[];
  inputLanguage: string | null;
  translateAudioOnly: boolean;
  title: string | null;
}

export interface AgentPlan extends Callback {
  durationMs: number;
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

function countWords(text: string): number {
  return text.split(/\s+/).filter((word) => word.length > 0).length;
}

/** Spoken length of a script at `wordsPerMinute`, never below `minVideoSeconds`. */
export function speechMs(script: string, config: SimulatorConfig): number {
  const ms = Math.round((countWords(script) * 60_000) / config.wordsPerMinute);
  return Math.max(secondsToMs(config.minVideoSeconds), ms);
}

type SpeechFields = { script?: string | null; audio_url?: string | null; audio_asset_id?: string | null };

function spokenMs(input: SpeechFields, config: SimulatorConfig, prefix: string): number {
  const hasScript = typeof input.script === 'string' && input.script.trim().length > 0;
  const hasAudio = Boolean(input.audio_url) || Boolean(input.audio_asset_id);
  if (hasScript && hasAudio) throw validationError(`${prefix}audio_url`, 'script and audio are mutually exclusive');
  if (hasAudio) return secondsToMs(config.audioDurationSeconds);
  if (!hasScript || input.script == null) {
    throw validationError(`${prefix}script`, 'Provide a script, audio_url or audio_asset_id');
  }
  return speechMs(input.script, config);
}

function engineOf(engine: z.infer<typeof engineInput>): Engine {
  if (engine == null) return 'avatar_iv';
  return typeof engine === 'string' ? engine : engine.type;
}

function sceneMs(s: z.infer<typeof scene>, index: number, config: SimulatorConfig): number {
  const prefix = `scenes.${index}.`;
  switch (s.type) {
    case 'avatar_video':
      return spokenMs(s.input, config, `${prefix}input.`);
    case 'image':
      if (s.duration != null) {
        if (s.script || s.audio_url || s.audio_asset_id) {
          throw validationError(`${prefix}duration`, 'duration is mutually exclusive with script and audio');
        }
        return secondsToMs(s.duration);
      }
      return spokenMs(s, config, prefix);
    case 'video':
      return secondsToMs(config.videoClipSeconds);
  }
}

/** POST /v3/videos: avatar, image, cinematic_avatar, or a studio video of scenes[]. */
export function planVideo(body: unknown, config: SimulatorConfig): VideoPlan {
  const raw = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const type = raw['type'];
  if (type === 'avatar' || type === 'image') {
    const input = type === 'avatar' ? parse(avatarVideo, body) : parse(imageVideo, body);
    const engine = engineOf(input.engine);
    return {
      ...callbackOf(input),
      product: type === 'image' && engine === 'avatar_iv' ? 'image' : engine,
      durationMs: spokenMs(input, config, ''),
      outputFormat: input.output_format ?? 'mp4',
      title: input.title ?? null,
    };
  }
  if (type === 'cinematic_avatar') {
    const input = parse(cinematicVideo, body);
    if (input.auto_duration && input.duration != null) {
      throw validationError('duration', 'Omit duration when auto_duration is true');
    }
    return {
      ...callbackOf(input),
      product: 'cinematic_avatar',
      durationMs: secondsToMs(input.duration ?? config.cinematicDefaultSeconds),
      outputFormat: 'mp4',
      title: input.title ?? null,
    };
  }
  if (type === 'studio' || (type === undefined && 'scenes' in raw)) {
    const input = parse(studioVideo, body);
    return {
      ...callbackOf(input),
      product: 'studio',
      durationMs: input.scenes.reduce((total, s, i) => total + sceneMs(s, i, config), 0),
      outputFormat: input.output_format ?? 'mp4',
      title: input.title ?? null,
    };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw validationError(null, 'Request body must be a JSON object');
  }
  throw validationError('type', 'type must be one of avatar, image, cinematic_avatar, studio (with scenes)');
}

/** POST /v3/templates/{template_id}. */
export function planTemplate(body: unknown, config: SimulatorConfig): VideoPlan {
  const input = parse(templateGenerate, body);
  return {
    ...callbackOf(input),
    product: 'template',
    durationMs: secondsToMs(config.templateDurationSeconds),
    outputFormat: 'mp4',
    title: input.title ?? null,
  };
}

/** POST /v3/video-translations: one billable job per output language. */
export function planTranslation(body: unknown, config: SimulatorConfig): TranslationPlan {
  const input = parse(translationCreate, body);
  const start = input.start_time ?? 0;
  const end = input.end_time ?? config.translationSourceSeconds;
  if (end <= start) throw validationError('end_time', 'end_time must be greater than start_time');
  return {
    ...callbackOf(input),
    product: input.mode === 'precision' ? 'translation_precision' : 'translation_speed',
    durationMs: secondsToMs(end) - secondsToMs(start),
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
export function planAgent(body: unknown, config: SimulatorConfig): AgentPlan {
  const input = parse(agentCreate, body);
  return { ...callbackOf(input), prompt: input.prompt, durationMs: agentDurationMs(input.prompt, config) };
}

/** POST /v3/webhooks/endpoints. */
export function parseWebhookEndpoint(body: unknown): WebhookEndpointInput {
  const input = parse(webhookEndpointCreate, body);
  return { url: input.url, events: input.events ?? null };
}

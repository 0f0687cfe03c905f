// fast-check generators of HeyGen v3 create bodies, built field by field from the v3 request schemas
// (POST /v3/videos variants avatar / image / cinematic_avatar / studio with every scene type,
// POST /v3/templates/{id}, POST /v3/video-translations, POST /v3/video-agents), with optional fields
// present or not, and adversarial mixes: fields of one variant put on another (script next to scenes,
// engine on a cinematic or studio video, audio next to a script), out-of-range values and wrong types.
import fc from 'fast-check';
import type { JobKind } from '../../src/db/schema.js';

export interface MediaUrls {
  /** Audio files (WAV, MP3, M4A/MP4) of various lengths, some past HeyGen's 600 s audio limit. */
  audio: string[];
  /** Video files (MP4) of various lengths. */
  video: string[];
  /** URLs that cannot be measured: missing, not media, too large to read within the byte budget. */
  broken: string[];
  /** Small inline MP4s, base64. */
  inline: string[];
}

export interface GeneratedBody {
  kind: JobKind;
  body: Record<string, unknown>;
  estimatedSeconds: string | null;
}

const ENGINES = ['avatar_v', 'avatar_iv', 'avatar_iii'] as const;
const words = (max: number) => fc.integer({ min: 0, max }).map((n) => Array.from({ length: n }, () => 'w').join(' '));
const scriptArb = fc.oneof({ weight: 8, arbitrary: words(1200) }, { weight: 1, arbitrary: fc.constantFrom('', '   ', 'Hello.') });
const engineArb = fc.oneof(fc.constantFrom(...ENGINES), fc.record({ type: fc.constantFrom(...ENGINES) }));
const resolutionArb = fc.constantFrom('720p', '1080p', '4k');
const idArb = fc.stringMatching(/^[a-z0-9_]{1,12}$/);

function assetArb(urls: string[], inline: string[]) {
  return fc.oneof(
    { weight: 4, arbitrary: fc.record({ type: fc.constant('url'), url: fc.constantFrom(...urls) }) },
    { weight: 2, arbitrary: fc.record({ type: fc.constant('asset_id'), asset_id: idArb }) },
    { weight: 1, arbitrary: fc.record({ type: fc.constant('base64'), data: fc.constantFrom(...inline), media_type: fc.constant('video/mp4') }) },
  );
}

/** script / audio_url / audio_asset_id, each present or not (so sometimes none, sometimes several). */
function speechArb(media: MediaUrls) {
  const audioUrl = fc.constantFrom(...media.audio, ...media.broken);
  return fc.oneof(
    { weight: 5, arbitrary: fc.record({ script: scriptArb }) },
    { weight: 3, arbitrary: fc.record({ audio_url: audioUrl }) },
    { weight: 1, arbitrary: fc.record({ audio_asset_id: idArb }) },
    { weight: 1, arbitrary: fc.record({ script: scriptArb, audio_url: audioUrl, audio_asset_id: idArb }, { requiredKeys: [] }) },
  );
}

/** Fields of other variants, added now and then to any video body. */
function strayArb(media: MediaUrls) {
  return fc.record(
    {
      engine: engineArb,
      script: scriptArb,
      scenes: fc.array(fc.record({ script: scriptArb }), { minLength: 1, maxLength: 2 }),
      duration: fc.integer({ min: -2, max: 30 }),
      audio_url: fc.constantFrom(...media.audio),
    },
    { requiredKeys: [] },
  );
}

function sceneArb(media: MediaUrls) {
  const image = fc.record({ type: fc.constant('url'), url: fc.constant('https://images.example/i.png') });
  const avatarInput = fc
    .tuple(fc.record({ type: fc.constant('avatar'), avatar_id: idArb, engine: engineArb }, { requiredKeys: ['type', 'avatar_id'] }), speechArb(media))
    .map(([a, s]) => ({ ...a, ...s }));
  const imageInput = fc.tuple(fc.record({ type: fc.constant('image'), image }), speechArb(media)).map(([a, s]) => ({ ...a, ...s }));
  return fc.oneof(
    fc.record({ type: fc.constant('avatar_video'), input: fc.oneof(avatarInput, imageInput) }),
    fc.oneof(
      fc.record({ type: fc.constant('image'), source: image, duration: fc.oneof(fc.integer({ min: 1, max: 300 }), fc.double({ min: 0.001, max: 300, noNaN: true })) }),
      fc.tuple(fc.record({ type: fc.constant('image'), source: image }), speechArb(media)).map(([a, s]) => ({ ...a, ...s })),
    ),
    fc.record({ type: fc.constant('video'), source: assetArb(media.video, media.inline) }),
  );
}

export function v3BodyArb(media: MediaUrls): fc.Arbitrary<GeneratedBody> {
  const withStray = <T extends Record<string, unknown>>(arb: fc.Arbitrary<T>) =>
    fc
      .tuple(arb, fc.oneof({ weight: 4, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: strayArb(media) }))
      .map(([b, stray]) => ({ ...(stray ?? {}), ...b }));
  const avatar = withStray(
    fc
      .tuple(
        fc.record(
          { type: fc.constant('avatar'), avatar_id: idArb, voice_id: idArb, engine: engineArb, resolution: resolutionArb, output_format: fc.constantFrom('mp4', 'webm') },
          { requiredKeys: ['type', 'avatar_id'] },
        ),
        speechArb(media),
      )
      .map(([a, s]) => ({ ...a, ...s })),
  );
  const image = withStray(
    fc
      .tuple(
        fc.record({ type: fc.constant('image'), image: fc.record({ type: fc.constant('url'), url: fc.constant('https://images.example/p.png') }), engine: engineArb, resolution: resolutionArb }, {
          requiredKeys: ['type', 'image'],
        }),
        speechArb(media),
      )
      .map(([a, s]) => ({ ...a, ...s })),
  );
  const cinematic = withStray(
    fc.record(
      {
        type: fc.constant('cinematic_avatar'),
        avatar_id: fc.array(idArb, { minLength: 1, maxLength: 3 }),
        prompt: fc.string({ minLength: 1, maxLength: 40 }),
        duration: fc.integer({ min: 2, max: 17 }),
        auto_duration: fc.boolean(),
        resolution: fc.constantFrom('720p', '1080p', '4k'),
      },
      { requiredKeys: ['type', 'avatar_id', 'prompt'] },
    ),
  );
  const studio = withStray(
    fc.record(
      { type: fc.constant('studio'), scenes: fc.array(sceneArb(media), { minLength: 1, maxLength: 5 }), resolution: resolutionArb },
      { requiredKeys: ['scenes'] },
    ),
  );
  const video = fc.oneof(avatar, image, cinematic, studio).map((body) => ({ kind: 'AVATAR_VIDEO' as const, body }));
  const template = fc
    .record({ template_id: idArb, variables: fc.dictionary(idArb, fc.record({ type: fc.constant('text'), text: fc.string({ maxLength: 20 }) }), { maxKeys: 3 }) })
    .map((body) => ({ kind: 'TEMPLATE_VIDEO' as const, body }));
  const translation = fc
    .record(
      {
        video: fc.oneof(
          { weight: 4, arbitrary: fc.record({ type: fc.constant('url'), url: fc.constantFrom(...media.video, ...media.broken) }) },
          { weight: 1, arbitrary: fc.record({ type: fc.constant('asset_id'), asset_id: idArb }) },
        ),
        output_languages: fc.array(fc.constantFrom('French', 'German', 'Japanese', 'Spanish (Spain)', 'English'), { minLength: 1, maxLength: 10 }),
        mode: fc.constantFrom('speed', 'precision'),
        translate_audio_only: fc.boolean(),
        start_time: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.double({ min: 0, max: 40, noNaN: true })),
        end_time: fc.oneof(fc.integer({ min: 1, max: 400 }), fc.double({ min: 0.5, max: 400, noNaN: true })),
      },
      { requiredKeys: ['video', 'output_languages'] },
    )
    .map((body) => ({ kind: 'VIDEO_TRANSLATION' as const, body }));
  const agent = fc
    .record({ prompt: fc.string({ minLength: 1, maxLength: 300 }), mode: fc.constantFrom('generate', 'chat') }, { requiredKeys: ['prompt'] })
    .map((body) => ({ kind: 'VIDEO_AGENT' as const, body }));
  return fc
    .tuple(
      fc.oneof({ weight: 5, arbitrary: video }, { weight: 1, arbitrary: template }, { weight: 3, arbitrary: translation }, { weight: 1, arbitrary: agent }),
      fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 2, arbitrary: fc.constantFrom('1', '0.5', '12', '95.25') }),
    )
    .map(([b, estimatedSeconds]) => ({ ...b, body: b.body as Record<string, unknown>, estimatedSeconds }));
}

/** The HeyGen path and body the gateway forwards a job to (templates: the id moves into the path). */
export function upstreamCall(kind: JobKind, body: Record<string, unknown>): { path: string; body: Record<string, unknown> } {
  switch (kind) {
    case 'AVATAR_VIDEO':
      return { path: '/v3/videos', body };
    case 'TEMPLATE_VIDEO': {
      const { template_id, ...rest } = body;
      return { path: `/v3/templates/${encodeURIComponent(String(template_id))}`, body: rest };
    }
    case 'VIDEO_TRANSLATION':
      return { path: '/v3/video-translations', body };
    case 'VIDEO_AGENT':
      return { path: '/v3/video-agents', body };
    case 'LIPSYNC':
      return { path: '/v3/lipsyncs', body };
    case 'TTS':
      return { path: '/v3/voices/speech', body };
    case 'TRANSLATION_PROOFREAD':
      return { path: '/v3/video-translations/proofreads', body };
    case 'AVATAR_CREATION':
      return { path: '/v3/avatars', body };
    case 'VIDEO_BATCH':
      return { path: '/v3/videos/batches', body };
    case 'VIDEO_TRANSLATION_BATCH':
      return { path: '/v3/video-translations/batches', body };
    case 'LIPSYNC_BATCH':
      return { path: '/v3/lipsyncs/batches', body };
  }
}

// The simulator's catalog: what HeyGen's free v3 reads (avatars, looks, voices, templates, brand kits, brand
// glossaries, translation languages, agent styles) answer, with fixed data in HeyGen's shapes. Pages are
// `limit` items (default 20) with an opaque `token`, as HeyGen's lists.
import { ApiError, notFound, validationError } from './errors.js';

const CREATED = 1_767_225_600; // 2026-01-01T00:00:00Z

export function avatarGroups(base: string) {
  return [
    { id: 'grp_anna', name: 'Anna', gender: 'female', looks: ['anna_office', 'anna_casual'] },
    { id: 'grp_ben', name: 'Ben', gender: 'male', looks: ['ben_studio'] },
  ].map((g) => ({
    id: g.id,
    name: g.name,
    gender: g.gender,
    created_at: CREATED,
    looks_count: g.looks.length,
    default_voice_id: g.gender === 'female' ? 'voice_en_f_1' : 'voice_en_m_1',
    preview_image_url: `${base}/_sim/media/${g.id}.jpg`,
    preview_video_url: `${base}/_sim/media/${g.id}.mp4`,
    consent_status: null,
    status: null,
    error: null,
  }));
}

export function avatarLooks(base: string) {
  return [
    { id: 'anna_office', group_id: 'grp_anna', name: 'Anna (office)', gender: 'female' },
    { id: 'anna_casual', group_id: 'grp_anna', name: 'Anna (casual)', gender: 'female' },
    { id: 'ben_studio', group_id: 'grp_ben', name: 'Ben (studio)', gender: 'male' },
  ].map((l) => ({
    id: l.id,
    name: l.name,
    group_id: l.group_id,
    avatar_type: 'studio_avatar',
    gender: l.gender,
    default_voice_id: l.gender === 'female' ? 'voice_en_f_1' : 'voice_en_m_1',
    image_width: 1920,
    image_height: 1080,
    preferred_orientation: 'landscape',
    preview_image_url: `${base}/_sim/media/${l.id}.jpg`,
    preview_video_url: `${base}/_sim/media/${l.id}.mp4`,
    supported_api_engines: ['avatar_iv', 'avatar_iii'],
    tags: ['professional'],
    status: null,
    error: null,
  }));
}

export function voices(base: string) {
  return [
    { voice_id: 'voice_en_f_1', name: 'Emma', gender: 'female', language: 'English' },
    { voice_id: 'voice_en_m_1', name: 'Noah', gender: 'male', language: 'English' },
    { voice_id: 'voice_es_f_1', name: 'Lucía', gender: 'female', language: 'Spanish' },
  ].map((v) => ({
    ...v,
    type: 'public',
    preview_audio_url: `${base}/_sim/media/${v.voice_id}.mp3`,
    support_pause: true,
    support_locale: false,
  }));
}

export function templates(base: string) {
  return [
    { id: 'tpl_welcome', name: 'Welcome', aspect_ratio: '16:9' },
    { id: 'tpl_promo', name: 'Promo', aspect_ratio: '9:16' },
  ].map((t) => ({ ...t, created_at: CREATED, updated_at: CREATED, thumbnail_url: `${base}/_sim/media/${t.id}.jpg` }));
}

export function templateDetail(base: string, id: string) {
  const t = templates(base).find((x) => x.id === id);
  if (!t) throw notFound('Template');
  return {
    ...t,
    scene_ids: ['scene_1'],
    scenes: [{ scene_id: 'scene_1', script: 'Hello {{name}}', variables: [{ name: 'name', variable_type: 'text' }] }],
    variables: { name: { name: 'name', type: 'text', properties: { content: 'there' } } },
  };
}

export function brandKits(base: string) {
  return [{ brand_kit_id: 'bk_acme', name: 'Acme', colors: ['#FF5733', '#222222'], logo_url: `${base}/_sim/media/bk_acme.png` }];
}

export function brandGlossaries() {
  return [{ brand_glossary_id: 'bg_acme', name: 'Acme terms', created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z' }];
}

export const TRANSLATION_LANGUAGES = ['English', 'Spanish (Spain)', 'French (France)', 'German (Germany)', 'Japanese (Japan)'];

export function agentStyles(base: string) {
  return [{ style_id: 'style_clean', name: 'Clean', thumbnail_url: `${base}/_sim/media/style_clean.jpg`, preview_video_url: null, tags: ['minimal'], aspect_ratio: '16:9' }];
}

/** One page of a list, as HeyGen pages: `limit` (1–100, default 20) and the `token` of the previous page. */
export function page<T>(items: readonly T[], query: URLSearchParams): { data: T[]; has_more: boolean; next_token: string | null } {
  const limitText = query.get('limit');
  const limit = limitText === null ? 20 : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw validationError('limit', 'limit must be an integer from 1 to 100');
  const token = query.get('token');
  const start = token === null ? 0 : Number.parseInt(Buffer.from(token, 'base64url').toString('utf8'), 10);
  if (!Number.isInteger(start) || start < 0) throw new ApiError(400, 'validation_error', 'token is invalid', 'token');
  const data = items.slice(start, start + limit);
  const next = start + limit;
  return { data, has_more: next < items.length, next_token: next < items.length ? Buffer.from(String(next)).toString('base64url') : null };
}

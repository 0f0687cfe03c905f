// The one table of the /v3 front: which v3 create path is which job kind (and how its answer is written from the
// job), which read path finds which job items, and which free catalog reads pass through. A new product is one
// entry here (and its kind in the domain); nothing else in the front knows the kinds.
import type { ItemKind, JobKind } from '../../db/schema.js';
import type { JobRow } from '../../jobs/admission.js';
import type { JobItemRow } from '../../jobs/submit.js';
import { ITEM_DETAIL_PATH, cleanUpstreamBody, type ItemMatch } from '../../jobs/outputs.js';
import { parseBatchItemId } from '../../heygen/client.js';

const unix = (at: Date) => Math.floor(at.getTime() / 1000);
const requestOf = (job: JobRow) => (job.request && typeof job.request === 'object' ? (job.request as Record<string, unknown>) : {});

export interface CreateEntry {
  /** Hono path, e.g. `/v3/templates/:template_id`. */
  path: string;
  kind: JobKind;
  /** The stored request: the body, plus what the path carries (a template's id). */
  request(body: Record<string, unknown>, params: Record<string, string>): Record<string, unknown>;
  /**
   * HeyGen's create answer, written from the job and its items, so that a replayed Idempotency-Key answers the same
   * bytes as the first request (as HeyGen replays its creation-time answer). Null: the items are not complete.
   */
  respond(job: JobRow, items: readonly JobItemRow[]): { data: unknown } | null;
  /** HTTP status of HeyGen's create answer (a batch: 202 Accepted); 200 when absent. */
  status?: 200 | 202;
}

/** The creation-time snapshot of a video object (HeyGen answers one for a template video). */
function videoSnapshot(job: JobRow, videoId: string): Record<string, unknown> {
  const title = requestOf(job).title;
  return {
    id: videoId,
    title: typeof title === 'string' ? title : null,
    status: 'pending',
    created_at: unix(job.submittedAt ?? job.createdAt),
    completed_at: null,
    duration: null,
    video_url: null,
    thumbnail_url: null,
    gif_url: null,
    captioned_video_url: null,
    subtitle_url: null,
    video_page_url: null,
    folder_id: null,
    output_language: null,
    // HeyGen echoes the callback_id it was given: the app's own (never the gateway's job id).
    callback_id: job.callback?.callbackId ?? null,
  };
}

/** Items ordered as the languages were asked (HeyGen answers one id per language, in that order). */
function inLanguageOrder(job: JobRow, items: readonly JobItemRow[]): JobItemRow[] {
  const languages = requestOf(job).output_languages;
  const order = Array.isArray(languages) ? languages : [];
  const rank = (i: JobItemRow) => (i.language === null ? order.length : order.indexOf(i.language));
  return [...items].sort((a, b) => rank(a) - rank(b));
}

/** HeyGen's create answer stored with the item (TTS, avatar creation), as the app may see it. */
function storedAnswer(item: JobItemRow | undefined): { data: unknown } | null {
  return item && item.createAnswer && typeof item.createAnswer === 'object' ? { data: cleanUpstreamBody(item.createAnswer) } : null;
}

/** HeyGen's 202 answer to a batch: its id (from an item's `{batch_id}#{index}`), the item count, its creation time. */
function batchAnswer(job: JobRow, items: readonly JobItemRow[]): { data: unknown } | null {
  const batchId = items[0] ? parseBatchItemId(items[0].upstreamId)?.batchId : undefined;
  if (!batchId) return null;
  return { data: { batch_id: batchId, status: 'processing', total_items: items.length, created_at: unix(job.submittedAt ?? job.createdAt) } };
}

export const CREATES: readonly CreateEntry[] = [
  {
    path: '/v3/videos',
    kind: 'AVATAR_VIDEO',
    request: (body) => body,
    respond: (job, [item]) => {
      if (!item) return null;
      const format = requestOf(job).output_format;
      return { data: { video_id: item.upstreamId, status: 'pending', output_format: typeof format === 'string' ? format : 'mp4' } };
    },
  },
  {
    path: '/v3/templates/:template_id',
    kind: 'TEMPLATE_VIDEO',
    request: (body, params) => ({ ...body, template_id: params.template_id }),
    respond: (job, [item]) => (item ? { data: videoSnapshot(job, item.upstreamId) } : null),
  },
  {
    path: '/v3/video-translations',
    kind: 'VIDEO_TRANSLATION',
    request: (body) => body,
    respond: (job, items) => (items.length === 0 ? null : { data: { video_translation_ids: inLanguageOrder(job, items).map((i) => i.upstreamId) } }),
  },
  {
    path: '/v3/video-translations/proofreads',
    kind: 'TRANSLATION_PROOFREAD',
    request: (body) => body,
    respond: (job, items) => (items.length === 0 ? null : { data: { proofread_ids: inLanguageOrder(job, items).map((i) => i.upstreamId), status: 'processing' } }),
  },
  {
    path: '/v3/lipsyncs',
    kind: 'LIPSYNC',
    request: (body) => body,
    respond: (_job, [item]) => (item ? { data: { lipsync_id: item.upstreamId } } : null),
  },
  // Text to speech is answered complete by HeyGen (the audio URL and its duration): forwarding settles it at once.
  { path: '/v3/voices/speech', kind: 'TTS', request: (body) => body, respond: (_job, [item]) => storedAnswer(item) },
  // The new avatar group and look, as HeyGen answered; they are read back through the job (CATALOG's `owned`).
  { path: '/v3/avatars', kind: 'AVATAR_CREATION', request: (body) => body, respond: (_job, [item]) => storedAnswer(item) },
  { path: '/v3/videos/batches', kind: 'VIDEO_BATCH', request: (body) => body, respond: batchAnswer, status: 202 },
  { path: '/v3/video-translations/batches', kind: 'VIDEO_TRANSLATION_BATCH', request: (body) => body, respond: batchAnswer, status: 202 },
  { path: '/v3/lipsyncs/batches', kind: 'LIPSYNC_BATCH', request: (body) => body, respond: batchAnswer, status: 202 },
  {
    path: '/v3/video-agents',
    kind: 'VIDEO_AGENT',
    request: (body) => body,
    respond: (job, [item]) =>
      item
        ? {
            data: {
              session_id: item.upstreamId,
              status: item.videoId ? 'generating' : 'thinking',
              video_id: item.videoId ?? null,
              created_at: unix(job.submittedAt ?? job.createdAt),
            },
          }
        : null,
  },
];

export interface ReadEntry {
  /** Hono path with one parameter, the upstream id. */
  path: string;
  param: string;
  /** Which job items the id may name (only items of jobs the caller may read are found). */
  matches: readonly ItemMatch[];
  /** Where HeyGen answers it (with the app's query, for a paged batch read). */
  upstream: (id: string) => string;
  /** Query parameters passed on to HeyGen (a batch's page: `token`, `limit`). */
  query?: readonly string[];
  /** What a missing one is called in the 404 message (HeyGen's words). */
  what: string;
}

/** A video id: an avatar or template video, an agent session's video, or an item of a video batch. */
const VIDEO_MATCHES: readonly ItemMatch[] = [
  { kind: 'video', by: 'upstream' },
  { kind: 'agent_session', by: 'video' },
  { kind: 'batch_video', by: 'video' },
];
const TRANSLATION_MATCHES: readonly ItemMatch[] = [
  { kind: 'translation', by: 'upstream' },
  { kind: 'batch_translation', by: 'video' },
];
const LIPSYNC_MATCHES: readonly ItemMatch[] = [
  { kind: 'lipsync', by: 'upstream' },
  { kind: 'batch_lipsync', by: 'video' },
];
const BATCH_QUERY = ['token', 'limit'] as const;

export const READS: readonly ReadEntry[] = [
  {
    path: '/v3/videos/:video_id',
    param: 'video_id',
    matches: VIDEO_MATCHES,
    upstream: ITEM_DETAIL_PATH.video,
    what: 'Video',
  },
  {
    path: '/v3/video-translations/:video_translation_id',
    param: 'video_translation_id',
    matches: TRANSLATION_MATCHES,
    upstream: ITEM_DETAIL_PATH.translation,
    what: 'Video translation',
  },
  {
    path: '/v3/video-translations/proofreads/:proofread_id',
    param: 'proofread_id',
    matches: [{ kind: 'proofread', by: 'upstream' }],
    upstream: ITEM_DETAIL_PATH.proofread,
    what: 'Proofread',
  },
  { path: '/v3/lipsyncs/:lipsync_id', param: 'lipsync_id', matches: LIPSYNC_MATCHES, upstream: ITEM_DETAIL_PATH.lipsync, what: 'Lipsync' },
  {
    path: '/v3/videos/batches/:batch_id',
    param: 'batch_id',
    matches: [{ kind: 'batch_video', by: 'batch' }],
    upstream: (id) => `/v3/videos/batches/${encodeURIComponent(id)}`,
    query: BATCH_QUERY,
    what: 'Batch',
  },
  {
    path: '/v3/video-translations/batches/:batch_id',
    param: 'batch_id',
    matches: [{ kind: 'batch_translation', by: 'batch' }],
    upstream: (id) => `/v3/video-translations/batches/${encodeURIComponent(id)}`,
    query: BATCH_QUERY,
    what: 'Batch',
  },
  {
    path: '/v3/lipsyncs/batches/:batch_id',
    param: 'batch_id',
    matches: [{ kind: 'batch_lipsync', by: 'batch' }],
    upstream: (id) => `/v3/lipsyncs/batches/${encodeURIComponent(id)}`,
    query: BATCH_QUERY,
    what: 'Batch',
  },
  {
    path: '/v3/video-agents/:session_id',
    param: 'session_id',
    matches: [{ kind: 'agent_session', by: 'upstream' }],
    upstream: ITEM_DETAIL_PATH.agent_session,
    what: 'Video agent session',
  },
];

export interface StatusesEntry {
  path: string;
  /** The query parameter with the comma-separated ids. */
  param: string;
  matches: readonly ItemMatch[];
  /** Which batch items a `batch_ids` entry names (HeyGen expands a batch id to its items). */
  batchMatches: readonly ItemMatch[];
  upstream: string;
}

export const STATUSES: readonly StatusesEntry[] = [
  {
    path: '/v3/videos/statuses',
    param: 'video_ids',
    matches: VIDEO_MATCHES,
    batchMatches: [{ kind: 'batch_video', by: 'batch' }],
    upstream: '/v3/videos/statuses',
  },
  {
    path: '/v3/video-translations/statuses',
    param: 'video_translation_ids',
    matches: TRANSLATION_MATCHES,
    batchMatches: [{ kind: 'batch_translation', by: 'batch' }],
    upstream: '/v3/video-translations/statuses',
  },
  {
    path: '/v3/lipsyncs/statuses',
    param: 'lipsync_ids',
    matches: LIPSYNC_MATCHES,
    batchMatches: [{ kind: 'batch_lipsync', by: 'batch' }],
    upstream: '/v3/lipsyncs/statuses',
  },
];

export interface ListEntry {
  path: string;
  /** Items listed: of these kinds. */
  kinds: readonly ItemKind[];
  /**
   * Items of these kinds are listed only once they have a video id (a video list shows an agent session as its
   * video; a batch item is listed once HeyGen created it).
   */
  withVideoOnly?: readonly ItemKind[];
  /** The id the app knows the item by, and where HeyGen answers its detail; null: not listed (yet). */
  detail: (item: JobItemRow) => { id: string; path: string } | null;
}

/** The id an app knows an item by: its upstream id, or (an agent session's video, a batch item) its video id. */
function ownId(i: JobItemRow, path: (id: string) => string): { id: string; path: string } | null {
  const id = i.kind === 'agent_session' || i.kind.startsWith('batch_') ? i.videoId : i.upstreamId;
  return id ? { id, path: path(id) } : null;
}

export const LISTS: readonly ListEntry[] = [
  {
    path: '/v3/videos',
    kinds: ['video', 'agent_session', 'batch_video'],
    withVideoOnly: ['agent_session', 'batch_video'],
    detail: (i) => ownId(i, ITEM_DETAIL_PATH.video),
  },
  {
    path: '/v3/video-translations',
    kinds: ['translation', 'batch_translation'],
    withVideoOnly: ['batch_translation'],
    detail: (i) => ownId(i, ITEM_DETAIL_PATH.translation),
  },
  { path: '/v3/lipsyncs', kinds: ['lipsync', 'batch_lipsync'], withVideoOnly: ['batch_lipsync'], detail: (i) => ownId(i, ITEM_DETAIL_PATH.lipsync) },
  { path: '/v3/video-agents', kinds: ['agent_session'], detail: (i) => ({ id: i.upstreamId, path: ITEM_DETAIL_PATH.agent_session(i.upstreamId) }) },
];

/** An avatar group: created by an AVATAR_CREATION job (its group item, or the group of its new look). */
const AVATAR_GROUP_MATCHES: readonly ItemMatch[] = [
  { kind: 'avatar_group', by: 'upstream' },
  { kind: 'avatar_look', by: 'group' },
];
const AVATAR_LOOK_MATCHES: readonly ItemMatch[] = [{ kind: 'avatar_look', by: 'upstream' }];

export interface CatalogEntry {
  /** Path template, e.g. `/v3/avatars/{group_id}`. */
  path: string;
  /**
   * An object a job may have created (an avatar). An id that names an item of any job is no catalog id: it is read
   * through the job, fresh, only by callers who may read that job (others: the same 404 as an unknown id).
   */
  owned?: { param: string; matches: readonly ItemMatch[]; what: string };
  /** A list whose entries (by `id`) may be objects jobs created: those of jobs the caller may not read are left out. */
  listed?: readonly ItemMatch[];
}

/**
 * Reads that cost nothing: passed to HeyGen with the account's key, cached briefly, unless they name (or list)
 * what a job created (`owned`, `listed`). Specific paths come before parameterised ones (`/v3/avatars/looks` before
 * `/v3/avatars/{group_id}`).
 */
export const CATALOG: readonly CatalogEntry[] = [
  { path: '/v3/avatars', listed: AVATAR_GROUP_MATCHES },
  { path: '/v3/avatars/looks', listed: AVATAR_LOOK_MATCHES },
  { path: '/v3/avatars/looks/{look_id}', owned: { param: 'look_id', matches: AVATAR_LOOK_MATCHES, what: 'Avatar look' } },
  { path: '/v3/avatars/{group_id}', owned: { param: 'group_id', matches: AVATAR_GROUP_MATCHES, what: 'Avatar group' } },
  { path: '/v3/voices' },
  { path: '/v3/voices/{voice_id}' },
  { path: '/v3/templates' },
  { path: '/v3/templates/{template_id}' },
  { path: '/v3/brand-kits' },
  { path: '/v3/brand-glossaries' },
  { path: '/v3/video-translations/languages' },
  { path: '/v3/video-agents/styles' },
];

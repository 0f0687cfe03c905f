// The one table of the /v3 front: which v3 create path is which job kind (and how its answer is written from the
// job), which read path finds which job items, and which free catalog reads pass through. A new product is one
// entry here (and its kind in the domain); nothing else in the front knows the kinds.
import type { ItemKind, JobKind } from '../../db/schema.js';
import type { JobRow } from '../../jobs/admission.js';
import type { JobItemRow } from '../../jobs/submit.js';
import { ITEM_DETAIL_PATH, type ItemMatch } from '../../jobs/outputs.js';

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
  respond(job: JobRow, items: readonly JobItemRow[]): { data: Record<string, unknown> } | null;
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
    callback_id: null,
  };
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
    respond: (job, items) => {
      if (items.length === 0) return null;
      // HeyGen answers one id per language, in the order asked; items are ordered by that language order.
      const languages = requestOf(job).output_languages;
      const order = Array.isArray(languages) ? languages : [];
      const rank = (i: JobItemRow) => (i.language === null ? order.length : order.indexOf(i.language));
      const sorted = [...items].sort((a, b) => rank(a) - rank(b));
      return { data: { video_translation_ids: sorted.map((i) => i.upstreamId) } };
    },
  },
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
  /** Where HeyGen answers it. */
  upstream: (id: string) => string;
  /** What a missing one is called in the 404 message (HeyGen's words). */
  what: string;
}

export const READS: readonly ReadEntry[] = [
  {
    path: '/v3/videos/:video_id',
    param: 'video_id',
    matches: [
      { kind: 'video', by: 'upstream' },
      { kind: 'agent_session', by: 'video' },
    ],
    upstream: ITEM_DETAIL_PATH.video,
    what: 'Video',
  },
  {
    path: '/v3/video-translations/:video_translation_id',
    param: 'video_translation_id',
    matches: [{ kind: 'translation', by: 'upstream' }],
    upstream: ITEM_DETAIL_PATH.translation,
    what: 'Video translation',
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
  upstream: string;
}

export const STATUSES: readonly StatusesEntry[] = [
  {
    path: '/v3/videos/statuses',
    param: 'video_ids',
    matches: [
      { kind: 'video', by: 'upstream' },
      { kind: 'agent_session', by: 'video' },
    ],
    upstream: '/v3/videos/statuses',
  },
  {
    path: '/v3/video-translations/statuses',
    param: 'video_translation_ids',
    matches: [{ kind: 'translation', by: 'upstream' }],
    upstream: '/v3/video-translations/statuses',
  },
];

export interface ListEntry {
  path: string;
  /** Items listed: of these kinds. */
  kinds: readonly ItemKind[];
  /** Agent sessions are listed only once they have a video (a video list shows a session as its video). */
  sessionsWithVideoOnly?: boolean;
  /** The id the app knows the item by, and where HeyGen answers its detail; null: not listed (yet). */
  detail: (item: JobItemRow) => { id: string; path: string } | null;
}

export const LISTS: readonly ListEntry[] = [
  {
    path: '/v3/videos',
    kinds: ['video', 'agent_session'],
    sessionsWithVideoOnly: true,
    detail: (i) =>
      i.kind === 'video'
        ? { id: i.upstreamId, path: ITEM_DETAIL_PATH.video(i.upstreamId) }
        : i.videoId
          ? { id: i.videoId, path: ITEM_DETAIL_PATH.video(i.videoId) }
          : null,
  },
  { path: '/v3/video-translations', kinds: ['translation'], detail: (i) => ({ id: i.upstreamId, path: ITEM_DETAIL_PATH.translation(i.upstreamId) }) },
  { path: '/v3/video-agents', kinds: ['agent_session'], detail: (i) => ({ id: i.upstreamId, path: ITEM_DETAIL_PATH.agent_session(i.upstreamId) }) },
];

/**
 * Reads that cost nothing and name no job: passed to HeyGen with the account's key, cached briefly. Specific
 * paths come before parameterised ones (`/v3/avatars/looks` before `/v3/avatars/{group_id}`).
 */
export const CATALOG: readonly string[] = [
  '/v3/avatars',
  '/v3/avatars/looks',
  '/v3/avatars/looks/{look_id}',
  '/v3/avatars/{group_id}',
  '/v3/voices',
  '/v3/voices/{voice_id}',
  '/v3/templates',
  '/v3/templates/{template_id}',
  '/v3/brand-kits',
  '/v3/brand-glossaries',
  '/v3/video-translations/languages',
  '/v3/video-agents/styles',
];

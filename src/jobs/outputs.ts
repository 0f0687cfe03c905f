// What a job produced, read fresh from HeyGen with the account's key: media URLs are presigned and expire, so a
// stored one is never served. One function for both doors: GraphQL `Job.outputs` / `UpstreamItem.output` and the
// /v3 front's reads (which pass HeyGen's detail on, cleaned by `cleanUpstreamBody`).
import { and, eq, inArray, or } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { accountsTable, jobItemsTable, jobsTable, orgUnitsTable, type ItemKind } from '../db/schema.js';
import { connectionOf, type AccountRow } from '../accounts/accounts.js';
import { canReadJobsOf, type Actor } from '../auth/actor.js';
import type { HeygenClient, RawAnswer } from '../heygen/client.js';
import type { SecretBox } from '../secrets/secret-box.js';
import { numberToDecimal } from '../primitives/money.js';
import { UpstreamError, ValidationError } from '../errors.js';
import { HeygenError } from '../heygen/client.js';
import type { JobRow } from './admission.js';
import type { JobItemRow } from './submit.js';

export interface OutputDeps {
  db: Db;
  box: SecretBox;
  heygen: HeygenClient;
}

/** Where HeyGen answers the detail of an upstream item, by item kind (an agent session's video: its video). */
export const ITEM_DETAIL_PATH: Record<ItemKind, (id: string) => string> = {
  video: (id) => `/v3/videos/${encodeURIComponent(id)}`,
  translation: (id) => `/v3/video-translations/${encodeURIComponent(id)}`,
  agent_session: (id) => `/v3/video-agents/${encodeURIComponent(id)}`,
  lipsync: (id) => `/v3/lipsyncs/${encodeURIComponent(id)}`,
  // Text to speech has no read: its item answers from the create answer (readItemOutput).
  speech: (id) => `/v3/voices/speech/${encodeURIComponent(id)}`,
  proofread: (id) => `/v3/video-translations/proofreads/${encodeURIComponent(id)}`,
  avatar_look: (id) => `/v3/avatars/looks/${encodeURIComponent(id)}`,
  avatar_group: (id) => `/v3/avatars/${encodeURIComponent(id)}`,
  // A batch item is read by its own id (video_id) once HeyGen created it, as the kind it is.
  batch_video: (id) => `/v3/videos/${encodeURIComponent(id)}`,
  batch_translation: (id) => `/v3/video-translations/${encodeURIComponent(id)}`,
  batch_lipsync: (id) => `/v3/lipsyncs/${encodeURIComponent(id)}`,
};

const BATCH_ITEM_KINDS: readonly ItemKind[] = ['batch_video', 'batch_translation', 'batch_lipsync'];

/** Fields of HeyGen's answers that carry the gateway's own bookkeeping (its job id as callback_id, its webhook URL). */
const GATEWAY_FIELDS = new Set(['callback_id', 'callback_url']);

/**
 * HeyGen's JSON as an app may see it: the gateway's job id (`callback_id`) and callback URL are blanked (null) at
 * every depth, so the shape stays HeyGen's. The client has already redacted the account's key and every
 * registered secret from the text.
 */
export function cleanUpstreamBody(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(cleanUpstreamBody);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = GATEWAY_FIELDS.has(k) ? null : cleanUpstreamBody(v);
    return out;
  }
  return value;
}

/** One output of a job as GraphQL shows it, read from HeyGen's answer. */
export interface ItemOutput {
  upstreamId: string;
  status: string;
  videoUrl: string | null;
  thumbnailUrl: string | null;
  /** Captions: HeyGen's subtitle / SRT caption file, else its VTT caption file. */
  captionUrl: string | null;
  /** Translated audio (translations). */
  audioUrl: string | null;
  durationSeconds: string | null;
  language: string | null;
  failureMessage: string | null;
}

const str = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);

export function outputOf(upstreamId: string, data: Record<string, unknown>): ItemOutput {
  return {
    upstreamId,
    status: str(data.status) ?? 'unknown',
    videoUrl: str(data.video_url),
    thumbnailUrl: str(data.thumbnail_url),
    captionUrl: str(data.subtitle_url) ?? str(data.srt_caption_url) ?? str(data.vtt_caption_url),
    audioUrl: str(data.audio_url),
    durationSeconds: typeof data.duration === 'number' && Number.isFinite(data.duration) ? numberToDecimal(data.duration) : null,
    language: str(data.output_language),
    failureMessage: str(data.failure_message),
  };
}

/** HeyGen's fresh answer for an item's detail path (`ITEM_DETAIL_PATH`), cleaned for the app. */
export async function readUpstream(deps: OutputDeps, account: AccountRow, pathAndQuery: string): Promise<RawAnswer> {
  const answer = await deps.heygen.getRaw(connectionOf(deps.box, account), pathAndQuery);
  return { status: answer.status, body: cleanUpstreamBody(answer.body) };
}

/**
 * The output of one item, fresh: a video or translation reads its own detail; an agent session reads the video it
 * produced (none yet: only its status). Null when HeyGen does not know the id (any more).
 */
export async function readItemOutput(deps: OutputDeps, account: AccountRow, item: JobItemRow): Promise<ItemOutput | null> {
  const videoOfSession = item.kind === 'agent_session' ? item.videoId : null;
  if (item.kind === 'agent_session' && !videoOfSession) {
    return { ...outputOf(item.upstreamId, {}), status: item.status };
  }
  // Text to speech is answered once, at creation: HeyGen has no read for it, so its answer is all there is.
  if (item.kind === 'speech') {
    const answer = item.createAnswer && typeof item.createAnswer === 'object' ? (item.createAnswer as Record<string, unknown>) : {};
    return { ...outputOf(item.upstreamId, answer), status: item.status };
  }
  // A batch item HeyGen has not created yet has no id to read.
  const batchItem = BATCH_ITEM_KINDS.includes(item.kind);
  if (batchItem && !item.videoId) return { ...outputOf(item.upstreamId, {}), status: item.status };
  const path = videoOfSession
    ? ITEM_DETAIL_PATH.video(videoOfSession)
    : batchItem
      ? ITEM_DETAIL_PATH[item.kind](item.videoId!)
      : ITEM_DETAIL_PATH[item.kind](item.upstreamId);
  let answer: RawAnswer;
  try {
    answer = await readUpstream(deps, account, path);
  } catch (error) {
    // HeyGen away or answering garbage: the caller's retry may succeed; not a fault of the gateway.
    if (error instanceof HeygenError) throw new UpstreamError(error.code, 'HeyGen did not answer for this output; try again later');
    throw error;
  }
  if (answer.status === 404) return null;
  const data = (answer.body as { data?: unknown } | null)?.data;
  if (answer.status !== 200 || !data || typeof data !== 'object') {
    throw new UpstreamError(`http_${answer.status}`, `HeyGen answered HTTP ${answer.status} for this output; try again later`);
  }
  const output = outputOf(item.upstreamId, data as Record<string, unknown>);
  return { ...output, language: output.language ?? item.language };
}

/** Runs at most `limit` tasks at once. */
export function limiter(limit: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (task) => {
    if (active >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    active += 1;
    try {
      return await task();
    } finally {
      active -= 1;
      waiting.shift()?.();
    }
  };
}

/** How far the output reads of one request may fan out (GraphQL: a page of jobs). */
export interface OutputReadLimits {
  /** Distinct items whose output one request may read from HeyGen; more is a ValidationError on `outputs`. */
  maxItemsPerRequest: number;
  /** HeyGen reads in flight at once for one request. */
  concurrency: number;
}

export const DEFAULT_OUTPUT_READ_LIMITS: OutputReadLimits = { maxItemsPerRequest: 50, concurrency: 4 };

/**
 * Reads outputs for one request: each item at most once (repeated fields share the read), at most
 * `maxItemsPerRequest` items, at most `concurrency` HeyGen calls at a time.
 */
export function createOutputReader(deps: OutputDeps, loadAccount: (id: string) => Promise<AccountRow | null>, limits: OutputReadLimits = DEFAULT_OUTPUT_READ_LIMITS) {
  const reads = new Map<string, Promise<ItemOutput | null>>();
  const run = limiter(limits.concurrency);
  return (item: JobItemRow, accountId: string): Promise<ItemOutput | null> => {
    let read = reads.get(item.id);
    if (!read) {
      if (reads.size >= limits.maxItemsPerRequest) {
        return Promise.reject(
          new ValidationError('outputs', `at most ${limits.maxItemsPerRequest} outputs are read from HeyGen per request: ask for outputs on fewer jobs (a smaller page)`),
        );
      }
      read = run(async () => {
        const account = await loadAccount(accountId);
        if (!account) return null;
        return readItemOutput(deps, account, item);
      });
      reads.set(item.id, read);
    }
    return read;
  };
}

// ----- finding a job by the id HeyGen gave the app ----------------------------------------------------------

/** Which items an app's id may name: items of `kind` whose upstream id (or, `by: 'video'`, whose video id) it is. */
export interface ItemMatch {
  kind: ItemKind;
  by: 'upstream' | 'video';
}

export interface VisibleItem {
  item: JobItemRow;
  job: Pick<JobRow, 'id' | 'accountId' | 'projectId' | 'kind' | 'createdAt'>;
}

/**
 * The items an upstream id names among the jobs the caller may read (canReadJobsOf), by id. Ids of other
 * projects' jobs are simply absent, exactly like ids the gateway never saw.
 */
export async function findVisibleItems(db: Db, actor: Actor, ids: readonly string[], matches: readonly ItemMatch[]): Promise<Map<string, VisibleItem>> {
  const found = new Map<string, VisibleItem>();
  if (ids.length === 0 || matches.length === 0) return found;
  const list = [...new Set(ids)];
  const rows = await db
    .select({
      item: jobItemsTable,
      job: { id: jobsTable.id, accountId: jobsTable.accountId, projectId: jobsTable.projectId, kind: jobsTable.kind, createdAt: jobsTable.createdAt },
      projectPath: orgUnitsTable.path,
    })
    .from(jobItemsTable)
    .innerJoin(jobsTable, eq(jobsTable.id, jobItemsTable.jobId))
    .innerJoin(orgUnitsTable, eq(orgUnitsTable.id, jobsTable.projectId))
    .where(
      or(
        ...matches.map((m) =>
          and(eq(jobItemsTable.kind, m.kind), m.by === 'upstream' ? inArray(jobItemsTable.upstreamId, list) : inArray(jobItemsTable.videoId, list)),
        ),
      ),
    );
  for (const row of rows) {
    if (!canReadJobsOf(actor, { id: row.job.projectId, path: row.projectPath })) continue;
    for (const m of matches) {
      const id = m.by === 'upstream' ? row.item.upstreamId : row.item.videoId;
      if (row.item.kind === m.kind && id !== null && list.includes(id) && !found.has(id)) found.set(id, { item: row.item, job: row.job });
    }
  }
  return found;
}

export async function loadAccount(db: Db, id: string): Promise<AccountRow | null> {
  const [row] = await db.select().from(accountsTable).where(eq(accountsTable.id, id));
  return row ?? null;
}

// What a job produced, read fresh from HeyGen with the account's key: media URLs are presigned and expire, so a
// stored one is never served. One function for both doors: GraphQL `Job.outputs` / `UpstreamItem.output` and the
// /v3 front's reads (which pass HeyGen's detail on, cleaned by `cleanUpstreamBody`).
import { and, eq, inArray, isNull, or, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { accountsTable, jobItemsTable, jobsTable, orgUnitsTable, type ItemKind } from '../db/schema.js';
import { connectionOf, type AccountRow } from '../accounts/accounts.js';
import { canReadJobsOf, type Actor } from '../auth/actor.js';
import type { HeygenClient, RawAnswer } from '../heygen/client.js';
import type { SecretBox } from '../secrets/secret-box.js';
import { numberToDecimal } from '../primitives/money.js';
import { UpstreamError, ValidationError } from '../errors.js';
import { batchItemId, HeygenError, parseBatchItemId } from '../heygen/client.js';
import { MAX_BATCH_ITEMS } from '../pricing/model.js';
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

/**
 * HeyGen's cleaned answer for the app whose job it is: where the answer has a `callback_id` field (blanked by
 * `cleanUpstreamBody`), the app's own callback_id (the one it gave at creation), as HeyGen would echo it. The
 * gateway's job id and callback URL stay hidden. Returns a new value; the answer (maybe shared) is not changed.
 */
export function withAppCallbackId(value: unknown, callbackId: string | null | undefined): unknown {
  if (!callbackId) return value;
  if (Array.isArray(value)) return value.map((v) => withAppCallbackId(v, callbackId));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = k === 'callback_id' ? callbackId : withAppCallbackId(v, callbackId);
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

/**
 * Which items an app's id may name: items of `kind` whose upstream id is the id (`upstream`), whose video id is
 * (`video`: an agent session's video, a batch item's own id), whose batch is (`batch`: the `{batch_id}#{index}` items
 * of a batch), or whose avatar group is (`group`: a created look's group, from HeyGen's create answer).
 */
export interface ItemMatch {
  kind: ItemKind;
  by: 'upstream' | 'video' | 'batch' | 'group';
}

export interface VisibleItem {
  item: JobItemRow;
  job: Pick<JobRow, 'id' | 'accountId' | 'projectId' | 'kind' | 'createdAt' | 'callback'>;
}

const groupOfItem = sql<string | null>`coalesce(${jobItemsTable.createAnswer} -> 'avatar_group' ->> 'id', ${jobItemsTable.createAnswer} -> 'avatar_item' ->> 'group_id')`;

function idOf(item: JobItemRow, by: ItemMatch['by']): string | null {
  switch (by) {
    case 'upstream':
      return item.upstreamId;
    case 'video':
      return item.videoId;
    case 'batch':
      return parseBatchItemId(item.upstreamId)?.batchId ?? null;
    case 'group': {
      const answer = item.createAnswer && typeof item.createAnswer === 'object' ? (item.createAnswer as Record<string, { id?: unknown; group_id?: unknown } | null | undefined>) : {};
      const id = answer.avatar_group?.id ?? answer.avatar_item?.group_id;
      return typeof id === 'string' ? id : null;
    }
  }
}

function matchCondition(m: ItemMatch, list: readonly string[]) {
  switch (m.by) {
    case 'upstream':
      return and(eq(jobItemsTable.kind, m.kind), inArray(jobItemsTable.upstreamId, [...list]));
    case 'video':
      return and(eq(jobItemsTable.kind, m.kind), inArray(jobItemsTable.videoId, [...list]));
    case 'group':
      // Written as the partial index job_items_avatar_group is (the kind a literal, so the planner can use it).
      return and(sql`${jobItemsTable.kind} = ${sql.raw(`'${m.kind}'`)}`, sql`${groupOfItem} in (${sql.join(list.map((id) => sql`${id}`), sql`, `)})`);
    case 'batch':
      // A batch's items are `{batch_id}#0` … `{batch_id}#{n-1}` (at most MAX_BATCH_ITEMS): named exactly, so the
      // upstream-id index finds them (no prefix scan; ids may hold LIKE's % or _).
      return and(eq(jobItemsTable.kind, m.kind), inArray(jobItemsTable.upstreamId, list.flatMap((id) => Array.from({ length: MAX_BATCH_ITEMS }, (_, i) => batchItemId(id, i)))));
  }
}

/** What an id search found: the ids the caller may read, and every id that names some job's item at all. */
export interface FoundItems {
  visible: Map<string, VisibleItem>;
  /** Ids that name an item of any job (of any project): not a catalog id, whoever asks. */
  claimed: Set<string>;
}

/**
 * The items ids name, among all jobs: those the caller may read (canReadJobsOf) by id, and which ids name a job's
 * item at all. Callers answer ids of other projects' jobs exactly like ids the gateway never saw.
 */
export async function findItems(db: Db, actor: Actor, ids: readonly string[], matches: readonly ItemMatch[]): Promise<FoundItems> {
  const visible = new Map<string, VisibleItem>();
  const claimed = new Set<string>();
  if (ids.length === 0 || matches.length === 0) return { visible, claimed };
  const list = [...new Set(ids)];
  const rows = await db
    .select({
      item: jobItemsTable,
      job: { id: jobsTable.id, accountId: jobsTable.accountId, projectId: jobsTable.projectId, kind: jobsTable.kind, createdAt: jobsTable.createdAt, callback: jobsTable.callback },
      projectPath: orgUnitsTable.path,
    })
    .from(jobItemsTable)
    .innerJoin(jobsTable, eq(jobsTable.id, jobItemsTable.jobId))
    .innerJoin(orgUnitsTable, eq(orgUnitsTable.id, jobsTable.projectId))
    .where(or(...matches.map((m) => matchCondition(m, list))))
    .orderBy(jobItemsTable.createdAt, jobItemsTable.id);
  for (const row of rows) {
    const readable = canReadJobsOf(actor, { id: row.job.projectId, path: row.projectPath });
    for (const m of matches) {
      const id = row.item.kind === m.kind ? idOf(row.item, m.by) : null;
      if (id === null || !list.includes(id)) continue;
      claimed.add(id);
      if (readable && !visible.has(id)) visible.set(id, { item: row.item, job: row.job });
    }
  }
  return { visible, claimed };
}

/** The items ids name among the jobs the caller may read, by id (findItems' `visible`). */
export async function findVisibleItems(db: Db, actor: Actor, ids: readonly string[], matches: readonly ItemMatch[]): Promise<Map<string, VisibleItem>> {
  return (await findItems(db, actor, ids, matches)).visible;
}

/**
 * Records the own ids HeyGen gave a batch's items (`video_id` by `item_index`), as the app just read them in
 * HeyGen's batch answer: the app may ask for an item by that id at once, before the follower has read the batch.
 * Only an item without an id gets one (the follower writes the same ids); statuses and money stay the follower's.
 */
export async function recordBatchItemIds(db: Db, kind: ItemKind, batchId: string, rows: readonly unknown[]): Promise<void> {
  const pairs = new Map<string, string>();
  for (const row of rows) {
    const { item_index: index, video_id: videoId } = (row ?? {}) as { item_index?: unknown; video_id?: unknown };
    if (Number.isSafeInteger(index) && (index as number) >= 0 && typeof videoId === 'string' && videoId.length > 0) pairs.set(batchItemId(batchId, index as number), videoId);
  }
  for (const [upstreamId, videoId] of pairs) {
    await db
      .update(jobItemsTable)
      .set({ videoId })
      .where(and(eq(jobItemsTable.kind, kind), eq(jobItemsTable.upstreamId, upstreamId), isNull(jobItemsTable.videoId)));
  }
}

export async function loadAccount(db: Db, id: string): Promise<AccountRow | null> {
  const [row] = await db.select().from(accountsTable).where(eq(accountsTable.id, id));
  return row ?? null;
}

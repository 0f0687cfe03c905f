// The app's news of its job's end, in HeyGen's webhook event shape, written to the outbox in the settlement's own
// transaction: one event per output HeyGen made (a translation has one per language, as HeyGen would send), or one
// for the whole job when nothing reached HeyGen (refused, cancelled, expired before submission). Each has a unique
// key, so a settlement that runs again (or races) writes nothing more. The payload carries only this job's own ids,
// its app's callback_id and failure text the gateway already redacted: never a key, never another job's data.
import { eq } from 'drizzle-orm';
import { accountsTable, jobsTable, type AppCallback, type jobItemsTable } from '../db/schema.js';
import { enqueueEvents, type ClaimedEvent, type OutboxEventInput } from '../outbox/outbox.js';
import { APP_CALLBACK_TOPIC, type AppCallbackDestination } from '../outbox/app-callback.js';
import type { Db } from '../db/client.js';
import type { SecretBox } from '../secrets/secret-box.js';
import type { HeygenClient } from '../heygen/client.js';
import type { Logger } from '../logging.js';
import { connectionOf } from '../accounts/accounts.js';

type JobRowShape = Pick<typeof jobsTable.$inferSelect, 'id' | 'kind' | 'status' | 'projectId' | 'failureMessage' | 'callback'>;
type JobItemRowShape = Pick<typeof jobItemsTable.$inferSelect, 'upstreamId' | 'videoId' | 'language' | 'status' | 'durationSeconds' | 'failureMessage'>;

interface Shape {
  prefix: string;
  ids: (item: JobItemRowShape | null) => Record<string, unknown>;
  /** Where HeyGen puts the output URL in a success event. */
  urlField: 'url' | 'video_url';
  /** Where HeyGen puts the reason in a fail event. */
  messageField: 'msg' | 'message';
}

const VIDEO: Shape = { prefix: 'avatar_video', ids: (i) => ({ video_id: i ? (i.videoId ?? i.upstreamId) : null }), urlField: 'url', messageField: 'msg' };
const SHAPES: Readonly<Record<string, Shape>> = {
  AVATAR_VIDEO: VIDEO,
  TEMPLATE_VIDEO: VIDEO,
  VIDEO_TRANSLATION: {
    prefix: 'video_translate',
    ids: (i) => ({ video_translate_id: i?.upstreamId ?? null, output_language: i?.language ?? null }),
    urlField: 'url',
    messageField: 'message',
  },
  VIDEO_AGENT: {
    prefix: 'video_agent',
    ids: (i) => ({ video_id: i?.videoId ?? null, session_id: i?.upstreamId ?? null }),
    urlField: 'video_url',
    messageField: 'message',
  },
};

/** A kind without a HeyGen event of its own (added later) is named after itself, its output as `id`. */
function shapeOf(kind: string): Shape {
  return SHAPES[kind] ?? { prefix: kind.toLowerCase(), ids: (i) => ({ id: i?.upstreamId ?? null }), urlField: 'url', messageField: 'message' };
}

export interface AppEventSettings {
  /** Attempts per app callback before it is given up (CALLBACK_MAX_ATTEMPTS). */
  maxAttempts: number;
}

export const DEFAULT_APP_EVENTS: AppEventSettings = { maxAttempts: 12 };

/** The events of a settled job, for its app's callback; none when the job named no callback. */
export function appCallbackEvents(job: JobRowShape, items: readonly JobItemRowShape[], settings: AppEventSettings, now: Date): OutboxEventInput[] {
  const callback: AppCallback | null = job.callback;
  if (!callback) return [];
  const shape = shapeOf(job.kind);
  const destination: AppCallbackDestination = { url: callback.url, tokenId: callback.tokenId };
  const event = (item: JobItemRowShape | null, dedupeKey: string): OutboxEventInput => {
    const success = item !== null && item.status === 'completed';
    const kind = `${shape.prefix}.${success ? 'success' : 'fail'}`;
    const data: Record<string, unknown> = { ...shape.ids(item), callback_id: callback.callbackId };
    if (success) {
      // HeyGen's output URLs expire: none is stored; each delivery attempt reads a fresh one (withFreshOutputUrl).
      data[shape.urlField] = null;
      data.duration = item.durationSeconds === null ? null : Number(item.durationSeconds);
    } else {
      data[shape.messageField] = item?.failureMessage ?? job.failureMessage ?? (item ? `the output ended ${item.status}` : `the job ended ${job.status}`);
    }
    data.gateway_job_id = job.id;
    data.gateway_status = job.status;
    return {
      topic: APP_CALLBACK_TOPIC,
      kind,
      dedupeKey,
      payload: (eventId) => ({ event_type: kind, event_id: eventId, created_at: now.toISOString(), event_data: data }),
      destination: { ...destination },
      jobId: job.id,
      orgUnitId: job.projectId,
      maxAttempts: settings.maxAttempts,
    };
  };
  if (items.length === 0) return [event(null, `job:${job.id}:end`)];
  return items.map((item) => event(item, `job:${job.id}:output:${item.upstreamId}`));
}

/** Writes the settled job's app callback events in the settlement's transaction. */
export async function enqueueAppCallbackEvents(tx: Db, job: JobRowShape, items: readonly JobItemRowShape[], settings: AppEventSettings, now: Date): Promise<void> {
  await enqueueEvents(tx, appCallbackEvents(job, items, settings, now), now);
}

export interface FreshOutputDeps {
  db: Db;
  box: SecretBox;
  heygen: HeygenClient;
  logger: Logger;
}

/**
 * The body of an app callback as it is sent now: a success event gets its output's download URL read fresh from
 * HeyGen with the account's key (HeyGen's URLs expire, so none is stored; each attempt reads its own). If the read
 * fails the event goes with a null URL rather than waiting for HeyGen: the app can read the output itself.
 */
export async function withFreshOutputUrl(deps: FreshOutputDeps, event: ClaimedEvent): Promise<unknown> {
  const payload = event.payload as { event_type?: unknown; event_data?: Record<string, unknown> } | null;
  const data = payload?.event_data;
  if (!event.jobId || !data || typeof payload?.event_type !== 'string' || !payload.event_type.endsWith('.success')) return event.payload;
  const prefix = payload.event_type.slice(0, -'.success'.length);
  const shape = Object.values(SHAPES).find((s) => s.prefix === prefix);
  if (!shape) return event.payload;
  const translationId = typeof data.video_translate_id === 'string' ? data.video_translate_id : null;
  const videoId = typeof data.video_id === 'string' ? data.video_id : null;
  if (!translationId && !videoId) return event.payload;
  try {
    const [row] = await deps.db
      .select({ account: accountsTable })
      .from(jobsTable)
      .innerJoin(accountsTable, eq(accountsTable.id, jobsTable.accountId))
      .where(eq(jobsTable.id, event.jobId));
    if (!row) return event.payload;
    const conn = connectionOf(deps.box, row.account);
    const state = translationId ? await deps.heygen.getTranslation(conn, translationId) : await deps.heygen.getVideo(conn, videoId!);
    return { ...payload, event_data: { ...data, [shape.urlField]: state.status === 'completed' ? state.outputUrl : null } };
  } catch (error) {
    deps.logger.info({ eventId: event.id, jobId: event.jobId, err: error }, 'could not read a fresh output URL for an app callback; sending it without one');
    return event.payload;
  }
}

// HeyGen v3 answers as the client reads them: only the fields the gateway relies on; unknown fields are ignored.
import { z } from 'zod';
import { AGENT_SESSION_STATUSES, type UpstreamStatus } from './types.js';

const id = z.string().min(1);
const duration = z.number().nonnegative().nullish();

export const v3ErrorSchema = z.object({
  error: z.object({
    code: z.string().min(1),
    message: z.string().nullish(),
    param: z.string().nullish(),
  }),
});

export const videoCreateSchema = z.object({
  data: z
    .object({ video_id: id.nullish(), id: id.nullish() })
    .refine((d) => d.video_id != null || d.id != null, { message: 'video_id or id is required' }),
});

export const translationCreateSchema = z.object({
  data: z.object({
    video_translation_ids: z
      .array(id)
      .min(1)
      .refine((ids) => new Set(ids).size === ids.length, { message: 'duplicate ids' }),
  }),
});

export const agentCreateSchema = z.object({
  data: z.object({ session_id: id, video_id: id.nullish() }),
});

export const videoGetSchema = z.object({
  data: z.object({
    id,
    status: z.enum(['pending', 'processing', 'completed', 'failed']),
    duration,
    failure_code: z.string().nullish(),
    failure_message: z.string().nullish(),
    callback_id: z.string().nullish(),
    // Read only to pass on (it expires); never trusted for money nor stored. Anything but a URL string is ignored.
    video_url: z.unknown().optional(),
  }),
});

export const translationGetSchema = z.object({
  data: z.object({
    id,
    status: z.enum(['pending', 'running', 'completed', 'failed']),
    duration,
    failure_code: z.string().nullish(),
    failure_message: z.string().nullish(),
    callback_id: z.string().nullish(),
    // Read only to pass on (it expires); never trusted for money nor stored. Anything but a URL string is ignored.
    video_url: z.unknown().optional(),
  }),
});

export const bulkStatusesSchema = z.object({
  data: z.array(z.object({ video_id: z.string().nullish(), status: z.string() })),
  has_more: z.boolean().nullish(),
});

export const agentGetSchema = z.object({
  data: z.object({ session_id: id, status: z.enum(AGENT_SESSION_STATUSES), video_id: id.nullish() }),
});

export const userMeSchema = z.object({
  data: z.object({
    billing_type: z.string().nullish(),
    usage_based: z
      .object({
        included_credits: z.number(),
        remaining_credits: z.number(),
        spending_cap_usd: z.number().nullish(),
        spending_current_usd: z.number().nullish(),
      })
      .nullish(),
    wallet: z.object({ currency: z.enum(['usd', 'credits']), remaining_balance: z.number() }).nullish(),
  }),
});

export const webhookEndpointSchema = z.object({
  data: z.object({ endpoint_id: id, secret: id }),
});

export const BULK_STATUS_MAP: Readonly<Record<string, UpstreamStatus>> = {
  queued: 'pending',
  pending: 'pending',
  waiting: 'pending',
  processing: 'processing',
  running: 'processing',
  completed: 'completed',
  failed: 'failed',
  not_found: 'not_found',
};

const uniqueIds = z
  .array(id)
  .min(1)
  .refine((ids) => new Set(ids).size === ids.length, { message: 'duplicate ids' });

export const lipsyncCreateSchema = z.object({ data: z.object({ lipsync_id: id }) });

/** POST /v3/voices/speech answers at once with the audio: the job is complete in this answer. */
export const speechCreateSchema = z.object({
  data: z.object({ audio_url: z.string().min(1), duration: z.number().nonnegative(), request_id: z.string().nullish() }),
});

export const proofreadCreateSchema = z.object({ data: z.object({ proofread_ids: uniqueIds }) });

export const avatarCreateSchema = z.object({
  data: z
    .object({ avatar_item: z.object({ id }).nullish(), avatar_group: z.object({ id }).nullish() })
    .refine((d) => d.avatar_item != null || d.avatar_group != null, { message: 'avatar_item or avatar_group is required' }),
});

/** The batch creates answer 202 with the batch id (the body beyond `data.batch_id` is not documented). */
export const batchCreateSchema = z.object({ data: z.object({ batch_id: id }) });

export const lipsyncGetSchema = z.object({
  data: z.object({
    id,
    status: z.enum(['pending', 'running', 'completed', 'failed']),
    duration,
    failure_message: z.string().nullish(),
    callback_id: z.string().nullish(),
  }),
});

export const proofreadGetSchema = z.object({
  data: z.object({ id, status: z.enum(['processing', 'completed', 'failed']), failure_message: z.string().nullish() }),
});

/** GET /v3/avatars/looks/{id} and GET /v3/avatars/{group_id}: training status (absent for public avatars). */
export const avatarGetSchema = z.object({
  data: z.object({
    id,
    status: z.enum(['processing', 'pending_consent', 'failed', 'completed']).nullish(),
    error: z.object({ code: z.string().nullish(), message: z.string().nullish() }).nullish(),
  }),
});

export const batchGetSchema = z.object({
  data: z.object({
    batch_id: id,
    items: z.array(
      z.object({
        item_index: z.number().int().min(0),
        status: z.enum(['queued', 'processing', 'completed', 'failed']),
        video_id: z.string().nullish(),
        error: z.object({ code: z.string().nullish(), message: z.string().nullish() }).nullish(),
      }),
    ),
    has_more: z.boolean(),
    next_token: z.string().nullish(),
  }),
});

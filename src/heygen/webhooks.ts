// HeyGen webhooks as the gateway receives them: signature check and normalisation. A webhook is only ever a
// hint that a job should be read again; nothing in its body is trusted for money.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { describeIssues, HeygenError } from './errors.js';
import type { HeygenWebhookEvent, WebhookSignatureScheme } from './types.js';

const webhookEventSchema = z.object({
  event_type: z.string().min(1),
  event_id: z.string().nullish(),
  event_data: z
    .object({
      video_id: z.string().nullish(),
      video_translate_id: z.string().nullish(),
      session_id: z.string().nullish(),
      proofread_id: z.string().nullish(),
      avatar_id: z.string().nullish(),
      callback_id: z.string().nullish(),
    })
    .nullish(),
});

/**
 * Checks an HMAC-SHA256 of the raw body keyed with the endpoint secret (used as given, UTF-8),
 * in constant time. Accepts an optional `sha256=` prefix. Header name and encoding are not
 * confirmed by HeyGen, hence the scheme parameter. A webhook stays a hint either way.
 */
export function verifyWebhookSignature(
  rawBody: string | Buffer,
  secret: string,
  headerValue: string | null | undefined,
  scheme: WebhookSignatureScheme = 'hmac-sha256-hex',
): boolean {
  if (typeof secret !== 'string' || secret.length === 0) return false;
  if (typeof headerValue !== 'string') return false;
  let signature = headerValue.trim();
  if (signature.toLowerCase().startsWith('sha256=')) signature = signature.slice('sha256='.length).trim();

  const body = typeof rawBody === 'string' ? Buffer.from(rawBody, 'utf8') : rawBody;
  const expected = createHmac('sha256', secret).update(body).digest();

  let provided: Buffer;
  if (scheme === 'hmac-sha256-hex') {
    if (!/^[0-9a-fA-F]{64}$/.test(signature)) return false;
    provided = Buffer.from(signature, 'hex');
  } else if (scheme === 'hmac-sha256-base64') {
    const standard = signature.replace(/-/g, '+').replace(/_/g, '/');
    if (!/^[A-Za-z0-9+/]{43}=?$/.test(standard)) return false;
    provided = Buffer.from(standard, 'base64');
    // Reject non-canonical spellings (unused low bits set) so one MAC has one encoding.
    if (provided.toString('base64').replace(/=+$/, '') !== standard.replace(/=+$/, '')) return false;
  } else {
    return false;
  }
  if (provided.length !== expected.length) return false;
  return timingSafeEqual(provided, expected);
}

const WEBHOOK_KINDS: Readonly<Record<string, HeygenWebhookEvent['kind']>> = {
  avatar_video: 'video',
  video_translate: 'translation',
  video_agent: 'agent',
};

/** Normalises a webhook body (events of other products keep kind `unknown`; their ids still make a hint). Throws HeygenError(`malformed_webhook`) when it is not one. */
export function parseWebhookEvent(json: unknown): HeygenWebhookEvent {
  const parsed = webhookEventSchema.safeParse(json);
  if (!parsed.success) {
    throw new HeygenError(`malformed webhook body (${describeIssues(parsed.error)})`, {
      httpStatus: null,
      code: 'malformed_webhook',
      retryable: false,
    });
  }
  const { event_type: eventType, event_id: eventId, event_data: data } = parsed.data;
  const dot = eventType.lastIndexOf('.');
  const prefix = dot >= 0 ? eventType.slice(0, dot) : eventType;
  const suffix = dot >= 0 ? eventType.slice(dot + 1) : '';
  const kind = WEBHOOK_KINDS[prefix] ?? 'unknown';
  const outcome = kind === 'unknown' ? 'unknown' : suffix === 'success' ? 'success' : suffix === 'fail' ? 'fail' : 'unknown';
  const sessionId = data?.session_id || null;
  return {
    eventType,
    eventId: eventId || null,
    // Proofread and avatar-training events name their proofread / avatar look (the job item's upstream id).
    upstreamId: data?.video_translate_id || data?.video_id || (kind === 'agent' ? sessionId : null) || data?.proofread_id || data?.avatar_id || null,
    sessionId,
    callbackId: data?.callback_id || null,
    kind,
    outcome,
  };
}

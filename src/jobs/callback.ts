// The app's own callback: `callback_url` / `callback_id` in a v3 body. The gateway keeps them apart from the body it
// forwards (HeyGen gets the gateway's own job id and callback URL) and, once the job has ended and been settled, an
// outbox row tells the app (src/outbox). A callback URL must not let a caller make the gateway call its own network.
import net from 'node:net';
import { ValidationError } from '../errors.js';
import { isPublicAddress } from '../pricing/media.js';

export interface CallbackPolicy {
  /** Accept `http:` callback URLs (development and tests only); otherwise https only. */
  readonly allowHttp: boolean;
  /** Accept loopback, private and link-local targets (tests only); otherwise refused here and at connect time. */
  readonly allowPrivate: boolean;
}

export const STRICT_CALLBACK_POLICY: CallbackPolicy = { allowHttp: false, allowPrivate: false };

/** Longest callback URL accepted (HeyGen documents none; browsers and proxies commonly stop near 2 KB). */
export const MAX_CALLBACK_URL_LENGTH = 2048;
/** Longest callback_id echoed back (HeyGen's Idempotency-Key bound, a generous id). */
export const MAX_CALLBACK_ID_LENGTH = 255;

/** What the body asked for, before the admission binds it to the calling service token. */
export interface RequestedCallback {
  url: string;
  callbackId: string | null;
}

/** Host names that always mean this machine or its private network, whatever DNS says. */
const LOCAL_NAME = /(^|\.)(localhost|localdomain|local|internal|home\.arpa)$/i;

/** Checks a callback URL; throws a ValidationError naming `field` (nothing is written before this passes). */
export function checkCallbackUrl(value: unknown, policy: CallbackPolicy, field = 'request.callback_url'): string {
  if (typeof value !== 'string' || value.trim() === '') throw new ValidationError(field, 'callback_url must be a non-empty string');
  if (value.length > MAX_CALLBACK_URL_LENGTH) throw new ValidationError(field, `callback_url is longer than ${MAX_CALLBACK_URL_LENGTH} characters`);
  if (/[\u0000-\u0020\u007f]/.test(value)) throw new ValidationError(field, 'callback_url must not contain spaces or control characters');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ValidationError(field, 'callback_url is not a valid absolute URL');
  }
  if (url.protocol !== 'https:' && !(policy.allowHttp && url.protocol === 'http:')) {
    throw new ValidationError(field, policy.allowHttp ? 'callback_url must be an http:// or https:// URL' : 'callback_url must be an https:// URL');
  }
  if (url.username !== '' || url.password !== '') throw new ValidationError(field, 'callback_url must not carry credentials');
  if (url.hash !== '') throw new ValidationError(field, 'callback_url must not have a #fragment');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (host === '') throw new ValidationError(field, 'callback_url has no host');
  if (!policy.allowPrivate) {
    // Literal addresses are judged here; names are judged again on every delivery, at connect time (DNS may change).
    if (net.isIP(host) ? !isPublicAddress(host) : LOCAL_NAME.test(host.replace(/\.$/, '')) || !host.includes('.')) {
      throw new ValidationError(field, 'callback_url must point at a public address (not loopback, private or link-local)');
    }
    // WHATWG URL parsing already turns 0x7f.1, 2130706433 and friends into dotted IPv4, judged above.
  }
  return url.toString();
}

function checkCallbackId(value: unknown, field = 'request.callback_id'): string {
  if (typeof value !== 'string') throw new ValidationError(field, 'callback_id must be a string');
  if (value.length === 0 || value.length > MAX_CALLBACK_ID_LENGTH) throw new ValidationError(field, `callback_id must be 1 to ${MAX_CALLBACK_ID_LENGTH} characters`);
  if (/[\u0000-\u001f\u007f]/.test(value)) throw new ValidationError(field, 'callback_id must not contain control characters');
  return value;
}

/**
 * Takes the app's callback out of a v3 body: the body to forward (without `callback_url` / `callback_id`) and the
 * callback, or null when the body names none. A `callback_id` without a `callback_url` is kept by nobody: refused.
 */
export function extractCallback(
  body: Record<string, unknown>,
  policy: CallbackPolicy,
): { body: Record<string, unknown>; callback: RequestedCallback | null } {
  const { callback_url: rawUrl, callback_id: rawId, ...rest } = body;
  const hasUrl = rawUrl !== undefined && rawUrl !== null;
  const hasId = rawId !== undefined && rawId !== null;
  if (!hasUrl) {
    if (hasId) throw new ValidationError('request.callback_id', 'callback_id is only used with a callback_url');
    return { body: rest, callback: null };
  }
  return { body: rest, callback: { url: checkCallbackUrl(rawUrl, policy), callbackId: hasId ? checkCallbackId(rawId) : null } };
}

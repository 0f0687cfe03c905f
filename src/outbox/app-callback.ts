// The `app_callback` destination: a POST of HeyGen's webhook event shape to the URL an app named in its job's body,
// signed with the app's service token's callback secret. The signature covers a timestamp and the raw body:
//   X-Gateway-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, `${t}.${rawBody}`)>
// (docs/app-callbacks.md shows the receiver's check). Addresses are checked at connect time (a name that resolves to a
// private address is refused, like media probing), redirects are not followed, the answer is read only up to a small
// limit, and the whole attempt has a time limit.
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Db } from '../db/client.js';
import type { SecretBox } from '../secrets/secret-box.js';
import { callbackSignerOf } from '../auth/callback-secrets.js';
import { checkedLookup } from '../pricing/media.js';
import { readCapped } from '../streams.js';
import type { AttemptResult, ClaimedEvent } from './outbox.js';
import type { OutboxHandler } from './worker.js';

export const APP_CALLBACK_TOPIC = 'app_callback';
export const SIGNATURE_HEADER = 'x-gateway-signature';
export const EVENT_ID_HEADER = 'x-gateway-event-id';
export const ATTEMPT_HEADER = 'x-gateway-delivery-attempt';

/** Where an app callback goes: never a secret (the token's id names the secret, which is read at each attempt). */
export interface AppCallbackDestination {
  url: string;
  tokenId: string;
}

export interface AppCallbackSettings {
  /** Time limit of one attempt (connect, send, answer). */
  timeoutMs: number;
  /** Bytes of the receiver's answer read at most (its status is what counts). */
  maxResponseBytes: number;
  /** Let callback URLs reach loopback, private and link-local addresses (tests only). */
  allowPrivate: boolean;
}

/** The header value for a body sent at `timestampSeconds`. */
export function signCallback(secret: string, timestampSeconds: number, rawBody: string): string {
  const v1 = createHmac('sha256', secret).update(`${timestampSeconds}.${rawBody}`).digest('hex');
  return `t=${timestampSeconds},v1=${v1}`;
}

/**
 * The receiver's check (what docs/app-callbacks.md shows): a v1 signature over `${t}.${rawBody}` matches, in constant
 * time, and t is within `toleranceSeconds` of the receiver's clock (a replayed old delivery is refused).
 */
export function verifyCallbackSignature(secret: string, header: string | null | undefined, rawBody: string, nowSeconds: number, toleranceSeconds = 300): boolean {
  if (typeof header !== 'string') return false;
  const parts = new Map<string, string[]>();
  for (const item of header.split(',')) {
    const eq = item.indexOf('=');
    if (eq <= 0) continue;
    const key = item.slice(0, eq).trim();
    parts.set(key, [...(parts.get(key) ?? []), item.slice(eq + 1).trim()]);
  }
  const t = Number(parts.get('t')?.[0]);
  if (!Number.isInteger(t) || Math.abs(nowSeconds - t) > toleranceSeconds) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${rawBody}`).digest();
  return (parts.get('v1') ?? []).some((v) => /^[0-9a-f]{64}$/.test(v) && timingSafeEqual(Buffer.from(v, 'hex'), expected));
}

export interface PostResult {
  status: number | null;
  error: string | null;
}

/** One POST, never redirected, with a time limit and a bounded read of the answer (notification channels use it too). */
export function post(url: URL, headers: Record<string, string>, body: string, settings: AppCallbackSettings): Promise<PostResult> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return Promise.resolve({ status: null, error: 'the callback URL is not http(s)' });
  const transport = url.protocol === 'https:' ? https : http;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), settings.timeoutMs);
  return new Promise<PostResult>((resolve) => {
    const done = (result: PostResult) => {
      clearTimeout(timer);
      resolve(result);
    };
    const req = transport.request(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) },
        lookup: checkedLookup(settings.allowPrivate),
        signal: controller.signal,
        agent: false,
      },
      (res) => {
        const status = res.statusCode ?? 0;
        readCapped(Readable.toWeb(res) as ReadableStream<Uint8Array>, settings.maxResponseBytes, () => res.destroy()).then(
          () => done({ status, error: status >= 200 && status < 300 ? null : `the receiver answered HTTP ${status}` }),
          // The status arrived; an answer that breaks off (or times out) afterwards still tells the outcome.
          () => done({ status, error: status >= 200 && status < 300 ? null : `the receiver answered HTTP ${status}` }),
        );
      },
    );
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (controller.signal.aborted) return done({ status: null, error: `no answer within ${settings.timeoutMs} ms` });
      if (error.code === 'EADDRNOTALLOWED') return done({ status: null, error: 'the callback URL resolves to a private, loopback or link-local address' });
      done({ status: null, error: `the receiver could not be reached (${error.code ?? 'network error'})` });
    });
    req.end(body);
  });
}

export interface AppCallbackDeps {
  db: Db;
  box: SecretBox;
  settings: AppCallbackSettings;
  /** The body to send for an event, read at each attempt (e.g. with a fresh output URL); default the stored payload. */
  bodyOf?: (event: ClaimedEvent) => Promise<unknown>;
}

/** The handler the outbox worker runs for `app_callback` events. */
export function appCallbackHandler(deps: AppCallbackDeps): OutboxHandler {
  return async (event: ClaimedEvent, now: Date): Promise<AttemptResult> => {
    const startedAt = now;
    const started = performance.now();
    const finish = (r: Omit<AttemptResult, 'startedAt' | 'durationMs'>): AttemptResult => ({
      ...r,
      startedAt,
      durationMs: Math.max(0, Math.round(performance.now() - started)),
    });
    const destination = event.destination as Partial<AppCallbackDestination>;
    if (typeof destination.url !== 'string' || typeof destination.tokenId !== 'string') {
      return finish({ ok: false, httpStatus: null, error: 'the event has no callback destination', permanent: true });
    }
    const signer = await callbackSignerOf(deps.db, deps.box, destination.tokenId);
    if (signer.type !== 'ok') {
      // A revoked or deleted token's app is no longer trusted with its jobs' news; a token without a secret (issued
      // before callbacks existed) may still get one (rotateCallbackSecret), so that is retried.
      const error =
        signer.reason === 'no_secret'
          ? 'the service token has no callback signing secret yet (rotateCallbackSecret gives it one)'
          : `the service token that submitted the job is ${signer.reason === 'revoked' ? 'revoked' : 'gone'}`;
      return finish({ ok: false, httpStatus: null, error, permanent: signer.reason !== 'no_secret' });
    }
    let url: URL;
    try {
      url = new URL(destination.url);
    } catch {
      return finish({ ok: false, httpStatus: null, error: 'the callback URL is invalid', permanent: true });
    }
    const body = JSON.stringify(deps.bodyOf ? await deps.bodyOf(event) : event.payload);
    const headers = {
      [SIGNATURE_HEADER]: signCallback(signer.secret, Math.floor(Date.now() / 1000), body),
      [EVENT_ID_HEADER]: event.id,
      [ATTEMPT_HEADER]: String(event.attempt),
      'user-agent': 'heygen-gateway-callbacks/1',
    };
    const result = await post(url, headers, body, deps.settings);
    return finish({ ok: result.error === null, httpStatus: result.status, error: result.error });
  };
}

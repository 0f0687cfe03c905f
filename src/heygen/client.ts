// The gateway's only HTTP client for HeyGen v3. Money depends on what it reports, so:
// - a create that may have reached HeyGen is never reported as `rejected` (it is `unknown`);
// - every success body is checked with zod, and ids in answers must match the ids asked for;
// - durations and amounts leave as plain decimal strings, never as floats;
// - the API key is only ever put in the X-Api-Key header, and scrubbed from every message;
// - no answer is read past `maxResponseBytes`: a bigger one is dropped mid-stream and reported as
//   `response_too_large` (a create stays `unknown`, a read throws a retryable HeygenError), not retried in-process.
// Calls go through undici's request API on the client's own keep-alive pools (one per HeyGen origin), not through
// fetch: the answer is a Node stream read once, with no WHATWG streams or Response objects in between.
import { randomUUID } from 'node:crypto';
import { Agent, type Dispatcher } from 'undici';
import type { z } from 'zod';
import { redactSecrets } from '../secrets/redact.js';
import { numberToDecimal } from '../primitives/money.js';
import { readBodyCapped } from './body.js';
import { describeIssues, HeygenError } from './errors.js';
import {
  agentCreateSchema,
  agentGetSchema,
  avatarCreateSchema,
  avatarGetSchema,
  batchCreateSchema,
  batchGetSchema,
  lipsyncCreateSchema,
  lipsyncGetSchema,
  proofreadCreateSchema,
  proofreadGetSchema,
  speechCreateSchema,
  BULK_STATUS_MAP,
  bulkStatusesSchema,
  translationCreateSchema,
  translationGetSchema,
  userMeSchema,
  v3ErrorSchema,
  videoCreateSchema,
  videoGetSchema,
  webhookEndpointSchema,
} from './schemas.js';
import {
  HEYGEN_JOB_KINDS,
  type AgentSessionState,
  type BatchItemState,
  type BatchKind,
  type HeygenClientOptions,
  type HeygenConnection,
  type HeygenJobKind,
  type HeygenAttemptResult,
  type HeygenLogger,
  type HeygenObserver,
  type HeygenUser,
  type SubmitOptions,
  type SubmitOutcome,
  type UpstreamItem,
  type UpstreamJobState,
  type UpstreamStatus,
  type WebhookEndpointRegistration,
} from './types.js';

export type * from './types.js';
export { AGENT_SESSION_STATUSES, HEYGEN_JOB_KINDS } from './types.js';
export { HeygenError } from './errors.js';
export { parseWebhookEvent, verifyWebhookSignature } from './webhooks.js';

export interface HeygenClient {
  submitJob(
    conn: HeygenConnection,
    kind: HeygenJobKind,
    body: Record<string, unknown>,
    opts: SubmitOptions,
  ): Promise<SubmitOutcome>;
  getVideo(conn: HeygenConnection, videoId: string): Promise<UpstreamJobState>;
  getTranslation(conn: HeygenConnection, videoTranslationId: string): Promise<UpstreamJobState>;
  /** Ids HeyGen did not report, or reported with a status this client does not know, are absent. */
  getVideoStatuses(conn: HeygenConnection, videoIds: readonly string[]): Promise<Map<string, UpstreamStatus>>;
  getTranslationStatuses(
    conn: HeygenConnection,
    videoTranslationIds: readonly string[],
  ): Promise<Map<string, UpstreamStatus>>;
  getAgentSession(conn: HeygenConnection, sessionId: string): Promise<AgentSessionState>;
  getLipsync(conn: HeygenConnection, lipsyncId: string): Promise<UpstreamJobState>;
  getLipsyncStatuses(conn: HeygenConnection, lipsyncIds: readonly string[]): Promise<Map<string, UpstreamStatus>>;
  /** A proofread session; HeyGen reports no duration for it (durationSeconds is always null). */
  getProofread(conn: HeygenConnection, proofreadId: string): Promise<UpstreamJobState>;
  /** A created avatar's training: its look, or its group when HeyGen answered the create with a group only. */
  getAvatar(conn: HeygenConnection, what: 'look' | 'group', id: string): Promise<UpstreamJobState>;
  /** Every item of a batch (all pages), by item_index. */
  getBatch(conn: HeygenConnection, kind: BatchKind, batchId: string): Promise<BatchItemState[]>;
  getUser(conn: HeygenConnection): Promise<HeygenUser>;
  /**
   * A read passed on as HeyGen answered it (a catalog list, a video's detail with its fresh media URLs): the
   * status and the JSON body, with every known secret and this call's key redacted. 2xx and 4xx answers with a
   * JSON body are returned; transient failures are retried, then thrown (HeygenError, retryable); anything else
   * (a non-JSON answer) is thrown. `pathAndQuery` starts with `/v3/`.
   */
  getRaw(conn: HeygenConnection, pathAndQuery: string): Promise<RawAnswer>;
  registerWebhookEndpoint(
    conn: HeygenConnection,
    url: string,
    events: string[] | null,
    opts?: { idempotencyKey?: string },
  ): Promise<WebhookEndpointRegistration>;
}

/** A HeyGen answer as JSON, secrets redacted (getRaw). */
export interface RawAnswer {
  status: number;
  body: unknown;
}

// ---------------------------------------------------------------------------------------------
// Small pure helpers
// ---------------------------------------------------------------------------------------------

const IDEMPOTENCY_KEY_PATTERN = /^[A-Za-z0-9_\-:.]{1,255}$/;
// Visible ASCII only: anything else would make the HTTP client throw an error that may quote the header value.
const API_KEY_PATTERN = /^[\x21-\x7e]+$/;
const BULK_CHUNK = 100;
/** A batch job has at most 100 items; pages beyond this many are never followed. */
const MAX_BATCH_PAGES = 20;
const MAX_ERROR_TEXT = 300;

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date. Undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, nowMs: number = Date.now()): number | undefined {
  if (value == null) return undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.ceil(Number(text) * 1000);
  // Date.parse accepts bare numbers such as "-1"; an HTTP date always has a day or month name.
  if (!/[A-Za-z]/.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

function redactor(secret: string): (text: string) => string {
  return (text) => redactSecrets(text, [secret]);
}

/** Upstream text as it may be kept: redacted first (the key of this call and every known secret), then cut. */
function bounded(text: string, redact: (t: string) => string, max = MAX_ERROR_TEXT): string {
  const clean = redact(text);
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false };
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------------

type AttemptResult =
  | { kind: 'response'; status: number; retryAfter: string | null; text: string }
  | { kind: 'network'; reason: string; code: 'timeout' | 'network_error' }
  | { kind: 'oversized'; status: number; reason: string };
/** What `interpret` sees: an oversized answer never reaches it. */
type Answer = Exclude<AttemptResult, { kind: 'oversized' }>;

interface RetryStep {
  kind: 'retry';
  reason: string;
  code: string;
  httpStatus?: number;
  retryAfterMs?: number;
}
type Step<T> = { kind: 'done'; value: T } | RetryStep;

type Retried<T> = { ok: true; value: T } | { ok: false; last: RetryStep; attempts: number };

interface RequestSpec {
  op: string;
  method: 'GET' | 'POST';
  path: string;
  body?: string;
  idempotencyKey?: string;
}

interface ParsedErrorBody {
  code: string;
  message: string;
  param?: string;
}

const NETWORK_FAILURE: HeygenAttemptResult = { status: null, error: 'network_error' };
const TIMED_OUT: HeygenAttemptResult = { status: null, error: 'timeout' };

function attemptResultOf(result: AttemptResult | undefined): HeygenAttemptResult {
  if (!result) return NETWORK_FAILURE;
  if (result.kind === 'response') return { status: result.status, error: null };
  if (result.kind === 'oversized') return { status: result.status, error: 'response_too_large' };
  return result.code === 'timeout' ? TIMED_OUT : NETWORK_FAILURE;
}

function checkPositive(name: string, value: number, integer = false): number {
  if (!Number.isFinite(value) || value < 0 || (integer && (!Number.isInteger(value) || value < 1))) {
    throw new RangeError(`HeyGen client option ${name} is invalid`);
  }
  return value;
}

/** Where each kind's create body takes callback fields: the job itself, each payload of a batch, or nowhere. */
const CALLBACK_FIELDS: Record<HeygenJobKind, 'job' | 'none' | 'videos' | 'video_translations' | 'lipsyncs'> = {
  AVATAR_VIDEO: 'job',
  TEMPLATE_VIDEO: 'job',
  VIDEO_TRANSLATION: 'job',
  VIDEO_AGENT: 'job',
  LIPSYNC: 'job',
  TTS: 'none',
  TRANSLATION_PROOFREAD: 'none',
  AVATAR_CREATION: 'none',
  VIDEO_BATCH: 'videos',
  VIDEO_TRANSLATION_BATCH: 'video_translations',
  LIPSYNC_BATCH: 'lipsyncs',
};

const BATCH_OF = { VIDEO_BATCH: 'video', VIDEO_TRANSLATION_BATCH: 'translation', LIPSYNC_BATCH: 'lipsync' } as const;
const BATCH_PATHS: Record<BatchKind, string> = {
  video: '/v3/videos/batches',
  translation: '/v3/video-translations/batches',
  lipsync: '/v3/lipsyncs/batches',
};

/** A batch item's upstream id before HeyGen names it: `{batch_id}#{item_index}`. */
export function batchItemId(batchId: string, index: number): string {
  return `${batchId}#${index}`;
}

export function parseBatchItemId(upstreamId: string): { batchId: string; index: number } | null {
  const at = upstreamId.lastIndexOf('#');
  if (at <= 0 || !/^\d+$/.test(upstreamId.slice(at + 1))) return null;
  return { batchId: upstreamId.slice(0, at), index: Number(upstreamId.slice(at + 1)) };
}

function stringArray(value: unknown): string[] | undefined {
  return Array.isArray(value) && value.every((l): l is string => typeof l === 'string') ? value : undefined;
}

export function createHeygenClient(options: HeygenClientOptions = {}): HeygenClient {
  const timeoutMs = checkPositive('timeoutMs', options.timeoutMs ?? 30_000);
  const maxAttempts = checkPositive('maxAttempts', options.maxAttempts ?? 4, true);
  const baseDelayMs = checkPositive('baseDelayMs', options.baseDelayMs ?? 500);
  const maxDelayMs = checkPositive('maxDelayMs', options.maxDelayMs ?? 30_000);
  const maxRetryAfterMs = checkPositive('maxRetryAfterMs', options.maxRetryAfterMs ?? 60_000);
  const maxResponseBytes = checkPositive('maxResponseBytes', options.maxResponseBytes ?? 4 * 1024 * 1024, true);
  const userMePath = options.userMePath ?? '/v3/users/me';
  if (!userMePath.startsWith('/')) throw new RangeError('HeyGen client option userMePath must start with "/"');
  // Keep-alive connections, pooled per origin (every account of one HeyGen origin shares its pool; the key travels
  // per request). Idle sockets do not hold the process open.
  const dispatcher: Dispatcher = new Agent();
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const random = options.random ?? Math.random;
  const logger: HeygenLogger | undefined = options.logger;
  const observe: HeygenObserver | undefined = options.observe;

  function backoff(attempt: number): number {
    const cap = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
    return Math.round(cap / 2 + (random() * cap) / 2);
  }

  function checkConnection(conn: HeygenConnection): { base: string; redact: (text: string) => string } {
    if (typeof conn?.apiKey !== 'string' || !API_KEY_PATTERN.test(conn.apiKey)) {
      throw new HeygenError('HeyGen API key is missing or has characters not allowed in a header', {
        httpStatus: null,
        code: 'invalid_api_key',
        retryable: false,
      });
    }
    let url: URL | undefined;
    try {
      url = new URL(conn.baseUrl);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new HeygenError('HeyGen base URL is not an http(s) URL', {
        httpStatus: null,
        code: 'invalid_base_url',
        retryable: false,
      });
    }
    return { base: conn.baseUrl.replace(/\/+$/, ''), redact: redactor(conn.apiKey) };
  }

  function parseErrorBody(status: number, text: string, redact: (t: string) => string): ParsedErrorBody {
    const json = parseJson(text);
    if (json.ok) {
      const parsed = v3ErrorSchema.safeParse(json.value);
      if (parsed.success) {
        const { code, message, param } = parsed.data.error;
        return {
          code: redact(code),
          message: bounded(message || code, redact),
          ...(param ? { param: redact(param) } : {}),
        };
      }
      if (isPlainObject(json.value)) {
        const { error, message, code } = json.value;
        const msg = typeof error === 'string' ? error : typeof message === 'string' ? message : undefined;
        if (msg !== undefined) {
          return {
            code: typeof code === 'string' && code ? redact(code) : `http_${status}`,
            message: bounded(msg, redact),
          };
        }
      }
    }
    const trimmed = text.trim();
    return { code: `http_${status}`, message: trimmed ? bounded(trimmed, redact) : `HTTP ${status}` };
  }

  async function attemptOnce(
    url: URL,
    spec: RequestSpec,
    apiKey: string,
    redact: (t: string) => string,
  ): Promise<AttemptResult> {
    const headers: Record<string, string> = {
      'x-api-key': apiKey,
      'content-type': 'application/json',
      accept: 'application/json',
      // undici's request, unlike fetch, neither asks for nor decodes compressed answers: say so, or a server (or a CDN
      // in front of it) could compress, and a create's answer would be unreadable (left `unknown`).
      'accept-encoding': 'identity',
      'user-agent': 'heygen-gateway/1',
    };
    if (spec.idempotencyKey !== undefined) headers['idempotency-key'] = spec.idempotencyKey;
    try {
      const response = await dispatcher.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: spec.method,
        headers,
        body: spec.body ?? null,
        // The timeout also bounds reading the body: the body stream fails with the same reason.
        signal: AbortSignal.timeout(timeoutMs),
        // undici never follows a redirect here: the API key is never replayed to wherever one points.
      });
      // Over the cap, the body is destroyed: the connection is dropped instead of drained.
      const body = await readBodyCapped(response.headers['content-length'], response.body, maxResponseBytes);
      if (!body.ok) {
        const size = body.declaredBytes !== null ? `declares ${body.declaredBytes} bytes` : `passed ${maxResponseBytes} bytes`;
        return { kind: 'oversized', status: response.statusCode, reason: `HTTP ${response.statusCode} answer too large (${size}; limit ${maxResponseBytes})` };
      }
      const retryAfter = response.headers['retry-after'];
      return { kind: 'response', status: response.statusCode, retryAfter: Array.isArray(retryAfter) ? retryAfter.join(', ') : (retryAfter ?? null), text: body.text };
    } catch (error) {
      const name = error instanceof Error ? error.name : '';
      if (name === 'TimeoutError') {
        return { kind: 'network', code: 'timeout', reason: `timed out after ${timeoutMs} ms` };
      }
      let reason = error instanceof Error ? error.message : 'request failed';
      const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
      if (typeof code === 'string' && !reason.includes(code)) reason = `${code} ${reason}`;
      const cause = error instanceof Error ? (error as { cause?: unknown }).cause : undefined;
      if (cause instanceof Error) {
        const causeCode = (cause as { code?: unknown }).code;
        reason += `: ${typeof causeCode === 'string' ? `${causeCode} ` : ''}${cause.message}`;
      }
      return { kind: 'network', code: 'network_error', reason: bounded(`network error: ${reason}`, redact) };
    }
  }

  /** One attempt, told to the observer as it starts and as it ends. */
  async function observed(
    url: URL,
    spec: RequestSpec,
    apiKey: string,
    redact: (t: string) => string,
    attempt: number,
    observer: HeygenObserver,
  ): Promise<AttemptResult> {
    const end = observer({ op: spec.op, method: spec.method, attempt });
    let result: AttemptResult | undefined;
    try {
      result = await attemptOnce(url, spec, apiKey, redact);
      return result;
    } finally {
      end(attemptResultOf(result));
    }
  }

  /** Runs one logical call with the retry policy; `interpret` decides per attempt (and may throw). */
  async function execute<T>(
    conn: HeygenConnection,
    spec: RequestSpec,
    interpret: (result: Answer, redact: (t: string) => string) => Step<T>,
  ): Promise<Retried<T>> {
    const { base, redact } = checkConnection(conn);
    const url = new URL(base + spec.path);
    for (let attempt = 1; ; attempt++) {
      const result = observe ? await observed(url, spec, conn.apiKey, redact, attempt, observe) : await attemptOnce(url, spec, conn.apiKey, redact);
      if (result.kind === 'oversized') {
        // Not retried here: the same answer would likely come back, costing the limit each time. The caller's
        // own retry (the worker's backoff for a create, the poller for a read) tries again later.
        logger?.warn({ op: spec.op, method: spec.method, path: redact(spec.path), httpStatus: result.status, limitBytes: maxResponseBytes }, 'HeyGen answer over the size limit; abandoned');
        return { ok: false, last: { kind: 'retry', reason: result.reason, code: 'response_too_large', httpStatus: result.status }, attempts: attempt };
      }
      const step = interpret(result, redact);
      if (step.kind === 'done') return { ok: true, value: step.value };
      if (attempt >= maxAttempts) return { ok: false, last: step, attempts: attempt };
      if (step.retryAfterMs !== undefined && step.retryAfterMs > maxRetryAfterMs) {
        return {
          ok: false,
          last: { ...step, reason: `${step.reason}; Retry-After of ${step.retryAfterMs} ms is longer than this client waits` },
          attempts: attempt,
        };
      }
      const delayMs = step.retryAfterMs ?? backoff(attempt);
      logger?.warn(
        {
          op: spec.op,
          method: spec.method,
          path: redact(spec.path),
          attempt,
          maxAttempts,
          delayMs,
          reason: step.reason,
          code: step.code,
          ...(step.httpStatus !== undefined ? { httpStatus: step.httpStatus } : {}),
          ...(spec.idempotencyKey !== undefined ? { idempotencyKey: spec.idempotencyKey } : {}),
        },
        'HeyGen call failed; retrying',
      );
      await sleep(delayMs);
    }
  }

  /** Policy shared by every call for the answers that are retried. Undefined: caller decides. */
  function transientStep(result: Answer, redact: (t: string) => string): RetryStep | undefined {
    if (result.kind === 'network') return { kind: 'retry', reason: result.reason, code: result.code };
    const { status } = result;
    if (status === 429 || status === 408 || status >= 500) {
      const error = parseErrorBody(status, result.text, redact);
      const retryAfterMs = parseRetryAfter(result.retryAfter);
      return {
        kind: 'retry',
        reason: `HTTP ${status} ${error.code}: ${error.message}`,
        code: error.code,
        httpStatus: status,
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      };
    }
    return undefined;
  }

  function malformed(status: number, detail: string): RetryStep {
    return { kind: 'retry', reason: `malformed HTTP ${status} response (${detail})`, code: 'malformed_response', httpStatus: status };
  }

  /** Parses a 2xx body with `schema`, then `map`; a failure of either is a malformed (retried) answer. */
  function parseSuccess<S extends z.ZodType, T>(
    result: { status: number; text: string },
    schema: S,
    redact: (t: string) => string,
    map: (data: z.output<S>) => T | string,
  ): Step<T> {
    const json = parseJson(result.text);
    if (!json.ok) return malformed(result.status, 'body is not JSON');
    const parsed = schema.safeParse(json.value);
    if (!parsed.success) return malformed(result.status, redact(describeIssues(parsed.error)));
    const value = map(parsed.data);
    if (typeof value === 'string') return malformed(result.status, redact(value));
    return { kind: 'done', value };
  }

  // ----- submit --------------------------------------------------------------------------------

  /** HeyGen returns one id per requested language; they are paired by index only when the counts agree. */
  function pairLanguages<K extends UpstreamItem['kind']>(ids: string[], languages: string[] | undefined, kind: K, op: string): UpstreamItem[] {
    const paired = languages !== undefined && languages.length === ids.length;
    if (!paired) {
      logger?.warn({ op, ids: ids.length, languages: languages?.length ?? null }, 'HeyGen returned a different number of ids than languages requested');
    }
    return ids.map((upstreamId, i) => {
      const language = paired ? languages[i] : undefined;
      return { upstreamId, kind, ...(language !== undefined ? { language } : {}) };
    });
  }

  function rejectLocally(code: string, message: string, param?: string): SubmitOutcome {
    return { type: 'rejected', httpStatus: 0, code, message, ...(param ? { param } : {}) };
  }

  async function submitJob(
    conn: HeygenConnection,
    kind: HeygenJobKind,
    body: Record<string, unknown>,
    opts: SubmitOptions,
  ): Promise<SubmitOutcome> {
    if (!(HEYGEN_JOB_KINDS as readonly string[]).includes(kind)) {
      return rejectLocally('invalid_request', 'unknown job kind');
    }
    if (!isPlainObject(body)) return rejectLocally('invalid_request', 'request body must be a JSON object');
    if (typeof opts?.idempotencyKey !== 'string' || !IDEMPOTENCY_KEY_PATTERN.test(opts.idempotencyKey)) {
      return rejectLocally('invalid_request', 'idempotency key must match ^[A-Za-z0-9_\\-:.]{1,255}$');
    }
    if (typeof opts.callbackId !== 'string' || opts.callbackId.length === 0) {
      return rejectLocally('invalid_request', 'callback id must be a non-empty string');
    }

    // Copy: the caller's object is its stored request and must not change under it. Callback fields go only where
    // HeyGen's schema has them: per job, per batch item (and the batch's own callback_url), or nowhere.
    const forwarded: Record<string, unknown> = { ...body };
    const callbacks = CALLBACK_FIELDS[kind];
    if (callbacks === 'job') {
      forwarded.callback_id = opts.callbackId;
      if (opts.callbackUrl !== undefined) forwarded.callback_url = opts.callbackUrl;
    } else if (callbacks !== 'none') {
      const payloads = forwarded[callbacks];
      if (!Array.isArray(payloads) || !payloads.every(isPlainObject)) {
        return rejectLocally('validation_error', `${callbacks} must be an array of objects`, callbacks);
      }
      forwarded[callbacks] = payloads.map((item) => ({
        ...item,
        callback_id: opts.callbackId,
        ...(opts.callbackUrl !== undefined ? { callback_url: opts.callbackUrl } : {}),
      }));
      if (opts.callbackUrl !== undefined) forwarded.callback_url = opts.callbackUrl;
    }

    let path: string;
    let mapItems: (json: { status: number; text: string }, redact: (t: string) => string) => Step<UpstreamItem[]>;
    switch (kind) {
      case 'AVATAR_VIDEO':
      case 'TEMPLATE_VIDEO': {
        if (kind === 'TEMPLATE_VIDEO') {
          const templateId = forwarded.template_id;
          if (typeof templateId !== 'string' || templateId.length === 0) {
            return rejectLocally('validation_error', 'template_id is required for a template video', 'template_id');
          }
          delete forwarded.template_id;
          path = `/v3/templates/${encodeURIComponent(templateId)}`;
        } else {
          path = '/v3/videos';
        }
        mapItems = (r, redact) =>
          parseSuccess(r, videoCreateSchema, redact, ({ data }) => {
            const videoId = data.video_id ?? data.id;
            return videoId ? [{ upstreamId: videoId, kind: 'video' as const }] : 'no video id';
          });
        break;
      }
      case 'VIDEO_TRANSLATION': {
        path = '/v3/video-translations';
        const requested = forwarded.output_languages;
        const languages =
          Array.isArray(requested) && requested.every((l): l is string => typeof l === 'string') ? requested : undefined;
        mapItems = (r, redact) =>
          parseSuccess(r, translationCreateSchema, redact, ({ data }) =>
            pairLanguages(data.video_translation_ids, languages, 'translation' as const, 'submitJob:VIDEO_TRANSLATION'),
          );
        break;
      }
      case 'LIPSYNC': {
        path = '/v3/lipsyncs';
        mapItems = (r, redact) => parseSuccess(r, lipsyncCreateSchema, redact, ({ data }) => [{ upstreamId: data.lipsync_id, kind: 'lipsync' as const }]);
        break;
      }
      case 'TTS': {
        path = '/v3/voices/speech';
        mapItems = (r, redact) =>
          parseSuccess(r, speechCreateSchema, redact, ({ data }) => {
            const output = parseJson(r.text);
            return [
              {
                // No id is promised (request_id is nullable): the job's own id names the output then.
                upstreamId: data.request_id ?? `speech:${opts.idempotencyKey}`,
                kind: 'speech' as const,
                completed: { durationSeconds: numberToDecimal(data.duration) },
                output: output.ok ? ((output.value as { data?: unknown }).data ?? null) : null,
              },
            ];
          });
        break;
      }
      case 'TRANSLATION_PROOFREAD': {
        path = '/v3/video-translations/proofreads';
        const languages = stringArray(forwarded.output_languages);
        mapItems = (r, redact) =>
          parseSuccess(r, proofreadCreateSchema, redact, ({ data }) =>
            pairLanguages(data.proofread_ids, languages, 'proofread' as const, 'submitJob:TRANSLATION_PROOFREAD'),
          );
        break;
      }
      case 'AVATAR_CREATION': {
        path = '/v3/avatars';
        mapItems = (r, redact) =>
          parseSuccess(r, avatarCreateSchema, redact, ({ data }) => {
            const answer = parseJson(r.text);
            const output = answer.ok ? ((answer.value as { data?: unknown }).data ?? null) : null;
            return data.avatar_item
              ? [{ upstreamId: data.avatar_item.id, kind: 'avatar_look' as const, output }]
              : [{ upstreamId: data.avatar_group!.id, kind: 'avatar_group' as const, output }];
          });
        break;
      }
      case 'VIDEO_BATCH':
      case 'VIDEO_TRANSLATION_BATCH':
      case 'LIPSYNC_BATCH': {
        const batch = BATCH_OF[kind];
        path = BATCH_PATHS[batch];
        const payloads = forwarded[callbacks as string] as Record<string, unknown>[];
        // One item per payload (a translation batch takes one language per payload, so indices cannot be read two ways).
        const languages = kind === 'VIDEO_TRANSLATION_BATCH' ? payloads.map((p) => stringArray(p.output_languages)?.[0]) : [];
        mapItems = (r, redact) =>
          parseSuccess(r, batchCreateSchema, redact, ({ data }) =>
            payloads.map((_p, index) => ({
              upstreamId: batchItemId(data.batch_id, index),
              kind: `batch_${batch}` as const,
              ...(languages[index] !== undefined ? { language: languages[index] } : {}),
            })),
          );
        break;
      }
      case 'VIDEO_AGENT': {
        path = '/v3/video-agents';
        mapItems = (r, redact) =>
          parseSuccess(r, agentCreateSchema, redact, ({ data }) => [
            {
              upstreamId: data.session_id,
              kind: 'agent_session' as const,
              ...(data.video_id ? { videoId: data.video_id } : {}),
            },
          ]);
        break;
      }
    }

    let payload: string;
    try {
      payload = JSON.stringify(forwarded);
    } catch {
      return rejectLocally('invalid_request', 'request body cannot be serialised as JSON');
    }

    const outcome = await execute<SubmitOutcome>(
      conn,
      { op: `submitJob:${kind}`, method: 'POST', path, body: payload, idempotencyKey: opts.idempotencyKey },
      (result, redact) => {
        const transient = transientStep(result, redact);
        if (transient) return transient;
        if (result.kind === 'network') throw new Error('unreachable');
        const { status } = result;
        if (status >= 200 && status < 300) {
          const step = mapItems(result, redact);
          return step.kind === 'done' ? { kind: 'done', value: { type: 'accepted', items: step.value } } : step;
        }
        if (status === 409) {
          const error = parseErrorBody(status, result.text, redact);
          if (error.code === 'request_in_progress') {
            return { kind: 'retry', reason: `HTTP 409 request_in_progress: ${error.message}`, code: error.code, httpStatus: 409 };
          }
          // A conflict on an idempotent create may mean an earlier attempt with this key created
          // the job: releasing its holds would let it run unbilled.
          return {
            kind: 'done',
            value: { type: 'unknown', reason: `HTTP 409 ${error.code}: ${error.message}`, httpStatus: 409, code: error.code },
          };
        }
        if (status >= 400 && status < 500) {
          const error = parseErrorBody(status, result.text, redact);
          return { kind: 'done', value: { type: 'rejected', httpStatus: status, ...error } };
        }
        // 1xx/3xx: not a definite refusal, and repeating it would not change the answer.
        return {
          kind: 'done',
          value: { type: 'unknown', reason: `unexpected HTTP ${status} from HeyGen`, httpStatus: status, code: `http_${status}` },
        };
      },
    );
    if (outcome.ok) return outcome.value;
    const { last, attempts } = outcome;
    return {
      type: 'unknown',
      reason: `gave up after ${attempts} attempt(s): ${last.reason}`,
      code: last.code,
      ...(last.httpStatus !== undefined ? { httpStatus: last.httpStatus } : {}),
      ...(last.retryAfterMs !== undefined ? { retryAfterMs: last.retryAfterMs } : {}),
    };
  }

  // ----- reads ---------------------------------------------------------------------------------

  function requireId(value: unknown, what: string): string {
    if (typeof value !== 'string' || value.length === 0) {
      throw new HeygenError(`${what} must be a non-empty string`, { httpStatus: null, code: 'invalid_argument', retryable: false });
    }
    return value;
  }

  /**
   * A call whose failure is thrown: retries transient answers, maps 2xx through `onSuccess`,
   * lets `on404` answer a 404 that carries a v3 error body, and throws for every other status.
   */
  async function call<T>(
    conn: HeygenConnection,
    spec: RequestSpec,
    onSuccess: (result: { status: number; text: string }, redact: (t: string) => string) => Step<T>,
    on404?: () => T,
  ): Promise<T> {
    const outcome = await execute<T>(conn, spec, (result, redact) => {
      const transient = transientStep(result, redact);
      if (transient) return transient;
      if (result.kind === 'network') throw new Error('unreachable');
      const { status } = result;
      if (status >= 200 && status < 300) return onSuccess(result, redact);
      const error = parseErrorBody(status, result.text, redact);
      // Only a v3 error body proves HeyGen itself said "not found"; an HTML 404 from a proxy
      // or a wrong base URL must not make jobs look gone.
      if (status === 404 && on404 && error.code !== 'http_404') return { kind: 'done', value: on404() };
      throw new HeygenError(`${spec.op}: HTTP ${status} ${error.code}: ${error.message}`, {
        httpStatus: status,
        code: error.code,
        retryable: false,
      });
    });
    if (outcome.ok) return outcome.value;
    const { last, attempts } = outcome;
    throw new HeygenError(`${spec.op}: gave up after ${attempts} attempt(s): ${last.reason}`, {
      httpStatus: last.httpStatus ?? null,
      code: last.code,
      retryable: true,
    });
  }

  function jobState(
    requestedId: string,
    data: {
      id: string;
      duration?: number | null | undefined;
      failure_code?: string | null | undefined;
      failure_message?: string | null | undefined;
      callback_id?: string | null | undefined;
      video_url?: unknown;
    },
    status: UpstreamStatus,
    redact: (t: string) => string,
  ): UpstreamJobState | string {
    if (data.id !== requestedId) return 'answer is for a different id';
    return {
      id: data.id,
      status,
      durationSeconds: data.duration == null ? null : numberToDecimal(data.duration),
      failureCode: data.failure_code == null ? null : bounded(data.failure_code, redact),
      failureMessage: data.failure_message == null ? null : bounded(data.failure_message, redact),
      callbackId: data.callback_id ?? null,
      outputUrl: typeof data.video_url === 'string' && /^https?:\/\/\S+$/i.test(data.video_url) && data.video_url.length <= 8192 ? data.video_url : null,
    };
  }

  function notFound(requestedId: string): UpstreamJobState {
    return { id: requestedId, status: 'not_found', durationSeconds: null, failureCode: null, failureMessage: null, callbackId: null, outputUrl: null };
  }

  async function getVideo(conn: HeygenConnection, videoId: string): Promise<UpstreamJobState> {
    requireId(videoId, 'video id');
    return call(
      conn,
      { op: 'getVideo', method: 'GET', path: `/v3/videos/${encodeURIComponent(videoId)}` },
      (r, redact) => parseSuccess(r, videoGetSchema, redact, ({ data }) => jobState(videoId, data, data.status, redact)),
      () => notFound(videoId),
    );
  }

  async function getTranslation(conn: HeygenConnection, translationId: string): Promise<UpstreamJobState> {
    requireId(translationId, 'video translation id');
    return call(
      conn,
      { op: 'getTranslation', method: 'GET', path: `/v3/video-translations/${encodeURIComponent(translationId)}` },
      (r, redact) =>
        parseSuccess(r, translationGetSchema, redact, ({ data }) =>
          jobState(translationId, data, data.status === 'running' ? 'processing' : data.status, redact),
        ),
      () => notFound(translationId),
    );
  }

  async function bulkStatuses(
    conn: HeygenConnection,
    op: string,
    path: string,
    param: string,
    ids: readonly string[],
  ): Promise<Map<string, UpstreamStatus>> {
    const unique = [...new Set(ids.map((value) => requireId(value, 'id')))];
    for (const value of unique) {
      // Ids travel comma-separated; a comma inside one would address two other ids.
      if (value.includes(',')) {
        throw new HeygenError('ids must not contain commas', { httpStatus: null, code: 'invalid_argument', retryable: false });
      }
    }
    const statuses = new Map<string, UpstreamStatus>();
    for (let start = 0; start < unique.length; start += BULK_CHUNK) {
      const chunk = unique.slice(start, start + BULK_CHUNK);
      const wanted = new Set(chunk);
      const entries = await call(
        conn,
        { op, method: 'GET', path: `${path}?${param}=${chunk.map(encodeURIComponent).join(',')}` },
        (r, redact) => parseSuccess(r, bulkStatusesSchema, redact, ({ data }) => data),
      );
      const unrecognised: string[] = [];
      for (const entry of entries) {
        if (!entry.video_id || !wanted.has(entry.video_id)) continue;
        const status = BULK_STATUS_MAP[entry.status];
        if (status === undefined) unrecognised.push(entry.status);
        else statuses.set(entry.video_id, status);
      }
      if (unrecognised.length > 0) {
        logger?.warn({ op, statuses: [...new Set(unrecognised)].slice(0, 10) }, 'HeyGen reported statuses this client does not know');
      }
    }
    return statuses;
  }

  async function getAgentSession(conn: HeygenConnection, sessionId: string): Promise<AgentSessionState> {
    requireId(sessionId, 'session id');
    return call(
      conn,
      { op: 'getAgentSession', method: 'GET', path: `/v3/video-agents/${encodeURIComponent(sessionId)}` },
      (r, redact) =>
        parseSuccess(r, agentGetSchema, redact, ({ data }) =>
          data.session_id !== sessionId
            ? 'answer is for a different session'
            : { sessionId: data.session_id, status: data.status, videoId: data.video_id ?? null },
        ),
    );
  }

  async function getLipsync(conn: HeygenConnection, lipsyncId: string): Promise<UpstreamJobState> {
    requireId(lipsyncId, 'lipsync id');
    return call(
      conn,
      { op: 'getLipsync', method: 'GET', path: `/v3/lipsyncs/${encodeURIComponent(lipsyncId)}` },
      (r, redact) =>
        parseSuccess(r, lipsyncGetSchema, redact, ({ data }) => jobState(lipsyncId, data, data.status === 'running' ? 'processing' : data.status, redact)),
      () => notFound(lipsyncId),
    );
  }

  async function getProofread(conn: HeygenConnection, proofreadId: string): Promise<UpstreamJobState> {
    requireId(proofreadId, 'proofread id');
    return call(
      conn,
      { op: 'getProofread', method: 'GET', path: `/v3/video-translations/proofreads/${encodeURIComponent(proofreadId)}` },
      // The proofread read has no duration field: whatever else the answer holds, money never depends on it.
      (r, redact) => parseSuccess(r, proofreadGetSchema, redact, ({ data }) => jobState(proofreadId, { id: data.id, failure_message: data.failure_message }, data.status, redact)),
      () => notFound(proofreadId),
    );
  }

  async function getAvatar(conn: HeygenConnection, what: 'look' | 'group', avatarId: string): Promise<UpstreamJobState> {
    requireId(avatarId, 'avatar id');
    const path = what === 'look' ? `/v3/avatars/looks/${encodeURIComponent(avatarId)}` : `/v3/avatars/${encodeURIComponent(avatarId)}`;
    return call(
      conn,
      { op: what === 'look' ? 'getAvatarLook' : 'getAvatarGroup', method: 'GET', path },
      (r, redact) =>
        parseSuccess(r, avatarGetSchema, redact, ({ data }) => {
          // Training is done only when HeyGen says completed; no status (or pending consent) is still in progress.
          const status: UpstreamStatus = data.status === 'completed' ? 'completed' : data.status === 'failed' ? 'failed' : 'processing';
          return jobState(avatarId, { id: data.id, failure_code: data.error?.code ?? null, failure_message: data.error?.message ?? null }, status, redact);
        }),
      () => notFound(avatarId),
    );
  }

  /** Batch pages are followed with `token=<next_token>`, at most MAX_BATCH_PAGES of them. */
  async function getBatch(conn: HeygenConnection, kind: BatchKind, batchId: string): Promise<BatchItemState[]> {
    requireId(batchId, 'batch id');
    const items = new Map<number, BatchItemState>();
    let token: string | null = null;
    for (let page = 0; page < MAX_BATCH_PAGES; page++) {
      const query: string = token === null ? '' : `?token=${encodeURIComponent(token)}`;
      const data = await call(
        conn,
        { op: `getBatch:${kind}`, method: 'GET', path: `${BATCH_PATHS[kind]}/${encodeURIComponent(batchId)}${query}` },
        (r, redact) => parseSuccess(r, batchGetSchema, redact, ({ data }) => (data.batch_id !== batchId ? 'answer is for a different batch' : data)),
      );
      for (const item of data.items) {
        const status: UpstreamStatus = item.status === 'queued' ? 'pending' : item.status;
        const message = item.error?.message ?? item.error?.code ?? null;
        items.set(item.item_index, {
          index: item.item_index,
          status,
          id: item.video_id || null,
          failureMessage: message === null ? null : bounded(message, redactor(conn.apiKey)),
        });
      }
      if (!data.has_more || !data.next_token) break;
      token = data.next_token;
    }
    return [...items.values()].sort((a, b) => a.index - b.index);
  }

  async function getUser(conn: HeygenConnection): Promise<HeygenUser> {
    return call(conn, { op: 'getUser', method: 'GET', path: userMePath }, (r, redact) => {
      const raw = parseJson(r.text);
      return parseSuccess(r, userMeSchema, redact, ({ data }) => ({
        billingType: data.billing_type ?? null,
        usageBased: data.usage_based
          ? {
              includedCredits: numberToDecimal(data.usage_based.included_credits),
              remainingCredits: numberToDecimal(data.usage_based.remaining_credits),
              spendingCapUsd: data.usage_based.spending_cap_usd == null ? null : numberToDecimal(data.usage_based.spending_cap_usd),
              spendingCurrentUsd:
                data.usage_based.spending_current_usd == null ? null : numberToDecimal(data.usage_based.spending_current_usd),
            }
          : null,
        wallet: data.wallet
          ? { currency: data.wallet.currency, remainingBalance: numberToDecimal(data.wallet.remaining_balance) }
          : null,
        raw: raw.ok ? raw.value : null,
      }));
    });
  }

  async function getRaw(conn: HeygenConnection, pathAndQuery: string): Promise<RawAnswer> {
    if (typeof pathAndQuery !== 'string' || !pathAndQuery.startsWith('/v3/')) {
      throw new HeygenError('path must start with /v3/', { httpStatus: null, code: 'invalid_argument', retryable: false });
    }
    const outcome = await execute<RawAnswer>(conn, { op: 'getRaw', method: 'GET', path: pathAndQuery }, (result, redact) => {
      const transient = transientStep(result, redact);
      if (transient) return transient;
      if (result.kind === 'network') throw new Error('unreachable');
      const json = parseJson(redact(result.text));
      if (!json.ok) {
        if (result.status >= 200 && result.status < 300) return malformed(result.status, 'body is not JSON');
        throw new HeygenError(`getRaw: HTTP ${result.status} without a JSON body`, { httpStatus: result.status, code: `http_${result.status}`, retryable: false });
      }
      if ((result.status >= 200 && result.status < 300) || (result.status >= 400 && result.status < 500)) return { kind: 'done', value: { status: result.status, body: json.value } };
      throw new HeygenError(`getRaw: unexpected HTTP ${result.status}`, { httpStatus: result.status, code: `http_${result.status}`, retryable: false });
    });
    if (outcome.ok) return outcome.value;
    const { last, attempts } = outcome;
    throw new HeygenError(`getRaw: gave up after ${attempts} attempt(s): ${last.reason}`, {
      httpStatus: last.httpStatus ?? null,
      code: last.code,
      retryable: true,
    });
  }

  async function registerWebhookEndpoint(
    conn: HeygenConnection,
    url: string,
    events: string[] | null,
    opts: { idempotencyKey?: string } = {},
  ): Promise<WebhookEndpointRegistration> {
    requireId(url, 'webhook url');
    const idempotencyKey = opts.idempotencyKey ?? `webhook-endpoint-${randomUUID()}`;
    if (!IDEMPOTENCY_KEY_PATTERN.test(idempotencyKey)) {
      throw new HeygenError('idempotency key has an invalid format', { httpStatus: null, code: 'invalid_argument', retryable: false });
    }
    return call(
      conn,
      {
        op: 'registerWebhookEndpoint',
        method: 'POST',
        path: '/v3/webhooks/endpoints',
        body: JSON.stringify({ url, events }),
        // Makes the retries of this create safe: HeyGen replays instead of registering twice.
        idempotencyKey,
      },
      (r, redact) =>
        parseSuccess(r, webhookEndpointSchema, redact, ({ data }) => ({ endpointId: data.endpoint_id, secret: data.secret })),
    );
  }

  return {
    submitJob,
    getVideo,
    getTranslation,
    getVideoStatuses: (conn, ids) => bulkStatuses(conn, 'getVideoStatuses', '/v3/videos/statuses', 'video_ids', ids),
    getTranslationStatuses: (conn, ids) =>
      bulkStatuses(conn, 'getTranslationStatuses', '/v3/video-translations/statuses', 'video_translation_ids', ids),
    getAgentSession,
    getLipsync,
    getLipsyncStatuses: (conn, ids) => bulkStatuses(conn, 'getLipsyncStatuses', '/v3/lipsyncs/statuses', 'lipsync_ids', ids),
    getProofread,
    getAvatar,
    getBatch,
    getUser,
    getRaw,
    registerWebhookEndpoint,
  };
}

// Normalised shapes the gateway sees of HeyGen v3. Amounts and durations are
// decimal strings, never JavaScript floats, because money is computed from them.

/** Where and as whom to call HeyGen: one account of the gateway. */
export interface HeygenConnection {
  baseUrl: string;
  apiKey: string;
}

export const HEYGEN_JOB_KINDS = [
  'AVATAR_VIDEO',
  'TEMPLATE_VIDEO',
  'VIDEO_TRANSLATION',
  'VIDEO_AGENT',
  'LIPSYNC',
  'TTS',
  'TRANSLATION_PROOFREAD',
  'AVATAR_CREATION',
  'VIDEO_BATCH',
  'VIDEO_TRANSLATION_BATCH',
  'LIPSYNC_BATCH',
] as const;
export type HeygenJobKind = (typeof HEYGEN_JOB_KINDS)[number];

/** One billable thing HeyGen created for a job (a translation yields one per language). */
export interface UpstreamItem {
  upstreamId: string;
  kind:
    | 'video'
    | 'translation'
    | 'agent_session'
    | 'lipsync'
    | 'speech'
    | 'proofread'
    | 'avatar_look'
    | 'avatar_group'
    | 'batch_video'
    | 'batch_translation'
    | 'batch_lipsync';
  videoId?: string;
  language?: string;
  /** A synchronous product (text to speech) is complete in the create answer: its billed length. */
  completed?: { durationSeconds: string };
  /** The create answer's `data` where it holds more than ids (text to speech: the audio; avatar creation: group and look). */
  output?: unknown;
}

/** The three batch endpoints: `POST {path}` creates, `GET {path}/{batch_id}` reads the items. */
export type BatchKind = 'video' | 'translation' | 'lipsync';

/** One item of a batch as HeyGen's batch read reports it (`video_id` holds the item's own id once created). */
export interface BatchItemState {
  index: number;
  status: UpstreamStatus;
  id: string | null;
  failureMessage: string | null;
}

/**
 * Result of forwarding a job.
 * - `accepted`: HeyGen created it (or replayed the creation for our Idempotency-Key).
 * - `rejected`: HeyGen refused it with a definite 4xx, or it was refused locally before
 *   anything was sent (`httpStatus: 0`). No upstream job exists; holds may be released.
 * - `unknown`: the job may or may not exist upstream. Keep the holds and retry later with
 *   the same Idempotency-Key.
 */
export type SubmitOutcome =
  | { type: 'accepted'; items: UpstreamItem[] }
  | { type: 'rejected'; httpStatus: number; code: string; message: string; param?: string }
  | { type: 'unknown'; reason: string; httpStatus?: number; code?: string; retryAfterMs?: number };

export interface SubmitOptions {
  /** Sent as `Idempotency-Key`; must match `^[A-Za-z0-9_\-:.]{1,255}$`. Use the gateway job id. */
  idempotencyKey: string;
  /** Sent as `callback_id` (overrides any value in the body). Use the gateway job id. */
  callbackId: string;
  callbackUrl?: string;
}

export type UpstreamStatus = 'pending' | 'processing' | 'completed' | 'failed' | 'not_found';

/** A video's or translation's state as read from HeyGen. */
export interface UpstreamJobState {
  id: string;
  status: UpstreamStatus;
  /**
   * Output duration in seconds as a plain decimal string (`"12.4"`), or null when HeyGen
   * did not report one. A `completed` state with a null duration must not be settled as 0.
   */
  durationSeconds: string | null;
  failureCode: string | null;
  failureMessage: string | null;
  callbackId: string | null;
  /** The output's download URL (`video_url`) when HeyGen gave one: it expires, so it is passed on, never stored. */
  outputUrl: string | null;
}

export const AGENT_SESSION_STATUSES = [
  'thinking',
  'waiting_for_input',
  'reviewing',
  'generating',
  'completed',
  'failed',
] as const;
export type AgentSessionStatus = (typeof AGENT_SESSION_STATUSES)[number];

export interface AgentSessionState {
  sessionId: string;
  status: AgentSessionStatus;
  videoId: string | null;
}

export interface HeygenUser {
  billingType: string | null;
  usageBased: {
    includedCredits: string;
    remainingCredits: string;
    spendingCapUsd: string | null;
    spendingCurrentUsd: string | null;
  } | null;
  wallet: { currency: 'usd' | 'credits'; remainingBalance: string } | null;
  /** The whole `/v3/users/me` response body as received. */
  raw: unknown;
}

export interface WebhookEndpointRegistration {
  endpointId: string;
  secret: string;
}

export type WebhookSignatureScheme = 'hmac-sha256-hex' | 'hmac-sha256-base64';

export interface HeygenWebhookEvent {
  eventType: string;
  eventId: string | null;
  /** `video_translate_id`, else `video_id`, else (agent events) `session_id`. */
  upstreamId: string | null;
  sessionId: string | null;
  callbackId: string | null;
  kind: 'video' | 'translation' | 'agent' | 'unknown';
  outcome: 'success' | 'fail' | 'unknown';
}

export interface HeygenLogger {
  warn(obj: object, msg?: string): void;
}

export interface HeygenClientOptions {
  /** Per-attempt timeout, headers and body included. Default 30 000 ms. */
  timeoutMs?: number;
  /** Attempts per call, the first included. Default 4. */
  maxAttempts?: number;
  /** Backoff base for the exponential fallback. Default 500 ms. */
  baseDelayMs?: number;
  /** Cap of the exponential fallback backoff. Default 30 000 ms. */
  maxDelayMs?: number;
  /**
   * Longest `Retry-After` the client waits in-process. A longer one ends the call at once
   * (submit: `unknown` with `retryAfterMs`; reads: retryable HeygenError). Default 60 000 ms.
   */
  maxRetryAfterMs?: number;
  /**
   * Largest answer body read, in bytes (Content-Length or bytes received). A bigger answer is cut off and is a
   * `response_too_large` upstream error: a create ends `unknown`, a read throws a retryable HeygenError. Default 4 MiB.
   */
  maxResponseBytes?: number;
  /** Path of the balance endpoint. Default `/v3/users/me`. */
  userMePath?: string;
  sleep?: (ms: number) => Promise<void>;
  /** Source of jitter in [0, 1). Default Math.random. */
  random?: () => number;
  logger?: HeygenLogger;
  /** Told of every HTTP attempt (metrics, tracing); unset costs nothing. Must not throw. */
  observe?: HeygenObserver;
}

/** One HTTP attempt of a call to HeyGen, as it starts. `op` names the call (`submitJob:AVATAR_VIDEO`, `getVideo`, …). */
export interface HeygenAttempt {
  readonly op: string;
  readonly method: 'GET' | 'POST';
  /** 1 for the first attempt of the call. */
  readonly attempt: number;
}

/** How an attempt ended: HeyGen's HTTP status, or why there is none (or why it was not read). */
export interface HeygenAttemptResult {
  readonly status: number | null;
  readonly error: 'timeout' | 'network_error' | 'response_too_large' | null;
}

/** Called as an attempt starts; the function it returns is called once, as the attempt ends. */
export type HeygenObserver = (attempt: HeygenAttempt) => (result: HeygenAttemptResult) => void;

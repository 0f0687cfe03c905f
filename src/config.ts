// Configuration is read once, validated, and passed to factories; nothing else reads process.env, except the OTLP
// trace exporter, which reads the standard OTEL_EXPORTER_OTLP_* variables (validated here) itself.
import { z } from 'zod';
import type { ClaimMapping, CompanyTokenSettings } from './auth/company-tokens.js';
import { parseCreditSeconds } from './primitives/money.js';
import { DEFAULT_MAX_JSON_DEPTH } from './validation.js';
import type { TracingSettings } from './observability/tracing.js';
import type { QueueSettings } from './jobs/queue.js';

// An empty variable (`FOO=` in an env file) counts as unset.
const optionalString = z.preprocess((v) => (typeof v === 'string' && v.trim() === '' ? undefined : v), z.string().trim().min(1).optional());

const optionalHttpUrl = z.preprocess(
  (v) => (typeof v === 'string' && v.trim() === '' ? undefined : v),
  z.string().trim().url().regex(/^https?:\/\//i, 'must be an http:// or https:// URL').optional(),
);

const envSchema = z.object({
  DATABASE_URL: z.preprocess(
    (v) => (typeof v === 'string' && v.trim() === '' ? undefined : v),
    z.string().trim().regex(/^postgres(ql)?:\/\/[^\s]+$/, 'must be a postgres:// or postgresql:// URL').optional(),
  ),
  DATA_DIR: z.string().trim().min(1).default('./data'),
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  HOST: z.string().default('0.0.0.0'),
  GATEWAY_MASTER_KEY: optionalString,
  /** Previous master keys, comma separated: still accepted for decryption during a rotation. */
  GATEWAY_PREVIOUS_MASTER_KEYS: optionalString,
  JWT_ISSUER: z.string().default('heygen-gateway'),
  JWT_AUDIENCE: z.string().default('heygen-gateway'),
  JWT_JWKS_URL: optionalString,
  HEYGEN_BASE_URL: z.string().url().default('https://api.heygen.com'),
  PUBLIC_URL: optionalString,
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  NODE_ENV: z.string().default('production'),
  WORKERS_ENABLED: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  WORKER_INTERVAL_MS: z.coerce.number().int().min(10).default(1000),
  POLL_MIN_INTERVAL_MS: z.coerce.number().int().min(10).default(5000),
  POLL_MAX_INTERVAL_MS: z.coerce.number().int().min(10).default(300000),
  HEYGEN_TIMEOUT_MS: z.coerce.number().int().min(10).default(30000),
  HEYGEN_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(10).default(3),
  /** Largest HeyGen answer read; a bigger one is cut off and treated as an upstream error (the job stays recoverable). */
  HEYGEN_MAX_RESPONSE_BYTES: z.coerce.number().int().min(1024).max(1024 * 1024 * 1024).default(4 * 1024 * 1024),
  /** Largest stored `request` body of a job (its JSON, UTF-8); larger ones are refused at submitJob. */
  JOB_REQUEST_MAX_BYTES: z.coerce.number().int().min(1024).max(16 * 1024 * 1024).default(64 * 1024),
  /** Most key/value tags one job may carry (docs/governance.md). */
  JOB_MAX_TAGS: z.coerce.number().int().min(0).max(100).default(10),
  /** Shortest time between two status reads of one job, whatever asks for them (webhooks, callbacks, the poller); default POLL_MIN_INTERVAL_MS. */
  STATUS_READ_MIN_INTERVAL_MS: z.preprocess((v) => (v === '' ? undefined : v), z.coerce.number().int().min(10).optional()),
  /** A worker pass's reads of one account's jobs at HeyGen (details, sessions, batches) in flight at once. */
  STATUS_READ_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(8),
  /**
   * A per-job callback (unsigned) that makes its job due has this process's worker pass run within this many ms
   * rather than at its next interval; callbacks arriving meanwhile share that pass (read in bulk, settled together).
   */
  CALLBACK_READ_WITHIN_MS: z.coerce.number().int().min(1).max(600_000).default(50),
  HOLD_TTL_HOURS: z.coerce.number().int().min(1).default(48),
  /** A queued job not started this long after its admission expires and its hold is released (docs/governance.md). */
  QUEUE_TTL_SECONDS: z.coerce.number().int().min(1).default(3600),
  /** The queue dispatcher's tick; a freed slot (LISTEN/NOTIFY) wakes it sooner. */
  QUEUE_INTERVAL_MS: z.coerce.number().int().min(10).default(1000),
  /** A job's expected run time for queue estimates, until the account has finished jobs to measure it by. */
  QUEUE_DEFAULT_RUN_SECONDS: z.coerce.number().int().min(1).default(120),
  WEBHOOK_SIGNATURE_HEADER: z.string().default('x-heygen-signature'),
  WEBHOOK_SIGNATURE_SCHEME: z.enum(['hmac-sha256-hex', 'hmac-sha256-base64']).default('hmac-sha256-hex'),
  GRAPHIQL: z.enum(['true', 'false']).optional(),
  DB_POOL_SIZE: z.coerce.number().int().min(1).default(10),
  /**
   * How long a request waits for a database connection (a free pool slot, or a new connection) before it fails
   * as UNAVAILABLE (503). 0 waits as long as it takes: a database that is down refuses at once anyway.
   */
  DB_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(0).default(0),
  /**
   * Service tokens are checked against the database once, then kept in memory while the revocation listener
   * (LISTEN/NOTIFY) is connected; cached tokens are also re-checked against the database this often.
   */
  AUTH_RECHECK_MS: z.coerce.number().int().min(100).default(30_000),
  /**
   * Group commit: admissions of one account arriving while another of its admissions is in flight (in this process)
   * are admitted together in one transaction, in arrival order, up to this many; 1 sends each on its own.
   */
  ADMISSION_GROUP_COMMIT_MAX: z.coerce.number().int().min(1).max(1000).default(64),
  /**
   * Group commit after admission: forwarding's bookkeeping calls, and the followed settlements of one account, that
   * arrive while another is in flight (in this process) go together in one transaction, up to this many; 1: each alone.
   */
  FOLLOW_GROUP_COMMIT_MAX: z.coerce.number().int().min(1).max(1000).default(16),
  /** The revocation listener's heartbeat: a connection that does not answer within it is replaced (requests read the database meanwhile). */
  NOTIFY_HEARTBEAT_MS: z.coerce.number().int().min(100).default(5_000),
  /** Background work that fails (e.g. the database is away) retries with exponential backoff and jitter, capped at this. */
  BACKGROUND_BACKOFF_MAX_MS: z.coerce.number().int().min(10).default(30_000),
  /** How long a worker's claim on a job lasts; default HEYGEN_TIMEOUT_MS × HEYGEN_MAX_ATTEMPTS + 30 s. */
  WORKER_LEASE_MS: z.coerce.number().int().min(1000).optional(),
  // Company identity provider (optional): tokens whose iss is one of JWT_COMPANY_ISSUERS are verified against the JWKS.
  JWT_COMPANY_ISSUERS: optionalString,
  JWT_COMPANY_AUDIENCE: optionalString,
  JWT_COMPANY_ALGORITHMS: z.string().default('RS256,PS256,ES256,EdDSA'),
  JWT_CLOCK_TOLERANCE_SECONDS: z.coerce.number().int().min(0).max(300).default(30),
  JWKS_CACHE_MAX_AGE_MS: z.coerce.number().int().min(1000).default(600_000),
  JWKS_COOLDOWN_MS: z.coerce.number().int().min(0).default(30_000),
  // The console's OIDC sign-in (optional): the company IdP the console redirects to (authorization code + PKCE,
  // public client). Its tokens must be ones the company-token verifier above accepts.
  CONSOLE_OIDC_ISSUER: optionalString,
  CONSOLE_OIDC_CLIENT_ID: optionalString,
  CONSOLE_OIDC_SCOPES: z.string().default('openid profile email'),
  /** Which token of the IdP's answer the console sends as its Bearer: the ID token (audience: the client id) or the access token. */
  CONSOLE_OIDC_TOKEN: z.enum(['id_token', 'access_token']).default('id_token'),
  /** Claim-to-role mappings from configuration, as JSON: [{"claim":"groups","value":"finance","role":"FINANCE"}]. */
  ROLE_MAPPINGS: optionalString,
  // GraphQL hardening.
  INTROSPECTION: z.enum(['true', 'false']).optional(),
  GRAPHQL_MAX_DEPTH: z.coerce.number().int().min(1).default(12),
  GRAPHQL_MAX_ALIASES: z.coerce.number().int().min(0).default(20),
  GRAPHQL_MAX_TOKENS: z.coerce.number().int().min(100).default(3000),
  GRAPHQL_MAX_DIRECTIVES: z.coerce.number().int().min(0).default(20),
  GRAPHQL_MAX_COST: z.coerce.number().int().min(100).default(20_000),
  /** The only cap on a GraphQL body (Yoga's own is off): at most 25 MiB, Yoga's former default. */
  GRAPHQL_MAX_BODY_BYTES: z.coerce.number().int().min(1024).max(25 * 1024 * 1024).default(256 * 1024),
  /** Largest `first`/`last` of a connection; larger pages are refused (VALIDATION_FAILED). */
  GRAPHQL_MAX_SUBSCRIPTIONS_PER_CALLER: z.coerce.number().int().min(0).max(10_000).default(20),
  GRAPHQL_MAX_PAGE_SIZE: z.coerce.number().int().min(1).max(10_000).default(500),
  /** Largest GraphQL answer in bytes; a larger one is replaced by a RESPONSE_TOO_LARGE error. */
  GRAPHQL_MAX_RESPONSE_BYTES: z.coerce.number().int().min(64 * 1024).default(8 * 1024 * 1024),
  /** Deepest nesting of JSON (and GraphQL input values) accepted; deeper input is refused (BAD_USER_INPUT). */
  MAX_JSON_DEPTH: z.coerce.number().int().min(4).max(1000).default(DEFAULT_MAX_JSON_DEPTH),
  RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(0).default(600),
  /** Requests one process serves at once; more are shed (503 OVERLOADED, Retry-After). 0: no bound. */
  HTTP_MAX_IN_FLIGHT: z.coerce.number().int().min(0).max(100_000).default(128),
  /** When set, GET /metrics needs `Authorization: Bearer <METRICS_TOKEN>`. */
  METRICS_TOKEN: optionalString,
  // OpenTelemetry tracing, opt-in: an OTLP/HTTP endpoint turns it on. The standard variables keep their standard
  // meaning; the exporter reads OTEL_EXPORTER_OTLP_* itself (headers, timeout, compression), these are checked here.
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalHttpUrl,
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: optionalHttpUrl,
  OTEL_SDK_DISABLED: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
  OTEL_SERVICE_NAME: z.string().trim().min(1).default('heygen-gateway'),
  OTEL_TRACES_SAMPLER: z
    .enum(['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'])
    .default('parentbased_always_on'),
  /** Ratio of traces kept by the traceidratio samplers, 0 to 1. */
  OTEL_TRACES_SAMPLER_ARG: z.preprocess((v) => (v === '' ? undefined : v), z.coerce.number().min(0).max(1).default(1)),
  /** Path of HeyGen's balance endpoint (the seed wrote /v3/user/me; the v3 spec says /v3/users/me). */
  HEYGEN_USER_ME_PATH: z.string().regex(/^\/[A-Za-z0-9_\-./]*$/, 'must be a path starting with /').default('/v3/users/me'),
  WALLET_SYNC_ENABLED: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  /** How often each account's users/me is read. */
  WALLET_SYNC_INTERVAL_MS: z.coerce.number().int().min(10).default(300_000),
  /** Drift (HeyGen's used − the ledger's settled) above this many credit-seconds is flagged. */
  WALLET_DRIFT_THRESHOLD_CS: z.string().regex(/^\d{1,15}(\.\d{1,6})?$/, 'must be a non-negative decimal of credit-seconds').default('600'),
  /** A project whose overruns (billed beyond its jobs' holds) in a period pass this many credit-seconds is flagged. */
  OVERRUN_FLAG_THRESHOLD_CS: z.string().regex(/^\d{1,15}(\.\d{1,6})?$/, 'must be a non-negative decimal of credit-seconds').default('60'),
  /** Reading the duration of media a job points at (audio_url, a translation's video URL, …), before admission. */
  MEDIA_PROBE_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
  MEDIA_PROBE_MAX_BYTES: z.coerce.number().int().min(4096).max(256 * 1024 * 1024).default(4 * 1024 * 1024),
  /** Let media URLs resolve to loopback, private or link-local addresses (tests; never on a shared network). */
  MEDIA_PROBE_ALLOW_PRIVATE: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
  // App callbacks (a job's own callback_url), delivered from the outbox.
  /** Accept http:// callback URLs (development and tests); otherwise https only. */
  CALLBACK_ALLOW_HTTP: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
  /** Let callback URLs reach loopback, private or link-local addresses (tests; never on a shared network). */
  CALLBACK_ALLOW_PRIVATE: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
  /** Time limit of one delivery attempt. */
  CALLBACK_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
  /** Attempts per callback before it is given up (DEAD). */
  CALLBACK_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(12),
  /** Delay before the second attempt, doubled per failure (with jitter) up to CALLBACK_RETRY_MAX_MS. */
  CALLBACK_RETRY_BASE_MS: z.coerce.number().int().min(10).default(10_000),
  CALLBACK_RETRY_MAX_MS: z.coerce.number().int().min(10).default(3_600_000),
  /** Bytes of a receiver's answer read at most. */
  CALLBACK_MAX_RESPONSE_BYTES: z.coerce.number().int().min(0).max(1024 * 1024).default(64 * 1024),
  /** Attempts per notification-channel delivery before it is given up (DEAD); URLs follow the CALLBACK_* rules. */
  NOTIFY_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(12),
  /** How often each process checks the accounts' pool run-out forecasts (pool.run_out_forecast; 0: never). */
  FORECAST_ALERT_INTERVAL_MS: z.coerce.number().int().min(0).default(900_000),
  /** How often the process gives the memory malloc keeps freed back to the system (glibc only; 0: never). */
  MEMORY_TRIM_INTERVAL_MS: z.coerce.number().int().min(0).default(1000),
  /** How often each process looks for due outbox events. */
  OUTBOX_INTERVAL_MS: z.coerce.number().int().min(10).default(1000),
  /** Events claimed per pass, and deliveries in flight at once per process. */
  OUTBOX_BATCH_SIZE: z.coerce.number().int().min(1).max(1000).default(50),
  OUTBOX_CONCURRENCY: z.coerce.number().int().min(1).max(100).default(8),
});

/** Every environment variable the gateway reads (.env.example lists each one; README's table the important ones). */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(envSchema.shape);

/** Limits on one GraphQL request (src/http/hardening.ts applies them). */
export interface GraphQLLimits {
  readonly maxDepth: number;
  readonly maxAliases: number;
  readonly maxTokens: number;
  readonly maxDirectives: number;
  readonly maxCost: number;
  readonly introspection: boolean;
}

export interface Config {
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly port: number;
  readonly host: string;
  readonly masterKey: string | undefined;
  readonly previousMasterKeys: readonly string[];
  readonly jwt: { readonly issuer: string; readonly audience: string; readonly jwksUrl: string | undefined };
  readonly heygenBaseUrl: string;
  /** The URL HeyGen should call back (webhooks); unset → per-job callback_url is not sent. */
  readonly publicUrl: string | undefined;
  readonly logLevel: string;
  readonly production: boolean;
  readonly workers: {
    readonly enabled: boolean;
    readonly intervalMs: number;
    readonly pollMinIntervalMs: number;
    readonly pollMaxIntervalMs: number;
    /** Shortest time between two status reads of one job (coalesces webhooks and callbacks across processes). */
    readonly statusReadMinIntervalMs: number;
    /** STATUS_READ_CONCURRENCY. */
    readonly statusReadConcurrency: number;
    /** CALLBACK_READ_WITHIN_MS. */
    readonly callbackReadWithinMs: number;
    /** Cap of the backoff of a failing background pass. */
    readonly backoffMaxMs: number;
    /** How long a claim on a job lasts before another worker may take it (longer than one forwarding). */
    readonly leaseMs: number;
    /** FOLLOW_GROUP_COMMIT_MAX. */
    readonly groupCommitMax: number;
  };
  readonly heygen: {
    readonly timeoutMs: number;
    readonly maxAttempts: number;
    readonly userMePath: string;
    /** Largest HeyGen answer body read, in bytes. */
    readonly maxResponseBytes: number;
  };
  /** Largest job `request` body stored, in bytes of JSON. */
  readonly jobRequestMaxBytes: number;
  readonly jobMaxTags: number;
  readonly walletSync: { readonly enabled: boolean; readonly intervalMs: number; readonly driftThresholdMicroCs: bigint };
  readonly holdTtlHours: number;
  /** The fair job queue in front of each account's concurrency limit (src/jobs/queue.ts). */
  readonly queue: QueueSettings;
  /** Overruns of one project in one period above this are flagged to ADMIN and FINANCE (`overrunFlags`). */
  readonly overrunFlagThresholdMicroCs: bigint;
  readonly webhookSignature: { readonly header: string; readonly scheme: 'hmac-sha256-hex' | 'hmac-sha256-base64' };
  readonly graphiql: boolean;
  readonly dbPoolSize: number;
  readonly dbConnectTimeoutMs: number;
  readonly authRecheckMs: number;
  readonly admissionGroupCommitMax: number;
  readonly notifyHeartbeatMs: number;
  readonly metricsToken: string | undefined;
  /** Requests served at once by this process (probes excepted); more are shed with 503 OVERLOADED. 0: no bound. */
  readonly httpMaxInFlight: number;
  readonly companyTokens: CompanyTokenSettings | null;
  readonly roleMappings: readonly ClaimMapping[];
  /** The console's OIDC sign-in; null: the console offers token sign-in only. */
  readonly consoleOidc: ConsoleOidcSettings | null;
  readonly graphql: GraphQLLimits & {
    readonly maxBodyBytes: number;
    readonly rateLimitPerMinute: number;
    readonly maxPageSize: number;
    readonly maxResponseBytes: number;
    readonly maxJsonDepth: number;
    /** Open subscriptions (SSE streams) one caller may hold on one process; 0 turns subscriptions off. */
    readonly maxSubscriptionsPerCaller: number;
  };
  readonly mediaProbe: { readonly timeoutMs: number; readonly maxBytes: number; readonly allowPrivate: boolean };
  /** App callbacks: which URLs a job may name, and how deliveries are made and retried. */
  readonly callbacks: {
    readonly allowHttp: boolean;
    readonly allowPrivate: boolean;
    readonly timeoutMs: number;
    readonly maxAttempts: number;
    readonly retryBaseMs: number;
    readonly retryMaxMs: number;
    readonly maxResponseBytes: number;
  };
  /** Notification channels (docs/notifications.md): URLs, time limits and retries follow `callbacks`. */
  readonly notifications: { readonly maxAttempts: number };
  /** The outbox delivery loop (runs where the workers run: WORKERS_ENABLED). */
  readonly outbox: { readonly intervalMs: number; readonly batchSize: number; readonly concurrency: number };
  /** How often pool run-out forecasts are checked (0: never). */
  readonly forecastAlertIntervalMs: number;
  /** How often freed native memory is trimmed (src/background/memory-trim.ts; 0: never). */
  readonly memoryTrimIntervalMs: number;
  /** OpenTelemetry tracing (docs/observability.md); off unless an OTLP endpoint is set. */
  readonly tracing: TracingSettings;
}

export class ConfigError extends Error {}

/** `requireMasterKey: false` for tools that touch no secret (migrations). */
export function loadConfig(env: Record<string, string | undefined> = process.env, opts: { requireMasterKey?: boolean } = {}): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  if (e.DATABASE_URL && !e.GATEWAY_MASTER_KEY && opts.requireMasterKey !== false) {
    throw new ConfigError('Invalid configuration:\n  GATEWAY_MASTER_KEY: required when DATABASE_URL is set');
  }
  const production = e.NODE_ENV === 'production';
  // A claim must outlast one forwarding (every attempt timing out), or two workers could send the same job at once.
  const forwardingMs = e.HEYGEN_TIMEOUT_MS * e.HEYGEN_MAX_ATTEMPTS;
  if (e.WORKER_LEASE_MS !== undefined && e.WORKER_LEASE_MS <= forwardingMs) {
    throw new ConfigError(`Invalid configuration:\n  WORKER_LEASE_MS: must exceed HEYGEN_TIMEOUT_MS × HEYGEN_MAX_ATTEMPTS (${forwardingMs})`);
  }
  return {
    databaseUrl: e.DATABASE_URL,
    dataDir: e.DATA_DIR,
    port: e.PORT,
    host: e.HOST,
    masterKey: e.GATEWAY_MASTER_KEY,
    previousMasterKeys: (e.GATEWAY_PREVIOUS_MASTER_KEYS ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    jwt: { issuer: e.JWT_ISSUER, audience: e.JWT_AUDIENCE, jwksUrl: e.JWT_JWKS_URL },
    heygenBaseUrl: e.HEYGEN_BASE_URL,
    publicUrl: e.PUBLIC_URL,
    logLevel: e.LOG_LEVEL,
    production,
    workers: {
      enabled: e.WORKERS_ENABLED,
      intervalMs: e.WORKER_INTERVAL_MS,
      pollMinIntervalMs: e.POLL_MIN_INTERVAL_MS,
      pollMaxIntervalMs: e.POLL_MAX_INTERVAL_MS,
      statusReadMinIntervalMs: e.STATUS_READ_MIN_INTERVAL_MS ?? e.POLL_MIN_INTERVAL_MS,
      statusReadConcurrency: e.STATUS_READ_CONCURRENCY,
      callbackReadWithinMs: e.CALLBACK_READ_WITHIN_MS,
      backoffMaxMs: e.BACKGROUND_BACKOFF_MAX_MS,
      leaseMs: e.WORKER_LEASE_MS ?? forwardingMs + 30_000,
      groupCommitMax: e.FOLLOW_GROUP_COMMIT_MAX,
    },
    heygen: {
      timeoutMs: e.HEYGEN_TIMEOUT_MS,
      maxAttempts: e.HEYGEN_MAX_ATTEMPTS,
      userMePath: e.HEYGEN_USER_ME_PATH,
      maxResponseBytes: e.HEYGEN_MAX_RESPONSE_BYTES,
    },
    jobRequestMaxBytes: e.JOB_REQUEST_MAX_BYTES,
    jobMaxTags: e.JOB_MAX_TAGS,
    walletSync: {
      enabled: e.WALLET_SYNC_ENABLED,
      intervalMs: e.WALLET_SYNC_INTERVAL_MS,
      driftThresholdMicroCs: parseCreditSeconds(e.WALLET_DRIFT_THRESHOLD_CS),
    },
    holdTtlHours: e.HOLD_TTL_HOURS,
    queue: { ttlMs: e.QUEUE_TTL_SECONDS * 1000, intervalMs: e.QUEUE_INTERVAL_MS, holdTtlHours: e.HOLD_TTL_HOURS, defaultRunSeconds: e.QUEUE_DEFAULT_RUN_SECONDS },
    overrunFlagThresholdMicroCs: parseCreditSeconds(e.OVERRUN_FLAG_THRESHOLD_CS),
    webhookSignature: { header: e.WEBHOOK_SIGNATURE_HEADER.toLowerCase(), scheme: e.WEBHOOK_SIGNATURE_SCHEME },
    graphiql: e.GRAPHIQL ? e.GRAPHIQL === 'true' : !production,
    dbPoolSize: e.DB_POOL_SIZE,
    dbConnectTimeoutMs: e.DB_CONNECT_TIMEOUT_MS,
    authRecheckMs: e.AUTH_RECHECK_MS,
    admissionGroupCommitMax: e.ADMISSION_GROUP_COMMIT_MAX,
    notifyHeartbeatMs: e.NOTIFY_HEARTBEAT_MS,
    metricsToken: e.METRICS_TOKEN,
    httpMaxInFlight: e.HTTP_MAX_IN_FLIGHT,
    companyTokens: companyTokenSettings(e),
    roleMappings: parseRoleMappings(e.ROLE_MAPPINGS),
    consoleOidc: consoleOidcSettings(e),
    graphql: {
      maxDepth: e.GRAPHQL_MAX_DEPTH,
      maxAliases: e.GRAPHQL_MAX_ALIASES,
      maxTokens: e.GRAPHQL_MAX_TOKENS,
      maxDirectives: e.GRAPHQL_MAX_DIRECTIVES,
      maxCost: e.GRAPHQL_MAX_COST,
      introspection: e.INTROSPECTION ? e.INTROSPECTION === 'true' : !production,
      maxBodyBytes: e.GRAPHQL_MAX_BODY_BYTES,
      rateLimitPerMinute: e.RATE_LIMIT_PER_MINUTE,
      maxPageSize: e.GRAPHQL_MAX_PAGE_SIZE,
      maxResponseBytes: e.GRAPHQL_MAX_RESPONSE_BYTES,
      maxJsonDepth: e.MAX_JSON_DEPTH,
      maxSubscriptionsPerCaller: e.GRAPHQL_MAX_SUBSCRIPTIONS_PER_CALLER,
    },
    mediaProbe: { timeoutMs: e.MEDIA_PROBE_TIMEOUT_MS, maxBytes: e.MEDIA_PROBE_MAX_BYTES, allowPrivate: e.MEDIA_PROBE_ALLOW_PRIVATE },
    callbacks: {
      allowHttp: e.CALLBACK_ALLOW_HTTP,
      allowPrivate: e.CALLBACK_ALLOW_PRIVATE,
      timeoutMs: e.CALLBACK_TIMEOUT_MS,
      maxAttempts: e.CALLBACK_MAX_ATTEMPTS,
      retryBaseMs: e.CALLBACK_RETRY_BASE_MS,
      retryMaxMs: Math.max(e.CALLBACK_RETRY_MAX_MS, e.CALLBACK_RETRY_BASE_MS),
      maxResponseBytes: e.CALLBACK_MAX_RESPONSE_BYTES,
    },
    notifications: { maxAttempts: e.NOTIFY_MAX_ATTEMPTS },
    outbox: { intervalMs: e.OUTBOX_INTERVAL_MS, batchSize: e.OUTBOX_BATCH_SIZE, concurrency: e.OUTBOX_CONCURRENCY },
    forecastAlertIntervalMs: e.FORECAST_ALERT_INTERVAL_MS,
    memoryTrimIntervalMs: e.MEMORY_TRIM_INTERVAL_MS,
    tracing: {
      enabled: !e.OTEL_SDK_DISABLED && !!(e.OTEL_EXPORTER_OTLP_ENDPOINT ?? e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
      serviceName: e.OTEL_SERVICE_NAME,
      sampler: e.OTEL_TRACES_SAMPLER,
      samplerRatio: e.OTEL_TRACES_SAMPLER_ARG,
    },
  };
}

type Env = z.infer<typeof envSchema>;

function list(value: string | undefined): string[] {
  return (value ?? '').split(',').map((v) => v.trim()).filter(Boolean);
}

function companyTokenSettings(e: Env): CompanyTokenSettings | null {
  if (!e.JWT_JWKS_URL) return null;
  const issuers = list(e.JWT_COMPANY_ISSUERS);
  if (issuers.length === 0) throw new ConfigError('Invalid configuration:\n  JWT_COMPANY_ISSUERS: required with JWT_JWKS_URL');
  if (issuers.includes(e.JWT_ISSUER)) throw new ConfigError('Invalid configuration:\n  JWT_COMPANY_ISSUERS: must differ from JWT_ISSUER');
  const algorithms = list(e.JWT_COMPANY_ALGORITHMS);
  if (algorithms.some((a) => /^HS|^none$/i.test(a))) {
    throw new ConfigError('Invalid configuration:\n  JWT_COMPANY_ALGORITHMS: only asymmetric algorithms are allowed');
  }
  return {
    jwksUrl: e.JWT_JWKS_URL,
    issuers,
    audience: e.JWT_COMPANY_AUDIENCE ?? e.JWT_AUDIENCE,
    algorithms,
    clockToleranceSeconds: e.JWT_CLOCK_TOLERANCE_SECONDS,
    cacheMaxAgeMs: e.JWKS_CACHE_MAX_AGE_MS,
    cooldownMs: e.JWKS_COOLDOWN_MS,
    timeoutMs: 5000,
  };
}

export interface ConsoleOidcSettings {
  /** The issuer identifier, exactly as the IdP's discovery document and tokens name it. */
  readonly issuer: string;
  readonly clientId: string;
  readonly scopes: readonly string[];
  readonly token: 'id_token' | 'access_token';
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

function consoleOidcSettings(e: Env): ConsoleOidcSettings | null {
  const fail = (message: string): never => {
    throw new ConfigError(`Invalid configuration:\n  ${message}`);
  };
  if (!e.CONSOLE_OIDC_ISSUER) {
    if (e.CONSOLE_OIDC_CLIENT_ID) fail('CONSOLE_OIDC_ISSUER: required with CONSOLE_OIDC_CLIENT_ID');
    return null;
  }
  const issuer = e.CONSOLE_OIDC_ISSUER;
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    return fail('CONSOLE_OIDC_ISSUER: must be a URL');
  }
  // Plain http only for an IdP on this machine (development, tests): the browser talks to it directly.
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))) {
    fail('CONSOLE_OIDC_ISSUER: must be https (http only on localhost)');
  }
  if (url.search || url.hash || url.username || url.password) fail('CONSOLE_OIDC_ISSUER: no query, fragment or credentials');
  if (!e.CONSOLE_OIDC_CLIENT_ID) fail('CONSOLE_OIDC_CLIENT_ID: required with CONSOLE_OIDC_ISSUER');
  const clientId = e.CONSOLE_OIDC_CLIENT_ID!;
  // The console's sign-in is only useful when the gateway accepts what it brings back.
  if (!e.JWT_JWKS_URL || !list(e.JWT_COMPANY_ISSUERS).includes(issuer)) {
    fail('CONSOLE_OIDC_ISSUER: must be one of JWT_COMPANY_ISSUERS (company tokens configured with JWT_JWKS_URL)');
  }
  const scopes = e.CONSOLE_OIDC_SCOPES.split(/[\s,]+/).filter(Boolean);
  if (!scopes.includes('openid')) fail('CONSOLE_OIDC_SCOPES: must include openid');
  // An ID token's audience is the client id: the gateway must expect exactly that.
  if (e.CONSOLE_OIDC_TOKEN === 'id_token' && (e.JWT_COMPANY_AUDIENCE ?? e.JWT_AUDIENCE) !== clientId) {
    fail('JWT_COMPANY_AUDIENCE: must equal CONSOLE_OIDC_CLIENT_ID when CONSOLE_OIDC_TOKEN=id_token');
  }
  return { issuer, clientId, scopes, token: e.CONSOLE_OIDC_TOKEN };
}

const roleMappingsSchema = z.array(
  z.object({
    claim: z.string().min(1),
    value: z.string().min(1),
    role: z.enum(['ADMIN', 'FINANCE', 'MANAGER', 'MEMBER']),
    orgUnitId: z.string().uuid().nullable().default(null),
  }),
);

function parseRoleMappings(text: string | undefined): ClaimMapping[] {
  if (!text) return [];
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ConfigError('Invalid configuration:\n  ROLE_MAPPINGS: must be JSON');
  }
  const parsed = roleMappingsSchema.safeParse(json);
  if (!parsed.success) throw new ConfigError(`Invalid configuration:\n  ROLE_MAPPINGS: ${parsed.error.issues[0]?.message}`);
  for (const m of parsed.data) {
    if ((m.role === 'MANAGER' || m.role === 'MEMBER') !== (m.orgUnitId !== null)) {
      throw new ConfigError('Invalid configuration:\n  ROLE_MAPPINGS: MANAGER and MEMBER need an orgUnitId, other roles none');
    }
  }
  return parsed.data;
}

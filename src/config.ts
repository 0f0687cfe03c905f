// Configuration is read once, validated, and passed to factories; nothing else reads process.env.
import { z } from 'zod';
import { parseCreditSeconds } from './billing/money.js';

const optionalString = z.string().trim().min(1).optional();

const envSchema = z.object({
  DATABASE_URL: optionalString,
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
  HOLD_TTL_HOURS: z.coerce.number().int().min(1).default(48),
  WEBHOOK_SIGNATURE_HEADER: z.string().default('x-heygen-signature'),
  WEBHOOK_SIGNATURE_SCHEME: z.enum(['hmac-sha256-hex', 'hmac-sha256-base64']).default('hmac-sha256-hex'),
  GRAPHIQL: z.enum(['true', 'false']).optional(),
  DB_POOL_SIZE: z.coerce.number().int().min(1).default(10),
  /** Path of HeyGen's balance endpoint (the seed wrote /v3/user/me; the v3 spec says /v3/users/me). */
  HEYGEN_USER_ME_PATH: z.string().regex(/^\/[A-Za-z0-9_\-./]*$/, 'must be a path starting with /').default('/v3/users/me'),
  WALLET_SYNC_ENABLED: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  /** How often each account's users/me is read. */
  WALLET_SYNC_INTERVAL_MS: z.coerce.number().int().min(10).default(300_000),
  /** Drift (HeyGen's used − the ledger's settled) above this many credit-seconds is flagged. */
  WALLET_DRIFT_THRESHOLD_CS: z.string().regex(/^\d{1,15}(\.\d{1,6})?$/, 'must be a non-negative decimal of credit-seconds').default('600'),
});

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
  };
  readonly heygen: { readonly timeoutMs: number; readonly maxAttempts: number; readonly userMePath: string };
  readonly walletSync: { readonly enabled: boolean; readonly intervalMs: number; readonly driftThresholdMicroCs: bigint };
  readonly holdTtlHours: number;
  readonly webhookSignature: { readonly header: string; readonly scheme: 'hmac-sha256-hex' | 'hmac-sha256-base64' };
  readonly graphiql: boolean;
  readonly dbPoolSize: number;
}

export class ConfigError extends Error {}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  if (e.DATABASE_URL && !e.GATEWAY_MASTER_KEY) {
    throw new ConfigError('Invalid configuration:\n  GATEWAY_MASTER_KEY: required when DATABASE_URL is set');
  }
  const production = e.NODE_ENV === 'production';
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
    },
    heygen: { timeoutMs: e.HEYGEN_TIMEOUT_MS, maxAttempts: e.HEYGEN_MAX_ATTEMPTS, userMePath: e.HEYGEN_USER_ME_PATH },
    walletSync: {
      enabled: e.WALLET_SYNC_ENABLED,
      intervalMs: e.WALLET_SYNC_INTERVAL_MS,
      driftThresholdMicroCs: parseCreditSeconds(e.WALLET_DRIFT_THRESHOLD_CS),
    },
    holdTtlHours: e.HOLD_TTL_HOURS,
    webhookSignature: { header: e.WEBHOOK_SIGNATURE_HEADER.toLowerCase(), scheme: e.WEBHOOK_SIGNATURE_SCHEME },
    graphiql: e.GRAPHIQL ? e.GRAPHIQL === 'true' : !production,
    dbPoolSize: e.DB_POOL_SIZE,
  };
}

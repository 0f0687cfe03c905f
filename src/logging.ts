// Structured logs. Secrets never reach a log line: known secret-bearing keys are redacted wherever they sit, every
// string (message and fields) goes through the one redaction of src/secrets/redact.ts, and code never logs a
// decrypted key in the first place. Database errors are logged without their SQL text or parameters (a query's
// parameters are caller input and may hold anything).
import { pino, type Logger, type DestinationStream } from 'pino';
import { redactSecrets } from './secrets/redact.js';

export type { Logger };

const REDACT_PATHS = [
  'apiKey', '*.apiKey', '*.*.apiKey',
  'api_key', '*.api_key',
  'secret', '*.secret', '*.*.secret',
  'webhookSecret', '*.webhookSecret', '*.*.webhookSecret',
  'token', '*.token',
  'authorization', '*.authorization', '*.headers.authorization', '*.headers["x-api-key"]',
  'req.headers.authorization', 'req.headers["x-api-key"]',
  'masterKey', '*.masterKey',
];

/** Fields of driver errors that carry SQL text, parameters or row values. */
const UNSAFE_ERROR_FIELDS = new Set(['query', 'params', 'parameters', 'detail', 'where', 'internalQuery', 'internalPosition', 'position', 'hint']);
/** Fields of driver errors worth keeping: what failed, not with which values. */
const SAFE_ERROR_FIELDS = ['code', 'severity', 'constraint', 'table', 'column', 'schema', 'routine', 'dataType'] as const;

const SQL_MESSAGE = /^Failed query:/;

/**
 * An error as a log field: type, redacted message, stack frames, a few safe driver fields and its cause.
 * drizzle's DrizzleQueryError puts the whole query and its parameters in its message; that message is replaced.
 */
export function serializeError(error: unknown, depth = 0): unknown {
  if (!(error instanceof Error)) {
    // Strings and objects that are not errors (or were serialized already by the line formatter) are scrubbed.
    return typeof error === 'object' && error !== null ? scrub(error, 1) : typeof error === 'string' ? redactSecrets(error) : error;
  }
  const record = error as Error & Record<string, unknown>;
  const sqlError = SQL_MESSAGE.test(error.message) || 'query' in record;
  const message = sqlError ? 'database query failed' : redactSecrets(error.message);
  const out: Record<string, unknown> = { type: error.name || error.constructor?.name, message };
  for (const field of SAFE_ERROR_FIELDS) {
    const value = record[field];
    if (typeof value === 'string' || typeof value === 'number') out[field] = typeof value === 'string' ? redactSecrets(value) : value;
  }
  // Frames only: the first line of a stack repeats the message.
  if (typeof error.stack === 'string') out.stack = error.stack.split('\n').filter((line) => /^\s+at /.test(line)).join('\n');
  if (error.cause !== undefined && depth < 3) out.cause = serializeError(error.cause, depth + 1);
  return out;
}

function scrub(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return redactSecrets(value);
  if (value instanceof Error) return serializeError(value);
  if (depth >= 6 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) if (!UNSAFE_ERROR_FIELDS.has(key)) out[key] = scrub(v, depth + 1);
  return out;
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'heygen-gateway' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: { err: serializeError, error: serializeError },
      formatters: {
        // Every field of every line, after the serializers above: no string leaves with a known secret in it.
        log: (object) => scrub(object, 0) as Record<string, unknown>,
      },
      hooks: {
        // The message itself (and any printf-style arguments).
        logMethod(args, method) {
          return method.apply(this, args.map((a) => (typeof a === 'string' ? redactSecrets(a) : a)) as Parameters<typeof method>);
        },
      },
    },
    destination,
  );
}

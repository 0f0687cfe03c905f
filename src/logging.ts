// Structured logs. Secrets never reach a log line: known secret-bearing keys are redacted wherever they sit,
// and code never logs a decrypted key in the first place.
import { pino, type Logger, type DestinationStream } from 'pino';

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

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'heygen-gateway' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: { err: pino.stdSerializers.err },
    },
    destination,
  );
}

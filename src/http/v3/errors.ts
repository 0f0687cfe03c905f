// HeyGen's v3 error envelope, `{"error":{"code","message","param","doc_url"}}`, and the one mapping from the
// gateway's typed errors to it. Every /v3 answer that is not a success goes through here: no stack trace, no
// driver text, no secret (messages are redacted).
import { redactSecrets } from '../../secrets/redact.js';
import { UNAVAILABLE_RETRY_AFTER_SECONDS } from '../unavailable.js';

export interface V3ErrorBody {
  error: { code: string; message: string; param: string | null; doc_url: string | null };
}

/** A v3 error answer with its HTTP status (and headers such as Retry-After). */
export class V3Error extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'V3Error';
  }

  body(): V3ErrorBody {
    return { error: { code: this.code, message: redactSecrets(this.message), param: this.param, doc_url: null } };
  }

  response(): Response {
    return Response.json(this.body(), { status: this.status, headers: this.headers });
  }
}

export const unauthorized = () => new V3Error(401, 'unauthorized', 'Missing or invalid X-Api-Key');
export const notFound = (what: string) => new V3Error(404, 'not_found', `${what} not found`);
export const validation = (param: string | null, message: string) => new V3Error(400, 'validation_error', message, param);
export const unavailable = (message: string, retryAfterSeconds = UNAVAILABLE_RETRY_AFTER_SECONDS) =>
  new V3Error(503, 'service_unavailable', message, null, { 'retry-after': String(retryAfterSeconds) });
export const internal = () => new V3Error(500, 'internal_error', 'Internal server error');
export const notImplemented = (method: string, path: string) =>
  new V3Error(501, 'not_implemented', `${method} ${path} is a HeyGen v3 operation this gateway does not offer; it is not passed on to HeyGen`);

/** HTTP status of a HeyGen error code (a refusal HeyGen gave when the job was forwarded, replayed from the job). */
export function statusOfHeygenCode(code: string): number {
  switch (code) {
    case 'unauthorized':
      return 401;
    case 'insufficient_credit':
      return 402;
    case 'forbidden':
      return 403;
    case 'not_found':
    case 'asset_not_available':
      return 404;
    case 'conflict':
    case 'request_in_progress':
      return 409;
    case 'payload_too_large':
      return 413;
    case 'rate_limit_exceeded':
      return 429;
    default:
      return 400;
  }
}

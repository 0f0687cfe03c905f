// Errors of the HeyGen client, shared by its parts.
import type { z } from 'zod';

/** A status read or registration that failed for good. `retryable` says whether trying later may help. */
export class HeygenError extends Error {
  override name = 'HeygenError';
  readonly httpStatus: number | null;
  readonly code: string;
  readonly retryable: boolean;

  constructor(message: string, details: { httpStatus: number | null; code: string; retryable: boolean }) {
    super(message);
    this.httpStatus = details.httpStatus;
    this.code = details.code;
    this.retryable = details.retryable;
  }
}

/** The first issue of a zod error, as `path: message` (never the value, which may hold anything HeyGen sent). */
export function describeIssues(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid';
  const path = issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)';
  return `${path}: ${issue.message}`;
}

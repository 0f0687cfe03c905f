// A database that is away (restart, failover, network cut) is a retryable condition, not a server bug:
// GraphQL answers `extensions.code: UNAVAILABLE` with HTTP 503 and Retry-After, other routes 503 with Retry-After.
// Whether an error means that is decided in one place: isDatabaseUnavailable (src/db/client.ts).
import { GraphQLError } from 'graphql';

/** What callers are told to wait before retrying; a restart of PostgreSQL takes a few seconds. */
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 2;
const MESSAGE = 'the database is temporarily unavailable; retry the request (with the same idempotencyKey for submitJob)';

export function unavailableGraphQLError(): GraphQLError {
  return new GraphQLError(MESSAGE, {
    extensions: {
      code: 'UNAVAILABLE',
      retryAfterSeconds: UNAVAILABLE_RETRY_AFTER_SECONDS,
      http: { status: 503, headers: { 'Retry-After': String(UNAVAILABLE_RETRY_AFTER_SECONDS) } },
    },
  });
}

export function unavailableResponse(): Response {
  return Response.json(
    { error: MESSAGE, code: 'UNAVAILABLE', retryAfterSeconds: UNAVAILABLE_RETRY_AFTER_SECONDS },
    { status: 503, headers: { 'retry-after': String(UNAVAILABLE_RETRY_AFTER_SECONDS) } },
  );
}

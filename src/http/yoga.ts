// The GraphQL endpoint: identity is resolved once per request, in the context factory.
import { randomUUID } from 'node:crypto';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import { GraphQLError } from 'graphql';
import { schema } from '../graphql/schema.js';
import { createLoaders, type GraphQLContext } from '../graphql/context.js';
import { AuthenticationError } from '../auth/tokens.js';
import { DomainError } from '../errors.js';
import { armorPlugins, RequestRateLimiter } from './hardening.js';
import { unavailableGraphQLError } from './unavailable.js';
import { driverReason, isDatabaseUnavailable } from '../db/client.js';
import type { Services } from '../app.js';

/** graphql-js writes `got invalid value <the whole input>`; the input may hold an API key. */
export function redactValues(message: string): string {
  return message.replace(/got invalid value [\s\S]*?(; |$)/g, 'got an invalid value$1');
}

function withoutValues(error: GraphQLError): GraphQLError {
  const message = redactValues(error.message);
  if (message === error.message) return error;
  return new GraphQLError(message, { nodes: error.nodes, path: error.path, extensions: error.extensions });
}

function summarise(args: unknown[]): unknown[] {
  return args.map((arg) => {
    if (typeof arg === 'string') return redactValues(arg);
    if (arg instanceof Error) {
      return { name: arg.name, message: redactValues(arg.message), code: (arg as GraphQLError).extensions?.code };
    }
    return '[object]';
  });
}

/** The caller's X-Request-Id when it is a sane token, else a fresh one (it is stored in the audit trail). */
function safeRequestId(header: string | null): string {
  return header && /^[A-Za-z0-9._:-]{1,100}$/.test(header) ? header : randomUUID();
}

function unauthenticated(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'UNAUTHENTICATED', http: { status: 401, headers: { 'WWW-Authenticate': 'Bearer' } } } });
}

export function createGraphQLServer(services: Services): YogaServerInstance<Record<string, unknown>, GraphQLContext> {
  const limiter = new RequestRateLimiter(services.config.graphql.rateLimitPerMinute, 60_000);
  return createYoga<Record<string, unknown>, GraphQLContext>({
    schema,
    graphqlEndpoint: '/graphql',
    graphiql: services.config.graphiql,
    plugins: armorPlugins(services.config.graphql),
    landingPage: false,
    // Unexpected errors are masked: their messages may carry driver details. Never turned off.
    // Expected failures outside a result union (e.g. a bad argument on a query field) keep their code.
    maskedErrors: {
      isDev: false,
      maskError: (error, message) => {
        const original = error instanceof GraphQLError ? error.originalError : error;
        if (original instanceof DomainError) {
          return new GraphQLError(original.message, { extensions: { code: original.code } });
        }
        // The database is away: retryable, logged by the pool's listener, never an INTERNAL_SERVER_ERROR.
        if (isDatabaseUnavailable(error)) return unavailableGraphQLError();
        // Validation and coercion errors: graphql-js quotes the offending variable value, which may be a secret.
        if (error instanceof GraphQLError && !error.originalError) return withoutValues(error);
        if (error instanceof GraphQLError && error.originalError instanceof GraphQLError) return withoutValues(error.originalError);
        services.logger.error({ err: original }, 'unexpected error in a GraphQL request');
        return new GraphQLError(message, { extensions: { code: 'INTERNAL_SERVER_ERROR' } });
      },
    },
    // Yoga's own log lines may carry request parameters; only their text and error summaries are kept.
    logging: {
      debug: (...args) => services.logger.debug({ yoga: summarise(args) }, 'yoga'),
      info: (...args) => services.logger.info({ yoga: summarise(args) }, 'yoga'),
      warn: (...args) => services.logger.warn({ yoga: summarise(args) }, 'yoga'),
      // A database that is away is an operational condition (the pool logs each lost connection): warn, and no SQL.
      error: (...args) => {
        const unavailable = args.find(isDatabaseUnavailable);
        if (unavailable) services.logger.warn({ code: 'UNAVAILABLE', reason: driverReason(unavailable) }, 'GraphQL request failed: the database is unavailable');
        else services.logger.error({ yoga: summarise(args) }, 'yoga');
      },
    },
    context: async ({ request }): Promise<GraphQLContext> => {
      const header = request.headers.get('authorization') ?? '';
      const match = /^Bearer\s+(\S+)$/i.exec(header);
      if (!match) throw unauthenticated('an Authorization: Bearer <token> header is required');
      let actor;
      try {
        actor = await services.tokens.authenticate(services.db, match[1]!);
      } catch (error) {
        if (error instanceof AuthenticationError) throw unauthenticated(error.message);
        throw error;
      }
      const retryAfter = limiter.take(actor.subject);
      if (retryAfter > 0) {
        throw new GraphQLError('too many requests from this caller', {
          extensions: { code: 'RATE_LIMITED', retryAfterSeconds: retryAfter, http: { status: 429, headers: { 'Retry-After': String(retryAfter) } } },
        });
      }
      const now = new Date();
      const requestId = safeRequestId(request.headers.get('x-request-id'));
      return {
        services,
        db: services.db,
        actor: { ...actor, requestId },
        requestId,
        now,
        loaders: createLoaders(services.db, now),
      };
    },
  });
}

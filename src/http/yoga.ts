// The GraphQL endpoint: identity is resolved once per request, in the context factory.
import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import { GraphQLError } from 'graphql';
import { schema } from '../graphql/schema.js';
import { createLoaders, type GraphQLContext } from '../graphql/context.js';
import { AuthenticationError } from '../auth/tokens.js';
import { DomainError } from '../errors.js';
import { redactSecrets } from '../secrets/redact.js';
import { PothosValidationError } from '@pothos/core';
import { armorPlugins, RequestRateLimiter } from './hardening.js';
import { unavailableGraphQLError } from './unavailable.js';
import { driverReason, isDatabaseUnavailable } from '../db/client.js';
import { graphqlSpans, safeRequestId, type RequestInfo } from './observe.js';
import type { Services } from '../app.js';
import { renderGraphiQLOffline } from './console.js';

/** What the HTTP layer hands Yoga with each request: the request's id and the slot for its caller's subject. */
export interface GraphQLServerContext {
  requestInfo?: RequestInfo;
}

/**
 * graphql-js quotes the caller's values in its validation and coercion messages (`got invalid value <the whole
 * input>`, then again in the reason: `Int cannot represent non-integer value: "<value>"`, `found "<value>"`). A
 * value may be a secret sent in the wrong field, so only the parts that name the schema are kept.
 */
export function withoutInputValues(message: string): string {
  const variable = /^Variable "(\$[_A-Za-z][_0-9A-Za-z]*)" got invalid value /.exec(message);
  if (variable) {
    // The path is printed last before "; ": `at "input.limit"` (schema field names and list indexes only).
    const path = /\sat "(\$?[_A-Za-z][_0-9A-Za-z]*(?:\.[_A-Za-z][_0-9A-Za-z]*|\[\d+\])*)"(?:; |$)/.exec(message);
    return `Variable "${variable[1]}" got an invalid value${path ? ` at "${path[1]}"` : ''}`;
  }
  const argument = /^Argument "([_A-Za-z][_0-9A-Za-z]*)" has invalid value /.exec(message);
  if (argument) return `Argument "${argument[1]}" has an invalid value.`;
  const literal = /^Expected value of type "([^"]{1,200})", found /.exec(message);
  if (literal && /^[_A-Za-z0-9!\[\]]+$/.test(literal[1]!)) return `Expected value of type "${literal[1]}", found an invalid value.`;
  // Syntax errors name the token found: `found String "<value>"`, `Unexpected Name "<value>"`.
  if (message.startsWith('Syntax Error:')) return message.replace(/\s*"(?:[^"\\]|\\.)*"?/g, '').replace(/\s+/g, ' ');
  const enumValue = /^Value "(?:[^"\\]|\\.)*" does not exist in "([_A-Za-z][_0-9A-Za-z]*)" enum\./.exec(message);
  if (enumValue) return `The value does not exist in "${enumValue[1]}" enum.`;
  // Scalar parse errors quote the value after a colon: `Int cannot represent non-integer value: "<value>"`.
  return message.replace(/(value|values): [\s\S]*$/, '$1.');
}

/** A message that may go back to the caller or into a log: no input values, no known secret. */
export function safeMessage(message: string): string {
  return redactSecrets(withoutInputValues(message));
}

function withoutValues(error: GraphQLError): GraphQLError {
  const message = safeMessage(error.message);
  if (message === error.message) return error;
  return new GraphQLError(message, { nodes: error.nodes, path: error.path, extensions: error.extensions });
}

/** A variable coercion error (`Variable … got invalid value …; <reason>`): both parts without values. */
function withoutCoercedValues(error: GraphQLError, reason: GraphQLError): GraphQLError {
  const outer = error.message.endsWith(reason.message) ? error.message.slice(0, -reason.message.length).replace(/;\s*$/, '') : error.message;
  const message = outer && outer !== error.message ? `${safeMessage(outer)}; ${safeMessage(reason.message)}` : safeMessage(reason.message);
  // Yoga's own `http` extension (status 400) is left out, as it always was: these answers stay HTTP 200.
  const { http: _http, ...extensions } = error.extensions;
  return new GraphQLError(message, { nodes: error.nodes, path: error.path, extensions: { ...reason.extensions, ...extensions } });
}

function summarise(args: unknown[]): unknown[] {
  return args.map((arg) => {
    if (typeof arg === 'string') return safeMessage(arg);
    if (arg instanceof Error) {
      return { name: arg.name, message: safeMessage(arg.message), code: (arg as GraphQLError).extensions?.code };
    }
    return '[object]';
  });
}

/**
 * Parse and validation errors go back to the caller as they are (they never reach maskError): their messages
 * quote the document's literals, so they are cleaned here.
 */
function withoutValuesInParseAndValidation(): Plugin {
  return {
    onParse() {
      return ({ result, replaceParseResult }) => {
        if (result instanceof GraphQLError) replaceParseResult(withoutValues(result));
      };
    },
    onValidate() {
      return ({ result, setResult }) => {
        if (result.length > 0) setResult(result.map((e: Error) => (e instanceof GraphQLError ? withoutValues(e) : e)));
      };
    },
  };
}

/** PostgreSQL data exceptions (class 22: bad text, number or date) and "too complex" (54): input a check missed. */
function isInputRejectedByDatabase(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^(22|54)[0-9A-Z]{3}$/.test(code)) return true;
  }
  return false;
}

function unauthenticated(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'UNAUTHENTICATED', http: { status: 401, headers: { 'WWW-Authenticate': 'Bearer' } } } });
}

export function createGraphQLServer(services: Services): YogaServerInstance<GraphQLServerContext, GraphQLContext> {
  const limiter = new RequestRateLimiter(services.config.graphql.rateLimitPerMinute, 60_000);
  return createYoga<GraphQLServerContext, GraphQLContext>({
    schema,
    graphqlEndpoint: '/graphql',
    graphiql: services.config.graphiql,
    // Bundled GraphiQL (no CDN), with the console's token when opened from it (src/http/console.ts).
    renderGraphiQL: renderGraphiQLOffline,
    plugins: [withoutValuesInParseAndValidation(), ...armorPlugins(services.config.graphql), graphqlSpans()],
    landingPage: false,
    // The HTTP layer caps the body (GRAPHQL_MAX_BODY_BYTES) before Yoga sees it; Yoga's own cap would put every
    // body through a TransformStream and a second Request.
    maxRequestBodySize: false,
    // Unexpected errors are masked: their messages may carry driver details. Never turned off.
    // Expected failures outside a result union (e.g. a bad argument on a query field) keep their code.
    maskedErrors: {
      isDev: false,
      maskError: (error, message) => {
        const original = error instanceof GraphQLError ? error.originalError : error;
        if (original instanceof DomainError) {
          return new GraphQLError(redactSecrets(original.message), { extensions: { code: original.code } });
        }
        // Pothos' own argument checks (page arguments, cursors, global ids): the caller's input, not a fault.
        if (original instanceof PothosValidationError) {
          return new GraphQLError(safeMessage(original.message), { extensions: { code: 'BAD_USER_INPUT' } });
        }
        // A value the database refused (a check upstream of it should have caught it): a warning, without SQL.
        if (isInputRejectedByDatabase(original)) {
          services.logger.warn({ err: original }, 'input refused by the database: add a check for it');
          return new GraphQLError('a value in the input cannot be stored', { extensions: { code: 'BAD_USER_INPUT' } });
        }
        // The database is away: retryable, logged by the pool's listener, never an INTERNAL_SERVER_ERROR.
        if (isDatabaseUnavailable(error)) return unavailableGraphQLError();
        // Validation and coercion errors: graphql-js quotes the offending variable value, which may be a secret.
        if (error instanceof GraphQLError && !error.originalError) return withoutValues(error);
        if (error instanceof GraphQLError && error.originalError instanceof GraphQLError) return withoutCoercedValues(error, error.originalError);
        services.logger.error({ err: original }, 'unexpected error in a GraphQL request');
        return new GraphQLError(message, { extensions: { code: 'INTERNAL_SERVER_ERROR' } });
      },
    },
    // Yoga's own log lines may carry request parameters; only their text and error summaries are kept.
    // Yoga logs at debug several times per request: its arguments are summarised only when the line is written.
    logging: {
      debug: (...args) => {
        if (services.logger.isLevelEnabled('debug')) services.logger.debug({ yoga: summarise(args) }, 'yoga');
      },
      info: (...args) => services.logger.info({ yoga: summarise(args) }, 'yoga'),
      warn: (...args) => services.logger.warn({ yoga: summarise(args) }, 'yoga'),
      // Yoga reports every error of a result here, expected ones too (a refused input, a NotFoundError): those are
      // the caller's, not the gateway's, and unexpected errors are logged by maskError above. A database that is
      // away is an operational condition (the pool logs each lost connection): warn, and no SQL.
      error: (...args) => {
        const unavailable = args.find(isDatabaseUnavailable);
        if (unavailable) services.logger.warn({ code: 'UNAVAILABLE', reason: driverReason(unavailable) }, 'GraphQL request failed: the database is unavailable');
        else if (args.every((a) => a instanceof GraphQLError || typeof a === 'string')) {
          if (services.logger.isLevelEnabled('debug')) services.logger.debug({ yoga: summarise(args) }, 'yoga: GraphQL error in a result');
        }
        else services.logger.error({ yoga: summarise(args) }, 'yoga');
      },
    },
    context: async ({ request, requestInfo }): Promise<GraphQLContext> => {
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
      if (requestInfo) requestInfo.subject = actor.subject;
      const retryAfter = limiter.take(actor.subject);
      if (retryAfter > 0) {
        throw new GraphQLError('too many requests from this caller', {
          extensions: { code: 'RATE_LIMITED', retryAfterSeconds: retryAfter, http: { status: 429, headers: { 'Retry-After': String(retryAfter) } } },
        });
      }
      const now = new Date();
      // One request id for the request log, the spans, the answer's X-Request-Id and the audit trail.
      const requestId = requestInfo?.id ?? safeRequestId(request.headers.get('x-request-id'));
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

// What every HTTP request leaves behind: one log line, one latency observation and, when tracing is on, one trace.
// - The request id is the caller's X-Request-Id when it is a sane token, else a fresh uuid. The same id goes into
//   the audit trail (GraphQL mutations), the log line, the spans, and back to the caller as X-Request-Id.
// - The log line names the route pattern (`/webhooks/heygen/:accountId`), never the raw path or its query string,
//   and the caller's subject once a token was verified, never the token. Probes (/healthz, /readyz, /metrics) are
//   logged at debug, everything else at info.
// - The span is the trace's root (or continues the caller's W3C `traceparent`); the GraphQL operation, its SQL
//   statements and its HeyGen attempts are its children.
import { randomUUID } from 'node:crypto';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type TextMapGetter } from '@opentelemetry/api';
import { getOperationAST } from 'graphql';
import type { MiddlewareHandler } from 'hono';
import { matchedRoutes, routePath } from 'hono/route';
import type { Plugin } from 'graphql-yoga';
import { REQUEST_ID_ATTRIBUTE, tracer, withRequestId } from '../observability/tracing.js';
import { shedOverload } from './overload.js';
import type { Services } from '../app.js';

/** What one request carries through the layers that serve it. */
export interface RequestInfo {
  readonly id: string;
  /** The verified caller's subject, once known. */
  subject: string | null;
}

/** Hono's typing of the per-request variables set here. */
export interface ObservedEnv {
  Variables: { requestInfo: RequestInfo };
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,100}$/;

/** The caller's X-Request-Id when it is a sane token (it is stored in the audit trail), else a fresh one. */
export function safeRequestId(header: string | null | undefined): string {
  return header && REQUEST_ID.test(header) ? header : randomUUID();
}

const PROBES = new Set(['/healthz', '/readyz', '/metrics']);
/** Label values of methods: bounded, whatever the request line said. */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const UNMATCHED = 'unmatched';
const SERVER_SPAN = { kind: SpanKind.SERVER } as const;

const headerGetter: TextMapGetter<Headers> = {
  keys: (headers) => [...headers.keys()],
  get: (headers, key) => headers.get(key) ?? undefined,
};

/** The Hono middleware that logs, measures and traces every request (registered first, on every route). */
export function observeRequests(services: Services): MiddlewareHandler<ObservedEnv> {
  const { logger } = services;
  const duration = services.metrics.httpRequestDuration;
  // Inside this middleware, not after it: a shed request is logged, measured and traced like any other.
  const serve = shedOverload(services.config.httpMaxInFlight, services.metrics);
  return async (c, next) => {
    const started = performance.now();
    const info: RequestInfo = { id: safeRequestId(c.req.header('x-request-id')), subject: null };
    c.set('requestInfo', info);
    const method = METHODS.has(c.req.method) ? c.req.method : 'OTHER';

    // With no tracer provider the propagator and the tracer are the API's no-ops: no context is made.
    const parent = propagation.extract(ROOT_CONTEXT, c.req.raw.headers, headerGetter);
    const span = tracer.startSpan(method, SERVER_SPAN, parent);
    const traced = span.isRecording();
    if (traced) {
      span.setAttribute('http.request.method', method);
      span.setAttribute(REQUEST_ID_ATTRIBUTE, info.id);
      await context.with(withRequestId(trace.setSpan(parent, span), info.id), () => serve(c, next));
    } else {
      await serve(c, next);
    }

    // The handler that answered; index 0 is this middleware itself: a shed request (named by the route it was sent
    // to, the next matched) or no route matched (a 404).
    const route = c.req.routeIndex > 0 ? routePath(c) : matchedRoutes(c).length > 1 ? routePath(c, 1) : UNMATCHED;
    const status = c.res.status;
    try {
      c.res.headers.set('x-request-id', info.id);
    } catch {
      c.header('x-request-id', info.id); // immutable headers: Hono copies the response
    }
    const seconds = (performance.now() - started) / 1000;
    duration.observe({ method, route, status }, seconds);
    if (traced) {
      span.updateName(`${method} ${route}`);
      span.setAttribute('http.route', route);
      span.setAttribute('http.response.status_code', status);
      if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    }
    const level = PROBES.has(route) ? 'debug' : 'info';
    if (logger.isLevelEnabled(level)) {
      logger[level](
        {
          method,
          route,
          status,
          durationMs: Math.round(seconds * 10_000) / 10,
          requestId: info.id,
          ...(info.subject !== null ? { subject: info.subject } : {}),
          ...(traced ? { traceId: span.spanContext().traceId } : {}),
        },
        'request',
      );
    }
  };
}

/**
 * A span per GraphQL operation (`mutation submitJob`), child of the request's span, around its execution: its SQL
 * and HeyGen spans are its children. Carries the operation's type and name, never the document or its variables
 * (either may hold a secret). Nothing happens outside a recording trace.
 */
export function graphqlSpans(): Plugin {
  return {
    onExecute({ args, executeFn, setExecuteFn }) {
      const parent = context.active();
      if (!trace.getSpan(parent)?.isRecording()) return undefined;
      const operation = getOperationAST(args.document, args.operationName);
      const type = operation?.operation ?? 'query';
      const name = operation?.name?.value;
      const span = tracer.startSpan(
        name ? `${type} ${name}` : type,
        { attributes: { 'graphql.operation.type': type, ...(name ? { 'graphql.operation.name': name } : {}) } },
        parent,
      );
      const inside = trace.setSpan(parent, span);
      setExecuteFn((executeArgs) => context.with(inside, () => executeFn(executeArgs)));
      return {
        onExecuteDone({ result }) {
          if ('errors' in result && result.errors && result.errors.length > 0) {
            // The codes only: messages may quote what the caller sent.
            const codes = [...new Set(result.errors.map((e) => String(e.extensions?.code ?? 'UNKNOWN')))];
            span.setAttribute('graphql.error.codes', codes);
            span.setStatus({ code: SpanStatusCode.ERROR });
          }
          span.end();
        },
      };
    },
  };
}

// Pages of every connection: `first`/`last` between 0 and GRAPHQL_MAX_PAGE_SIZE, else a VALIDATION_FAILED error
// (never a silently shorter page, never Pothos' own untyped error).
import { resolveCursorConnection } from '@pothos/plugin-relay';
import { ValidationError } from '../errors.js';
import type { GraphQLContext } from './context.js';

export interface PageArgs {
  first?: number | null;
  last?: number | null;
  before?: string | null;
  after?: string | null;
}

type Resolve<T> = (params: { before?: string; after?: string; limit: number; inverted: boolean }) => Promise<T[]>;

const DEFAULT_PAGE_SIZE = 50;

/** Checks the page arguments against the configured maximum, then resolves the page by cursor. */
export function cursorPage<T>(ctx: GraphQLContext, args: PageArgs, toCursor: (item: T) => string, resolve: Resolve<T>) {
  const max = ctx.services.config.graphql.maxPageSize;
  for (const name of ['first', 'last'] as const) {
    const value = args[name];
    if (value != null && (!Number.isInteger(value) || value < 0 || value > max)) {
      throw new ValidationError(name, `${name} must be an integer from 0 to ${max}`);
    }
  }
  return resolveCursorConnection<Promise<T[]>>({ args, toCursor, defaultSize: Math.min(DEFAULT_PAGE_SIZE, max), maxSize: max }, resolve);
}

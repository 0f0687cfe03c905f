// The one typed builder. It defines no types: each domain file defines its own.
import SchemaBuilder from '@pothos/core';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import ErrorsPlugin from '@pothos/plugin-errors';
import RelayPlugin, { decodeGlobalID } from '@pothos/plugin-relay';
import { isUuid } from '../org/units.js';
import WithInputPlugin from '@pothos/plugin-with-input';
import DataloaderPlugin from '@pothos/plugin-dataloader';
import SimpleObjectsPlugin from '@pothos/plugin-simple-objects';
import type { Actor } from '../auth/actor.js';
import { ForbiddenError } from '../errors.js';
import type { GraphQLContext } from './context.js';
import { authScopesFor, refusalMessage, type AuthScopes } from './scopes.js';

/** Types implementing Node (builder.node in accounts, auth, identity, jobs and org); all keyed by uuid. */
const NODE_TYPES = new Set(['Account', 'OrgUnit', 'Budget', 'Job', 'ServiceToken', 'RoleMapping']);

/** A uuid no row has: what a malformed id decodes to. */
export const NO_ROW = '00000000-0000-0000-0000-000000000000';

export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  AuthScopes: AuthScopes;
  AuthContexts: { authenticated: GraphQLContext & { actor: Actor } };
  Scalars: {
    CreditSeconds: { Input: string; Output: bigint };
    Usd: { Input: string; Output: string };
    DateTime: { Input: Date; Output: Date };
    JSON: { Input: unknown; Output: unknown };
    Period: { Input: string; Output: string };
  };
  DefaultFieldNullability: false;
  DefaultInputFieldRequiredness: false;
}>({
  // Errors before scope-auth, so that its wrapper is the outer one: a refused scope (ForbiddenError) and a scope
  // whose object the caller may not see (NotFoundError) come back as typed errors in a mutation's result union,
  // like the same refusals made by a resolver. Safe because the error types carry nothing protected
  // (hayes/pothos discussion #467).
  plugins: [ErrorsPlugin, ScopeAuthPlugin, RelayPlugin, WithInputPlugin, DataloaderPlugin, SimpleObjectsPlugin],
  defaultFieldNullability: false,
  scopeAuth: {
    authScopes: authScopesFor,
    // A refused scope is the domain's ForbiddenError: typed in a result union, FORBIDDEN with its message elsewhere.
    unauthorizedError: (_parent, _context, _info, result) => new ForbiddenError(refusalMessage(result.failure)),
  },
  // Every type, field and argument the plugins generate has a description too (the printed schema is the documentation).
  relay: {
    // Every node id is a uuid: an id that is not one (or not a global id at all) names no row, like an id that does
    // not exist, instead of reaching PostgreSQL as a value it cannot cast.
    decodeGlobalID: (globalID) => {
      try {
        const decoded = decodeGlobalID(globalID);
        if (NODE_TYPES.has(decoded.typename)) return isUuid(decoded.id) ? decoded : { typename: decoded.typename, id: NO_ROW };
      } catch {
        /* not a global id */
      }
      return { typename: 'OrgUnit', id: NO_ROW };
    },
    clientMutationId: 'omit',
    cursorType: 'String',
    nodeQueryOptions: {
      description: 'Any object by its global id; ids the caller may not see read as null.',
      authScopes: { authenticated: true },
      args: { id: { description: 'Global id of the object.' } },
    },
    nodesQueryOptions: false,
    nodeTypeOptions: { description: 'An object with a global id, readable through Query.node.' },
    idFieldOptions: { description: 'Global id (opaque; the same id works with Query.node).' },
    pageInfoTypeOptions: { description: 'Where a page of a connection sits in the whole list.' },
    hasNextPageFieldOptions: { description: 'True when more items follow this page.' },
    hasPreviousPageFieldOptions: { description: 'True when items come before this page.' },
    startCursorFieldOptions: { description: 'Cursor of the first item of the page.' },
    endCursorFieldOptions: { description: 'Cursor of the last item of the page (pass it as `after` for the next page).' },
    defaultConnectionTypeOptions: { description: 'A page of a list, ordered by a unique key.' },
    defaultEdgeTypeOptions: { description: 'One item of a page, with its cursor.' },
    edgesFieldOptions: { description: 'The items of this page.' },
    pageInfoFieldOptions: { description: 'Paging information.' },
    nodeFieldOptions: { description: 'The item.' },
    cursorFieldOptions: { description: 'Opaque position of the item, for `after` and `before`.' },
    firstArgOptions: { description: 'Page size from the start (or after `after`).' },
    lastArgOptions: { description: 'Page size from the end (or before `before`).' },
    afterArgOptions: { description: 'Items after this cursor.' },
    beforeArgOptions: { description: 'Items before this cursor.' },
  },
  errors: {
    directResult: true,
    defaultUnionOptions: { description: "The mutation's payload, or one of its expected failures (types implementing Error)." },
  },
  withInput: {
    typeOptions: {
      description: 'Input of the mutation of the same name.',
      name: ({ parentTypeName, fieldName }) =>
        parentTypeName === 'Mutation' ? `${fieldName[0]!.toUpperCase()}${fieldName.slice(1)}Input` : `${parentTypeName}${fieldName}Input`,
    },
    argOptions: { description: "The mutation's input." },
  },
});

builder.queryType({ description: 'Reads: balances, usage, jobs and the org tree.' });
builder.mutationType({ description: 'Writes: jobs, budgets, the org tree, accounts and tokens.' });

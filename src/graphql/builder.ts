// The one typed builder. It defines no types: each domain file defines its own.
import SchemaBuilder from '@pothos/core';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import ErrorsPlugin from '@pothos/plugin-errors';
import RelayPlugin from '@pothos/plugin-relay';
import WithInputPlugin from '@pothos/plugin-with-input';
import DataloaderPlugin from '@pothos/plugin-dataloader';
import SimpleObjectsPlugin from '@pothos/plugin-simple-objects';
import type { Actor } from '../auth/actor.js';
import type { GraphQLContext } from './context.js';

export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  AuthScopes: { authenticated: boolean; admin: boolean; finance: boolean };
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
  plugins: [ScopeAuthPlugin, ErrorsPlugin, RelayPlugin, WithInputPlugin, DataloaderPlugin, SimpleObjectsPlugin],
  defaultFieldNullability: false,
  scopeAuth: {
    authScopes: (ctx) => ({
      authenticated: ctx.actor !== null,
      admin: ctx.actor?.role === 'ADMIN',
      finance: ctx.actor?.role === 'ADMIN' || ctx.actor?.role === 'FINANCE',
    }),
    // A refused scope reads as FORBIDDEN with a code, never as an internal error.
    unauthorizedError: (_parent, _context, _info, result) => Object.assign(new Error(result.message), { code: 'FORBIDDEN' }),
  },
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    nodeQueryOptions: { description: 'Any object by its global id; ids the caller may not see read as null.' },
    nodesQueryOptions: false,
  },
  errors: { directResult: true },
  withInput: {
    typeOptions: {
      name: ({ parentTypeName, fieldName }) =>
        parentTypeName === 'Mutation' ? `${fieldName[0]!.toUpperCase()}${fieldName.slice(1)}Input` : `${parentTypeName}${fieldName}Input`,
    },
  },
});

builder.queryType({ description: 'Reads: balances, usage, jobs and the org tree.' });
builder.mutationType({ description: 'Writes: jobs, budgets, the org tree, accounts and tokens.' });

// Imports every domain file of the GraphQL layer and builds the schema.
import { isObjectType, type GraphQLFieldResolver, type GraphQLSchema } from 'graphql';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { builder } from './builder.js';
import './scalars.js';
import './errors.js';
import './accounts.js';
import './org.js';
import './policies.js';
import './jobs.js';
import './queue.js';
import './auth.js';
import './billing.js';
import './audit.js';
import './custody.js';
import './identity.js';
import './overruns.js';
import './callbacks.js';
import './live.js';
import './forecasts.js';
import './notifications.js';
import './money-events.js';
import './budget-requests.js';
import './tags.js';

export const schema = withNodeIdsAtOnce(builder.toSchema({ sortSchema: true }));

/**
 * The `id` of every node type answers at once: the relay plugin's own resolver for it is an `async` function (a
 * promise per object, which turns a page of 200 units, each with an `id`, into 200 pending objects for the
 * executor). Each type's own id function (`builder.node(…, { id: { resolve } })`) is called as the plugin calls
 * it, and its value encoded the same way (`encodeGlobalID`, the builder has no encoder of its own). A field that
 * a plugin wrapped (an auth scope on it) is left as it is.
 */
function withNodeIdsAtOnce(built: GraphQLSchema): GraphQLSchema {
  for (const type of Object.values(built.getTypeMap())) {
    if (!isObjectType(type) || !type.getInterfaces().some((i) => i.name === 'Node')) continue;
    const field = type.getFields().id;
    const id = (type.extensions.pothosOptions as { id?: { resolve?: GraphQLFieldResolver<unknown, unknown> } } | undefined)?.id?.resolve;
    if (!field || !id || field.extensions.pothosResolveWrapped !== false || field.resolve !== field.extensions.pothosOriginalResolve) continue;
    const name = type.name;
    field.resolve = (parent, args, context, info) => {
      const value = id(parent, args, context, info);
      return isThenable(value) ? Promise.resolve(value).then((v) => encodeGlobalID(name, String(v))) : encodeGlobalID(name, String(value));
    };
  }
  return built;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}

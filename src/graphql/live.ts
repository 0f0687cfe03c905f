// Subscriptions (Server-Sent Events: POST or GET /graphql with `Accept: text/event-stream`). Each is authorised
// exactly like the query it mirrors: an id the caller may not see is the same NOT_FOUND as one that does not exist,
// and every event re-reads its entity under the caller's visibility (fresh loaders) before anything is sent.
// What wakes them: src/live/hub.ts (PostgreSQL NOTIFY from the writing transaction, heard by every process).
import { builder } from './builder.js';
import { decodeId } from './ids.js';
import { JobRef } from './jobs.js';
import { BudgetRef } from './org.js';
import { requireVisibleUnit, visibleBudgets, visibleJob } from './visibility.js';
import { createLoaders, type GraphQLContext } from './context.js';
import { NotFoundError, ValidationError } from '../errors.js';
import { canReadJobsOf } from '../auth/actor.js';
import { entityTopic, TooManySubscriptionsError, unitTopic, type LiveStream } from '../live/hub.js';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { isTerminal } from '../jobs/lifecycle.js';
import { MoneyEventKindEnum } from './notifications.js';
import { MoneyEventRef, visibleMoneyEventsFilter } from './money-events.js';
import { outboxEventsTable } from '../db/schema.js';
import { moneyEventOf, type MoneyEvent } from '../notifications/events.js';
import { and, eq } from 'drizzle-orm';

builder.subscriptionType({
  description:
    'Live updates over Server-Sent Events (`Accept: text/event-stream`). Each event carries the object as it stands when sent, read with the caller\'s own visibility; changes close together may arrive as one event. At most GRAPHQL_MAX_SUBSCRIPTIONS_PER_CALLER open per caller and process. A service token\'s streams end (complete) when it is revoked.',
});

/**
 * A stream on `topic` for the caller, starting with `initial`; the per-caller limit is a VALIDATION_FAILED error. It is
 * returned (and the subscription's response begins) once changes committed from then on reach it (LiveHub.ready).
 */
async function open(ctx: GraphQLContext, topic: string, initial: string[]): Promise<LiveStream> {
  let stream: LiveStream;
  try {
    stream = ctx.services.live.subscribe(topic, ctx.actor!.subject, initial, ctx.actor!.tokenId);
  } catch (error) {
    if (error instanceof TooManySubscriptionsError) throw new ValidationError('subscription', error.message);
    throw error;
  }
  try {
    await ctx.services.live.ready();
  } catch (error) {
    // This process could not register as a listener (the database is away): no stream it could not feed.
    await stream.return();
    throw error;
  }
  return stream;
}

/**
 * Each event is read afresh: new loaders (and their per-request caches) and a new `now`. graphql-js resolves a
 * stream's events one at a time with the subscription's one context, so it is renewed in place.
 */
function renew(ctx: GraphQLContext): GraphQLContext {
  const now = new Date();
  Object.assign(ctx, { now, loaders: createLoaders(ctx.db, now) });
  return ctx;
}

// Subscriptions whose last event has been resolved (a job at its end): the stream then completes.
const finished = new WeakSet<GraphQLContext>();

/** The stream, ending cleanly (`complete`) once the event resolved last was the last one. */
function untilFinished(ctx: GraphQLContext, stream: LiveStream): AsyncIterableIterator<string> {
  const wrapped: AsyncIterableIterator<string> = {
    async next() {
      if (finished.has(ctx)) {
        await stream.return();
        return { done: true, value: undefined };
      }
      return stream.next();
    },
    return: () => stream.return(),
    [Symbol.asyncIterator]: () => wrapped,
  };
  return wrapped;
}

/**
 * The money events a stream of event ids names that the caller may see (the `moneyEvents` query's filter, kinds
 * included), each read afresh; the others are passed over without a word.
 */
function visibleMoneyEvents(ctx: GraphQLContext, stream: LiveStream, rootUnitId: string, kinds: readonly string[] | null | undefined): AsyncIterableIterator<MoneyEvent> {
  const events: AsyncIterableIterator<MoneyEvent> = {
    async next() {
      for (;;) {
        const signal = await stream.next();
        if (signal.done) return { done: true, value: undefined };
        const [row] = await renew(ctx)
          .db.select({ payload: outboxEventsTable.payload })
          .from(outboxEventsTable)
          .where(and(eq(outboxEventsTable.id, signal.value), visibleMoneyEventsFilter(ctx, rootUnitId, kinds)));
        if (row) return { done: false, value: moneyEventOf(row.payload) };
      }
    },
    return: async () => {
      await stream.return();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]: () => events,
  };
  return events;
}

builder.subscriptionFields((t) => ({
  moneyEvents: t.field({
    type: MoneyEventRef,
    authScopes: { authenticated: true },
    description:
      "Money events of a unit and every unit below it as they commit, optionally of some kinds only, shown to the same callers as by the `moneyEvents` query (events of units whose costs the caller may read). NOT_FOUND when the unit does not exist or the caller may not see it. Events committed while a process's listener was reconnecting are not replayed: read the `moneyEvents` query to catch up.",
    args: {
      orgUnitId: t.arg.id({ required: true, description: 'Global id of the subtree root.' }),
      kinds: t.arg({ type: [MoneyEventKindEnum], required: false, description: 'Only these kinds (all when omitted or empty).' }),
    },
    subscribe: async (_root, args, ctx) => {
      const unit = await requireVisibleUnit(ctx, decodeId(String(args.orgUnitId), 'OrgUnit'));
      return visibleMoneyEvents(ctx, await open(ctx, unitTopic('money', unit.id), []), unit.id, args.kinds as string[] | null | undefined);
    },
    resolve: (event) => event as MoneyEvent,
  }),
  jobUpdated: t.field({
    type: JobRef,
    authScopes: { authenticated: true },
    description: "One job: first as it stands, then each time its status changes; the stream completes after the event of its end status. NOT_FOUND when the job does not exist or the caller may not see it (the `job` query's rule).",
    args: { id: t.arg.id({ required: true, description: 'Global id of the job.' }) },
    subscribe: async (_root, args, ctx) => {
      const id = decodeId(String(args.id), 'Job');
      if (!(await visibleJob(ctx, id))) throw new NotFoundError('Job', String(args.id));
      return untilFinished(ctx, await open(ctx, entityTopic('job', id), [id]));
    },
    resolve: async (id, args, ctx) => {
      const job = await visibleJob(renew(ctx), id as string);
      if (!job) throw new NotFoundError('Job', String(args.id));
      if (isTerminal(job.status)) finished.add(ctx);
      return job;
    },
  }),
  jobsUpdated: t.field({
    type: JobRef,
    authScopes: { authenticated: true },
    description:
      "Jobs of one project, each time one is created or changes status. NOT_FOUND when the project does not exist or the caller may not read its jobs (the `jobs` query's rule). Changes committed while a process's listener was reconnecting, or while its registration as a listener had lapsed (the database away), are not replayed: read the `jobs` query to catch up.",
    args: { projectId: t.arg.id({ required: true, description: 'Global id of the project (an OrgUnit).' }) },
    subscribe: async (_root, args, ctx) => {
      const projectId = decodeId(String(args.projectId), 'OrgUnit');
      const unit = await requireVisibleUnit(ctx, projectId);
      if (unit.kind !== 'PROJECT' || !canReadJobsOf(ctx.actor!, unit)) throw new NotFoundError('OrgUnit', String(args.projectId));
      return open(ctx, unitTopic('job', projectId), []);
    },
    resolve: async (id, _args, ctx) => {
      const job = await visibleJob(renew(ctx), id as string);
      // The caller lost sight of it since subscribing (e.g. its token's unit changed): nothing is told.
      if (!job) throw new NotFoundError('Job', encodeGlobalID('Job', id as string));
      return job;
    },
  }),
  budgetUpdated: t.field({
    type: [BudgetRef],
    authScopes: { authenticated: true },
    description:
      "The budgets set on one unit (those OrgUnit.budgets shows): first as they stand, then each time one of them or the unit's usage changes. NOT_FOUND when the unit does not exist or the caller may not see it.",
    args: { orgUnitId: t.arg.id({ required: true, description: 'Global id of the unit.' }) },
    subscribe: async (_root, args, ctx) => {
      const unitId = decodeId(String(args.orgUnitId), 'OrgUnit');
      await requireVisibleUnit(ctx, unitId);
      return open(ctx, entityTopic('budget', unitId), [unitId]);
    },
    resolve: async (unitId, args, ctx) => {
      renew(ctx);
      await requireVisibleUnit(ctx, unitId as string);
      return visibleBudgets(ctx, await ctx.loaders.budgetsByUnit.load(unitId as string));
    },
  }),
}));

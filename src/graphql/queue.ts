// The concurrency queue: where a queued job stands, and how an account's slots are shared (src/jobs/queue.ts).
import { builder } from './builder.js';
import { MUTATION_ERRORS } from './errors.js';
import { decodeId } from './ids.js';
import { AccountRef } from './accounts.js';
import { OrgUnitRef } from './org.js';
import { JobRef } from './jobs.js';
import { requireVisibleAccount, visibleUnit } from './visibility.js';
import { concurrencySharesOf, queueStanding, setConcurrencyShares, type ConcurrencyShare, type QueueStanding } from '../jobs/queue.js';

const QueueStandingRef = builder.objectRef<QueueStanding>('JobQueueStanding').implement({
  description: "Where a QUEUED job stands in its account's queue, and when it is expected to start.",
  fields: (t) => ({
    position: t.exposeInt('position', { description: "1 for the next job of its project to start: a project's jobs start in admission order." }),
    estimatedStartAt: t.field({
      type: 'DateTime',
      description:
        "When it is expected to start: the jobs ahead of it in its project, started as many at a time as its fair share of the account's slots, each batch after the account's mean run time of its last jobs. An estimate: other units' arrivals change it.",
      resolve: (s) => s.estimatedStartAt,
    }),
    retryAfterSeconds: t.exposeInt('retryAfterSeconds', { description: 'Seconds until estimatedStartAt (at least 1): when reading the job again is worth it.' }),
  }),
});

builder.objectField(JobRef, 'queue', (t) =>
  t.field({
    type: QueueStandingRef,
    nullable: true,
    description: 'Its place in the queue while QUEUED (admitted, its hold taken, waiting for a concurrency slot); null otherwise.',
    resolve: (j, _a, ctx) => queueStanding(ctx.db, j, ctx.services.config.queue),
  }),
);

const ConcurrencyShareRef = builder.objectRef<ConcurrencyShare>('ConcurrencyShare').implement({
  description: "A unit's share of an account's concurrency slots among its sibling units (units without one: weight 1, no minimum, no maximum).",
  fields: (t) => ({
    orgUnit: t.field({ type: OrgUnitRef, nullable: true, description: 'The unit (null when the caller may not see it).', resolve: (s, _a, ctx) => visibleUnit(ctx, s.orgUnitId) }),
    weight: t.exposeInt('weight', { description: 'Relative weight among the siblings with jobs running or waiting.' }),
    minSlots: t.exposeInt('minSlots', { description: 'Slots the unit gets before any sibling above its own fair share, when it has jobs waiting.' }),
    maxSlots: t.exposeInt('maxSlots', { nullable: true, description: 'Most slots its jobs hold at once; null: no maximum.' }),
  }),
});

builder.objectField(AccountRef, 'concurrencyShares', (t) =>
  t.field({
    type: [ConcurrencyShareRef],
    description: 'How the concurrency slots are shared among the units whose jobs wait (those of units the caller may read).',
    resolve: async (a, _args, ctx) => {
      const shares = await concurrencySharesOf(ctx.db, a.id);
      const visible = await Promise.all(shares.map((s) => visibleUnit(ctx, s.orgUnitId)));
      return shares.filter((_s, i) => visible[i] !== null);
    },
  }),
);

builder.mutationFields((t) => ({
  setConcurrencyShares: t.fieldWithInput({
    type: builder.simpleObject('SetConcurrencySharesPayload', {
      description: 'The concurrency shares as set.',
      fields: (f) => ({
        account: f.field({ type: AccountRef, description: 'The account.' }),
        shares: f.field({ type: [ConcurrencyShareRef], description: 'Every share of the account now.' }),
      }),
    }),
    errors: { types: MUTATION_ERRORS, union: { description: 'The payload of setting concurrency shares, or an expected failure.' } },
    typeOptions: { description: 'Input of setting concurrency shares.' },
    argOptions: { description: 'Input of setting concurrency shares.' },
    authScopes: { finance: true },
    description:
      "Replaces how an account's concurrency slots are shared among org units when jobs queue for them (ADMIN, FINANCE): at each level of the tree the next free slot goes to the child unit under its guaranteed minimum, else with the fewest slot-seconds (slots held times seconds, over the time its competing siblings have all been busy) per unit of weight, never to one at its maximum; within a project, jobs start in admission order. Units not listed: weight 1, no minimum, no maximum. Audited.",
    input: {
      accountId: t.input.id({ required: true, description: 'Global id of the account.' }),
      shares: t.input.field({
        type: [
          builder.inputType('ConcurrencyShareInput', {
            description: "One unit's share.",
            fields: (f) => ({
              orgUnitId: f.id({ required: true, description: 'Global id of the unit (not the root).' }),
              weight: f.int({ required: true, description: 'Relative weight, 1 to 1000000.' }),
              minSlots: f.int({ required: false, description: 'Guaranteed slots while it has jobs waiting (default 0); the minimums of siblings add up to at most the account limit.' }),
              maxSlots: f.int({ required: false, description: 'Most slots at once (default: none).' }),
            }),
          }),
        ],
        required: true,
        description: 'The shares; an empty list removes them all.',
      }),
    },
    resolve: async (_r, { input }, ctx) => {
      const account = await requireVisibleAccount(ctx, decodeId(String(input.accountId), 'Account'));
      const shares = input.shares.map((s) => ({
        orgUnitId: decodeId(String(s.orgUnitId), 'OrgUnit'),
        weight: s.weight,
        minSlots: s.minSlots ?? 0,
        maxSlots: s.maxSlots ?? null,
      }));
      const rows = await ctx.db.transaction((tx) => setConcurrencyShares(tx, ctx.actor!, account.id, shares));
      return { account, shares: rows };
    },
  }),
}));

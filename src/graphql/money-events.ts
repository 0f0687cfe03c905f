// Money events as a feed (docs/notifications.md): the `moneyEvents` query, newest first, of one unit's subtree.
// Who sees an event: who may read the costs of its unit (canReadCostsOf, OrgUnit.usage's rule), since an event
// tells that unit's usage; so a caller never sees the events of another subtree, nor those of a unit above its
// own (an organization's pool, a department's budget), whichever unit it asks about; and the events of a person's
// budget only to whom may see that budget's counters (a MEMBER or SERVICE caller: its own person's).
import { and, asc, desc, eq, inArray, sql, type SQL } from 'drizzle-orm';
import { builder } from './builder.js';
import { decodeId } from './ids.js';
import { OrgUnitRef } from './org.js';
import { MoneyEventKindEnum } from './notifications.js';
import { cursorPage } from './pagination.js';
import { requireVisibleUnit, visibleCostsFilter } from './visibility.js';
import { personVisibleFilter } from './groups.js';
import type { GraphQLContext } from './context.js';
import { outboxEventsTable } from '../db/schema.js';
import { moneyEventOf, MONEY_EVENT_TOPIC, type MoneyEvent } from '../notifications/events.js';
import { ValidationError } from '../errors.js';
import { isUuid } from '../org/units.js';

export const MoneyEventRef = builder.objectRef<MoneyEvent>('MoneyEvent').implement({
  description: 'A money event (docs/notifications.md): the same facts every notification channel receives.',
  fields: (t) => ({
    id: t.exposeID('id', { description: "The event's id: `id` in a webhook's body and X-Gateway-Event-Id (a raw id, not a global id)." }),
    kind: t.field({ type: MoneyEventKindEnum, description: 'What happened.', resolve: (e) => e.kind as never }),
    occurredAt: t.field({ type: 'DateTime', description: 'When its cause committed (the time of its transaction).', resolve: (e) => new Date(e.occurredAt) }),
    orgUnit: t.field({
      type: OrgUnitRef,
      description: "The unit it is about: a budget's unit, a job's project, the organization for an account's events.",
      resolve: async (e, _a, ctx) => (await ctx.loaders.unitById.load(e.orgUnitId))!,
    }),
    data: t.field({ type: 'JSON', description: "The event's facts, per kind (amounts are decimal strings of micro-credit-seconds).", resolve: (e) => e.data }),
  }),
});

/** SQL filter on outbox_events: the money events of `rootUnitId`'s subtree that the caller may see, of `kinds` (all when empty). */
export function visibleMoneyEventsFilter(ctx: GraphQLContext, rootUnitId: string, kinds: readonly string[] | null | undefined): SQL {
  return and(
    eq(outboxEventsTable.topic, MONEY_EVENT_TOPIC),
    sql`${outboxEventsTable.orgUnitId} in (select id from org_units where path @> array[${rootUnitId}::uuid])`,
    visibleCostsFilter(ctx.actor!, outboxEventsTable.orgUnitId),
    // A person budget's events (its thresholds and refusals name the person) are shown as the budget's counters are.
    personVisibleFilter(ctx.actor!, sql`(${outboxEventsTable.payload} -> 'data' ->> 'person')`),
    kinds?.length ? inArray(outboxEventsTable.kind, [...kinds]) : undefined,
  )!;
}

/** Keyset position of an event: (created_at, id), read from the row itself, so no timestamp precision is lost. */
function positionOf(cursor: string, arg: 'after' | 'before'): SQL {
  if (!isUuid(cursor)) throw new ValidationError(arg, 'invalid cursor');
  return sql`(select e.created_at, e.id from outbox_events e where e.id = ${cursor}::uuid and e.topic = ${MONEY_EVENT_TOPIC})`;
}

builder.queryFields((t) => ({
  moneyEvents: t.connection({
    type: MoneyEventRef,
    authScopes: { authenticated: true },
    description:
      "Money events of a unit and every unit below it, newest first, optionally of some kinds only. Only events of units whose costs the caller may read are listed (ADMIN and FINANCE: all; MANAGER and MEMBER: their own subtree; a SERVICE token: its project). NOT_FOUND when the unit does not exist or the caller may not see it.",
    args: {
      orgUnitId: t.arg.id({ required: true, description: 'Global id of the subtree root.' }),
      kinds: t.arg({ type: [MoneyEventKindEnum], required: false, description: 'Only these kinds (all when omitted or empty).' }),
    },
    resolve: async (_r, args, ctx) => {
      const unit = await requireVisibleUnit(ctx, decodeId(String(args.orgUnitId), 'OrgUnit'));
      const filter = visibleMoneyEventsFilter(ctx, unit.id, args.kinds as string[] | null | undefined);
      return cursorPage<MoneyEvent>(ctx, args, (e) => e.id, async ({ before, after, limit, inverted }) => {
        const row = sql`(${outboxEventsTable.createdAt}, ${outboxEventsTable.id})`;
        const rows = await ctx.db
          .select({ payload: outboxEventsTable.payload })
          .from(outboxEventsTable)
          .where(
            and(
              filter,
              after ? sql`${row} < ${positionOf(after, 'after')}` : undefined,
              before ? sql`${row} > ${positionOf(before, 'before')}` : undefined,
            ),
          )
          .orderBy(...(inverted ? [asc(outboxEventsTable.createdAt), asc(outboxEventsTable.id)] : [desc(outboxEventsTable.createdAt), desc(outboxEventsTable.id)]))
          .limit(limit);
        return rows.map((r) => moneyEventOf(r.payload));
      });
    },
  }),
}));

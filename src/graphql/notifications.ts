// Notification channels, rules and their delivery log (docs/notifications.md). ADMIN and FINANCE manage them
// everywhere, a MANAGER in its own subtree; a channel or rule of a unit the caller may not read is NotFound, one it may
// read but not manage is Forbidden. A channel's URL and secrets are never returned (only `display`); a webhook's
// signing secret is returned once, by create and by update with rotateSigningSecret. Every change is audited (without
// secrets).
import { and, asc, desc, eq, inArray, lt, sql } from 'drizzle-orm';
import { builder } from './builder.js';
import { MUTATION_ERRORS } from './errors.js';
import { decodeId } from './ids.js';
import { OrgUnitRef } from './org.js';
import { visibleUnit } from './visibility.js';
import type { GraphQLContext } from './context.js';
import {
  NOTIFICATION_CHANNEL_KINDS,
  OUTBOX_STATUSES,
  notificationChannelsTable,
  notificationRulesTable,
  outboxDeliveriesTable,
  outboxEventsTable,
} from '../db/schema.js';
import { canManageNotificationsOn, seesEverything } from '../auth/actor.js';
import { recordAudit } from '../audit/audit.js';
import { ForbiddenError, NotFoundError, ValidationError } from '../errors.js';
import {
  auditedChannel,
  checkChannelKind,
  checkEventKinds,
  createChannel,
  updateChannel,
  type ChannelConfigInput,
  type ChannelRow,
  type RuleRow,
  type UrlCheck,
} from '../notifications/channels.js';
import { checkCallbackUrl } from '../jobs/callback.js';
import { CHANNEL_TOPICS } from '../notifications/delivery.js';
import { MONEY_EVENT_KINDS } from '../notifications/events.js';
import type { OrgUnitRow } from '../org/units.js';

type EventRow = typeof outboxEventsTable.$inferSelect;
type DeliveryRow = typeof outboxDeliveriesTable.$inferSelect;

const ChannelKindEnum = builder.enumType('NotificationChannelKind', {
  description: 'WEBHOOK: a signed JSON POST; SLACK, TEAMS: incoming webhooks of those tools; EMAIL: e-mail over SMTP.',
  values: NOTIFICATION_CHANNEL_KINDS,
});

export const MoneyEventKindEnum = builder.enumType('MoneyEventKind', {
  description: 'The kinds of money events (docs/notifications.md), e.g. BUDGET_THRESHOLD_CROSSED for budget.threshold_crossed.',
  values: Object.fromEntries(MONEY_EVENT_KINDS.map((k) => [k.toUpperCase().replace(/\./g, '_'), { value: k, description: k }])),
});

const DeliveryStatusEnum = builder.enumType('NotificationDeliveryStatus', {
  description: 'PENDING: not delivered yet (waiting for an attempt or a retry); DELIVERED; DEAD: given up after the last attempt.',
  values: OUTBOX_STATUSES,
});

/** The unit a channel or rule belongs to, when the caller manages notifications there; else NotFound or Forbidden. */
async function managedUnit(ctx: GraphQLContext, unitId: string, globalId: string, typename = 'OrgUnit'): Promise<OrgUnitRow> {
  const unit = await visibleUnit(ctx, unitId);
  if (!unit) throw new NotFoundError(typename, globalId);
  if (!canManageNotificationsOn(ctx.actor!, unit)) throw new ForbiddenError('only ADMIN, FINANCE, or a MANAGER of this unit or of one above it, manage its notifications');
  return unit;
}

async function managedChannel(ctx: GraphQLContext, globalId: string): Promise<ChannelRow> {
  const id = decodeId(globalId, 'NotificationChannel');
  const [row] = await ctx.db.select().from(notificationChannelsTable).where(eq(notificationChannelsTable.id, id));
  // A channel the caller does not manage reads as absent (its existence is not told).
  const unit = row ? await visibleUnit(ctx, row.orgUnitId) : null;
  if (!row || !unit || !canManageNotificationsOn(ctx.actor!, unit)) throw new NotFoundError('NotificationChannel', globalId);
  return row;
}

export const NotificationChannelRef = builder.objectRef<ChannelRow>('NotificationChannel');
export const NotificationRuleRef = builder.objectRef<RuleRow>('NotificationRule');

const NotificationAttemptRef = builder.objectRef<DeliveryRow>('NotificationAttempt').implement({
  description: 'One attempt to deliver an event to a channel.',
  fields: (t) => ({
    attempt: t.exposeInt('attempt', { description: 'Attempt number, from 1.' }),
    outcome: t.exposeString('outcome', { description: 'delivered, failed (retried later) or gave_up.' }),
    httpStatus: t.exposeInt('httpStatus', { nullable: true, description: "The receiver's HTTP status (null when none arrived, and for e-mail)." }),
    error: t.exposeString('error', { nullable: true, description: 'Why it failed (never a URL or secret).' }),
    startedAt: t.field({ type: 'DateTime', description: 'Start of the attempt.', resolve: (d) => d.startedAt }),
    durationMs: t.exposeInt('durationMs', { description: 'How long it took, in milliseconds.' }),
  }),
});

const NotificationDeliveryRef = builder.objectRef<EventRow>('NotificationDelivery').implement({
  description: 'One money event on its way to one channel.',
  fields: (t) => ({
    deliveryId: t.exposeString('id', { description: 'This delivery (X-Gateway-Delivery-Id on webhooks): the same on every attempt.' }),
    eventId: t.string({ description: 'The money event (X-Gateway-Event-Id): the same for every channel it goes to.', resolve: (e) => (e.payload as { id: string }).id }),
    eventKind: t.exposeString('kind', { description: 'e.g. budget.threshold_crossed.' }),
    status: t.field({ type: DeliveryStatusEnum, description: 'Delivery state.', resolve: (e) => e.status }),
    attempts: t.exposeInt('attempts', { description: 'Attempts made so far.' }),
    maxAttempts: t.exposeInt('maxAttempts', { description: 'Attempts made at most before giving up.' }),
    nextAttemptAt: t.field({ type: 'DateTime', nullable: true, description: 'When the next attempt is due (null once delivered or given up).', resolve: (e) => e.nextAttemptAt }),
    deliveredAt: t.field({ type: 'DateTime', nullable: true, description: 'When the channel accepted it.', resolve: (e) => e.deliveredAt }),
    lastError: t.exposeString('lastError', { nullable: true, description: 'Why the last attempt failed.' }),
    createdAt: t.field({ type: 'DateTime', description: 'When the event was routed to the channel.', resolve: (e) => e.createdAt }),
    event: t.field({ type: 'JSON', description: 'The event as the channel receives it (a WEBHOOK gets exactly this body).', resolve: (e) => e.payload }),
    log: t.field({
      type: [NotificationAttemptRef],
      description: 'Every attempt, oldest first.',
      resolve: (e, _a, ctx) => ctx.db.select().from(outboxDeliveriesTable).where(eq(outboxDeliveriesTable.eventId, e.id)).orderBy(asc(outboxDeliveriesTable.attempt)),
    }),
  }),
});

builder.node(NotificationChannelRef, {
  description: 'Where money events go. Its URL and secrets are stored encrypted and never shown; `display` says where it points.',
  id: { resolve: (c) => c.id },
  loadOne: async (id, ctx) => {
    const [row] = await ctx.db.select().from(notificationChannelsTable).where(eq(notificationChannelsTable.id, id));
    const unit = row ? await visibleUnit(ctx, row.orgUnitId) : null;
    return row && unit && canManageNotificationsOn(ctx.actor!, unit) ? row : null;
  },
  fields: (t) => ({
    orgUnit: t.field({ type: OrgUnitRef, description: 'The unit whose managers manage it.', resolve: async (c, _a, ctx) => (await ctx.loaders.unitById.load(c.orgUnitId))! }),
    kind: t.field({ type: ChannelKindEnum, description: 'Channel kind.', resolve: (c) => c.kind }),
    name: t.exposeString('name', { description: 'Name, unique within its unit.' }),
    display: t.exposeString('display', { description: 'Where it points, without secrets: a host, or the recipients.' }),
    enabled: t.exposeBoolean('enabled', { description: 'false: nothing is routed to it, and pending deliveries are given up.' }),
    createdAt: t.field({ type: 'DateTime', description: 'Created.', resolve: (c) => c.createdAt }),
    updatedAt: t.field({ type: 'DateTime', description: 'Last changed.', resolve: (c) => c.updatedAt }),
  }),
});

builder.node(NotificationRuleRef, {
  description: 'Routes the money events of a subtree (of the kinds named) to a channel.',
  id: { resolve: (r) => r.id },
  loadOne: async (id, ctx) => {
    const [row] = await ctx.db.select().from(notificationRulesTable).where(eq(notificationRulesTable.id, id));
    const unit = row ? await visibleUnit(ctx, row.orgUnitId) : null;
    return row && unit && canManageNotificationsOn(ctx.actor!, unit) ? row : null;
  },
  fields: (t) => ({
    orgUnit: t.field({ type: OrgUnitRef, description: 'Events of this unit and every unit below it.', resolve: async (r, _a, ctx) => (await ctx.loaders.unitById.load(r.orgUnitId))! }),
    channel: t.field({
      type: NotificationChannelRef,
      description: 'Where they go.',
      resolve: async (r, _a, ctx) => (await ctx.db.select().from(notificationChannelsTable).where(eq(notificationChannelsTable.id, r.channelId)))[0]!,
    }),
    eventKinds: t.field({ type: [MoneyEventKindEnum], description: 'Kinds routed.', resolve: (r) => r.eventKinds as never }),
    createdAt: t.field({ type: 'DateTime', description: 'Created.', resolve: (r) => r.createdAt }),
  }),
});

/** SQL filter on a table's org_unit_id: units the caller manages notifications on. */
function managedUnitsFilter(ctx: GraphQLContext, column: typeof notificationChannelsTable.orgUnitId | typeof notificationRulesTable.orgUnitId) {
  const actor = ctx.actor!;
  if (seesEverything(actor)) return undefined;
  if (actor.role !== 'MANAGER' || !actor.unitId) return sql`false`;
  return sql`${column} in (select id from org_units where path @> array[${actor.unitId}::uuid])`;
}

builder.queryFields((t) => ({
  notificationChannels: t.field({
    type: [NotificationChannelRef],
    authScopes: { authenticated: true },
    description: 'Channels the caller manages (ADMIN and FINANCE: all; a MANAGER: those of its subtree), by name.',
    resolve: (_r, _a, ctx) =>
      ctx.db.select().from(notificationChannelsTable).where(managedUnitsFilter(ctx, notificationChannelsTable.orgUnitId)).orderBy(asc(notificationChannelsTable.name), asc(notificationChannelsTable.id)),
  }),
  notificationRules: t.field({
    type: [NotificationRuleRef],
    authScopes: { authenticated: true },
    description: 'Rules the caller manages (ADMIN and FINANCE: all; a MANAGER: those of its subtree).',
    resolve: (_r, _a, ctx) =>
      ctx.db.select().from(notificationRulesTable).where(managedUnitsFilter(ctx, notificationRulesTable.orgUnitId)).orderBy(asc(notificationRulesTable.createdAt), asc(notificationRulesTable.id)),
  }),
  notificationDeliveries: t.field({
    type: [NotificationDeliveryRef],
    authScopes: { authenticated: true },
    description: "A channel's deliveries, newest first (at most `first`, default 50, up to 200), optionally only those with a status.",
    args: {
      channelId: t.arg.id({ required: true, description: 'Global id of the channel.' }),
      status: t.arg({ type: DeliveryStatusEnum, required: false, description: 'Only deliveries in this state.' }),
      first: t.arg.int({ required: false, description: 'How many (1 to 200, default 50).' }),
      before: t.arg({ type: 'DateTime', required: false, description: 'Only deliveries created before this time (paging).' }),
    },
    resolve: async (_r, args, ctx) => {
      const channel = await managedChannel(ctx, String(args.channelId));
      const first = args.first ?? 50;
      if (first < 1 || first > 200) throw new ValidationError('first', 'first must be between 1 and 200');
      return ctx.db
        .select()
        .from(outboxEventsTable)
        .where(
          and(
            inArray(outboxEventsTable.topic, Object.values(CHANNEL_TOPICS)),
            sql`${outboxEventsTable.destination}->>'channelId' = ${channel.id}`,
            args.status ? eq(outboxEventsTable.status, args.status) : undefined,
            args.before ? lt(outboxEventsTable.createdAt, args.before as Date) : undefined,
          ),
        )
        .orderBy(desc(outboxEventsTable.createdAt), desc(outboxEventsTable.id))
        .limit(first);
    },
  }),
}));

const ChannelConfigInput = builder.inputType('NotificationChannelConfigInput', {
  description: 'Where a channel points. WEBHOOK, SLACK, TEAMS: url. EMAIL: smtpUrl, from, to. Stored encrypted; never shown again.',
  fields: (t) => ({
    url: t.string({ required: false, description: 'WEBHOOK, SLACK, TEAMS: the https URL to POST to (the same address rules as app callbacks).' }),
    smtpUrl: t.string({ required: false, description: 'EMAIL: smtp://user:password@host:port (STARTTLS when offered) or smtps://… (TLS).' }),
    from: t.string({ required: false, description: 'EMAIL: sender address.' }),
    to: t.stringList({ required: false, description: 'EMAIL: 1 to 20 recipients.' }),
  }),
});

const ChannelPayload = builder.simpleObject('NotificationChannelPayload', {
  description: 'The channel, and for a WEBHOOK a new signing secret (shown this once).',
  fields: (f) => ({
    channel: f.field({ type: NotificationChannelRef, description: 'The channel.' }),
    signingSecret: f.string({ nullable: true, description: 'WEBHOOK: the secret that signs its deliveries (X-Gateway-Signature), when one was made by this call. Stored only encrypted; it cannot be shown again.' }),
  }),
});

/** Channel URLs follow the app-callback rules and the operator's CALLBACK_ALLOW_HTTP / CALLBACK_ALLOW_PRIVATE. */
function channelUrlCheck(ctx: GraphQLContext): UrlCheck {
  return (value, field) => checkCallbackUrl(value, ctx.services.config.callbacks, field);
}

function configOf(input: { url?: string | null; smtpUrl?: string | null; from?: string | null; to?: readonly string[] | null } | null | undefined): ChannelConfigInput | null {
  return input ? { url: input.url ?? null, smtpUrl: input.smtpUrl ?? null, from: input.from ?? null, to: input.to ?? null } : null;
}

builder.mutationFields((t) => ({
  createNotificationChannel: t.fieldWithInput({
    type: ChannelPayload,
    errors: { types: MUTATION_ERRORS },
    authScopes: { authenticated: true },
    description: 'Creates a channel on a unit (ADMIN, FINANCE, or a MANAGER of the unit or one above it). Audited without its URL or secrets.',
    input: {
      orgUnitId: t.input.id({ required: true, description: 'Global id of the unit whose managers manage the channel.' }),
      kind: t.input.field({ type: ChannelKindEnum, required: true, description: 'Channel kind.' }),
      name: t.input.string({ required: true, description: 'Name, unique within the unit.' }),
      config: t.input.field({ type: ChannelConfigInput, required: true, description: 'Where it points.' }),
    },
    resolve: async (_r, { input }, ctx) => {
      const unit = await managedUnit(ctx, decodeId(String(input.orgUnitId), 'OrgUnit'), String(input.orgUnitId));
      const kind = checkChannelKind(input.kind);
      return ctx.db.transaction(async (tx) => {
        const { channel, signingSecret } = await createChannel(tx, ctx.services.box, { orgUnitId: unit.id, kind, name: input.name, config: configOf(input.config)! }, channelUrlCheck(ctx), ctx.now);
        await recordAudit(tx, ctx.actor!, { action: 'notificationChannel.create', entityType: 'NotificationChannel', entityId: channel.id, before: null, after: auditedChannel(channel) });
        return { channel, signingSecret };
      });
    },
  }),
  updateNotificationChannel: t.fieldWithInput({
    type: ChannelPayload,
    errors: { types: MUTATION_ERRORS },
    authScopes: { authenticated: true },
    description: "Changes a channel's name, enabled flag or configuration (given whole), or gives a WEBHOOK a new signing secret. Audited without secrets.",
    input: {
      id: t.input.id({ required: true, description: 'Global id of the channel.' }),
      name: t.input.string({ required: false, description: 'New name.' }),
      enabled: t.input.boolean({ required: false, description: 'Enable or disable.' }),
      config: t.input.field({ type: ChannelConfigInput, required: false, description: 'New configuration (replaces the old).' }),
      rotateSigningSecret: t.input.boolean({ required: false, description: 'WEBHOOK: make a new signing secret (returned once); the old one stops signing at once.' }),
    },
    resolve: async (_r, { input }, ctx) => {
      const channel = await managedChannel(ctx, String(input.id));
      return ctx.db.transaction(async (tx) => {
        const [locked] = await tx.select().from(notificationChannelsTable).where(eq(notificationChannelsTable.id, channel.id)).for('update');
        if (!locked) throw new NotFoundError('NotificationChannel', String(input.id));
        const result = await updateChannel(
          tx,
          ctx.services.box,
          locked,
          { name: input.name, enabled: input.enabled, config: configOf(input.config), rotateSigningSecret: input.rotateSigningSecret },
          channelUrlCheck(ctx),
          ctx.now,
        );
        await recordAudit(tx, ctx.actor!, {
          action: 'notificationChannel.update',
          entityType: 'NotificationChannel',
          entityId: channel.id,
          before: auditedChannel(locked),
          after: { ...auditedChannel(result.channel), signingSecretRotated: result.signingSecret !== null },
        });
        return result;
      });
    },
  }),
  deleteNotificationChannel: t.fieldWithInput({
    type: builder.simpleObject('DeleteNotificationChannelPayload', {
      description: 'The deleted channel id (its rules are deleted with it; its pending deliveries are given up).',
      fields: (f) => ({ deletedId: f.id({ description: 'Global id of the deleted channel.' }) }),
    }),
    errors: { types: MUTATION_ERRORS },
    authScopes: { authenticated: true },
    description: 'Deletes a channel and its rules. Audited.',
    input: { id: t.input.id({ required: true, description: 'Global id of the channel.' }) },
    resolve: async (_r, { input }, ctx) => {
      const channel = await managedChannel(ctx, String(input.id));
      await ctx.db.transaction(async (tx) => {
        await tx.delete(notificationRulesTable).where(eq(notificationRulesTable.channelId, channel.id));
        await tx.delete(notificationChannelsTable).where(eq(notificationChannelsTable.id, channel.id));
        await recordAudit(tx, ctx.actor!, { action: 'notificationChannel.delete', entityType: 'NotificationChannel', entityId: channel.id, before: auditedChannel(channel), after: null });
      });
      return { deletedId: String(input.id) };
    },
  }),
  createNotificationRule: t.fieldWithInput({
    type: builder.simpleObject('CreateNotificationRulePayload', {
      description: 'The rule.',
      fields: (f) => ({ rule: f.field({ type: NotificationRuleRef, description: 'The rule.' }) }),
    }),
    errors: { types: MUTATION_ERRORS },
    authScopes: { authenticated: true },
    description:
      'Routes the money events of a subtree (its root unit) of the kinds named to a channel. The caller must manage notifications on both the unit and the channel (ADMIN and FINANCE everywhere, a MANAGER in its own subtree). Audited.',
    input: {
      orgUnitId: t.input.id({ required: true, description: 'Global id of the subtree root.' }),
      channelId: t.input.id({ required: true, description: 'Global id of the channel.' }),
      eventKinds: t.input.field({ type: [MoneyEventKindEnum], required: true, description: 'Kinds to route (at least one).' }),
    },
    resolve: async (_r, { input }, ctx) => {
      const unit = await managedUnit(ctx, decodeId(String(input.orgUnitId), 'OrgUnit'), String(input.orgUnitId));
      const channel = await managedChannel(ctx, String(input.channelId));
      const kinds = checkEventKinds(input.eventKinds as string[]);
      const rule = await ctx.db.transaction(async (tx) => {
        const [row] = await tx.insert(notificationRulesTable).values({ orgUnitId: unit.id, channelId: channel.id, eventKinds: kinds, createdAt: ctx.now }).returning();
        await recordAudit(tx, ctx.actor!, { action: 'notificationRule.create', entityType: 'NotificationRule', entityId: row!.id, before: null, after: { orgUnitId: unit.id, channelId: channel.id, eventKinds: kinds } });
        return row!;
      });
      return { rule };
    },
  }),
  deleteNotificationRule: t.fieldWithInput({
    type: builder.simpleObject('DeleteNotificationRulePayload', {
      description: 'The deleted rule id.',
      fields: (f) => ({ deletedId: f.id({ description: 'Global id of the deleted rule.' }) }),
    }),
    errors: { types: MUTATION_ERRORS },
    authScopes: { authenticated: true },
    description: 'Deletes a rule (the caller must manage notifications on its unit). Audited.',
    input: { id: t.input.id({ required: true, description: 'Global id of the rule.' }) },
    resolve: async (_r, { input }, ctx) => {
      const id = decodeId(String(input.id), 'NotificationRule');
      const [rule] = await ctx.db.select().from(notificationRulesTable).where(eq(notificationRulesTable.id, id));
      if (!rule) throw new NotFoundError('NotificationRule', String(input.id));
      const unit = await visibleUnit(ctx, rule.orgUnitId);
      if (!unit || !canManageNotificationsOn(ctx.actor!, unit)) throw new NotFoundError('NotificationRule', String(input.id));
      await ctx.db.transaction(async (tx) => {
        await tx.delete(notificationRulesTable).where(eq(notificationRulesTable.id, id));
        await recordAudit(tx, ctx.actor!, { action: 'notificationRule.delete', entityType: 'NotificationRule', entityId: id, before: { orgUnitId: rule.orgUnitId, channelId: rule.channelId, eventKinds: rule.eventKinds }, after: null });
      });
      return { deletedId: String(input.id) };
    },
  }),
}));


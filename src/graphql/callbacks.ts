// App callbacks: a job's callback (its host only) and its delivery log, and the rotation of a service token's
// callback signing secret.
import { and, asc, eq, inArray } from 'drizzle-orm';
import { builder } from './builder.js';
import { MUTATION_ERRORS } from './errors.js';
import { decodeId } from './ids.js';
import { JobRef } from './jobs.js';
import { ServiceTokenRef, auditedToken } from './auth.js';
import { visibleUnit } from './visibility.js';
import { OUTBOX_STATUSES, outboxDeliveriesTable, outboxEventsTable, serviceTokensTable, type AppCallback } from '../db/schema.js';
import { setCallbackSecret } from '../auth/callback-secrets.js';
import { recordAudit } from '../audit/audit.js';
import { NotFoundError } from '../errors.js';
import { APP_CALLBACK_TOPIC } from '../outbox/app-callback.js';

type EventRow = typeof outboxEventsTable.$inferSelect;
type DeliveryRow = typeof outboxDeliveriesTable.$inferSelect;

const OutboxStatusEnum = builder.enumType('OutboxStatus', {
  description: 'PENDING: not delivered yet (waiting for an attempt or a retry); DELIVERED: a receiver answered 2xx; DEAD: given up after the last attempt.',
  values: OUTBOX_STATUSES,
});

const CallbackDeliveryRef = builder.objectRef<DeliveryRow>('CallbackDelivery').implement({
  description: 'One attempt to deliver an event.',
  fields: (t) => ({
    attempt: t.exposeInt('attempt', { description: 'Attempt number, from 1.' }),
    outcome: t.exposeString('outcome', { description: 'delivered, failed (retried later) or gave_up.' }),
    httpStatus: t.exposeInt('httpStatus', { nullable: true, description: "The receiver's HTTP status (null when none arrived)." }),
    error: t.exposeString('error', { nullable: true, description: 'Why it failed.' }),
    startedAt: t.field({ type: 'DateTime', description: 'Start of the attempt.', resolve: (d) => d.startedAt }),
    durationMs: t.exposeInt('durationMs', { description: 'How long it took, in milliseconds.' }),
  }),
});

const CallbackEventRef = builder.objectRef<EventRow>('CallbackEvent').implement({
  description: "One event of the job's end sent to the app (one per output HeyGen made, or one for the job when none was made).",
  fields: (t) => ({
    eventId: t.exposeString('id', { description: "The event's id (event_id in the body, X-Gateway-Event-Id header): the same on every attempt." }),
    eventType: t.exposeString('kind', { description: 'HeyGen event type, e.g. avatar_video.success.' }),
    status: t.field({ type: OutboxStatusEnum, description: 'Delivery state.', resolve: (e) => e.status }),
    attempts: t.exposeInt('attempts', { description: 'Attempts made so far.' }),
    maxAttempts: t.exposeInt('maxAttempts', { description: 'Attempts made at most before giving up.' }),
    nextAttemptAt: t.field({ type: 'DateTime', nullable: true, description: 'When the next attempt is due (null once delivered or given up).', resolve: (e) => e.nextAttemptAt }),
    deliveredAt: t.field({ type: 'DateTime', nullable: true, description: 'When a receiver accepted it.', resolve: (e) => e.deliveredAt }),
    lastError: t.exposeString('lastError', { nullable: true, description: 'Why the last attempt failed.' }),
    createdAt: t.field({ type: 'DateTime', description: 'When it was written (with the settlement).', resolve: (e) => e.createdAt }),
    payload: t.field({ type: 'JSON', description: 'The body sent (HeyGen webhook event shape).', resolve: (e) => e.payload }),
    deliveries: t.field({
      type: [CallbackDeliveryRef],
      description: 'Every attempt, oldest first.',
      resolve: (e, _a, ctx) =>
        ctx.db.select().from(outboxDeliveriesTable).where(eq(outboxDeliveriesTable.eventId, e.id)).orderBy(asc(outboxDeliveriesTable.attempt)),
    }),
  }),
});

const JobCallbackRef = builder.objectRef<{ jobId: string; callback: AppCallback }>('JobCallback').implement({
  description: "The app's own callback of a job: where its end is told (the host only) and how that went.",
  fields: (t) => ({
    host: t.string({ description: 'Host (and port) of the callback URL; the rest of the URL is not shown.', resolve: (c) => new URL(c.callback.url).host }),
    callbackId: t.string({ nullable: true, description: 'The callback_id the app asked to have echoed.', resolve: (c) => c.callback.callbackId }),
    events: t.field({
      type: [CallbackEventRef],
      description: 'Events written when the job ended (empty while it runs), oldest first.',
      resolve: (c, _a, ctx) =>
        ctx.db
          .select()
          .from(outboxEventsTable)
          .where(and(eq(outboxEventsTable.jobId, c.jobId), eq(outboxEventsTable.topic, APP_CALLBACK_TOPIC)))
          .orderBy(asc(outboxEventsTable.createdAt), asc(outboxEventsTable.dedupeKey)),
    }),
  }),
});

builder.objectField(JobRef, 'callback', (t) =>
  t.field({
    type: JobCallbackRef,
    nullable: true,
    description: "The app's callback (callback_url / callback_id of the body, kept by the gateway and not sent to HeyGen); null when it named none.",
    resolve: (j) => (j.callback ? { jobId: j.id, callback: j.callback } : null),
  }),
);

builder.mutationFields((t) => ({
  rotateCallbackSecret: t.fieldWithInput({
    type: builder.simpleObject('RotateCallbackSecretPayload', {
      description: 'The new callback signing secret, shown this once.',
      fields: (f) => ({
        callbackSigningSecret: f.string({ description: 'The new secret. Stored only encrypted; it cannot be shown again.' }),
        serviceToken: f.field({ type: ServiceTokenRef, description: 'The token record.' }),
      }),
    }),
    errors: { types: MUTATION_ERRORS },
    // The token itself (its app), or whoever manages its project; a token of a unit the caller may not read is not found.
    authScopes: async (_r, { input }, ctx) => {
      const id = decodeId(String(input.serviceTokenId), 'ServiceToken');
      if (ctx.actor?.role === 'SERVICE' && ctx.actor.tokenId === id) return { authenticated: true };
      const [row] = await ctx.db.select({ orgUnitId: serviceTokensTable.orgUnitId }).from(serviceTokensTable).where(eq(serviceTokensTable.id, id));
      const unit = row ? await visibleUnit(ctx, row.orgUnitId) : null;
      if (!unit) throw new NotFoundError('ServiceToken', String(input.serviceTokenId));
      return { canManage: unit.id };
    },
    description:
      "Gives a service token a new callback signing secret and returns it once (the token itself; ADMIN; a MANAGER of its project or of a unit above it). Deliveries from then on, retries of earlier events included, are signed with it. Audited (without the secret).",
    input: { serviceTokenId: t.input.id({ required: true, description: 'Global id of the token.' }) },
    resolve: async (_r, { input }, ctx) => {
      const id = decodeId(String(input.serviceTokenId), 'ServiceToken');
      return ctx.db.transaction(async (tx) => {
        const [before] = await tx.select().from(serviceTokensTable).where(inArray(serviceTokensTable.id, [id])).for('update');
        if (!before) throw new NotFoundError('ServiceToken', String(input.serviceTokenId));
        const secret = await setCallbackSecret(tx, ctx.services.box, id, ctx.now);
        const [after] = await tx.select().from(serviceTokensTable).where(eq(serviceTokensTable.id, id));
        await recordAudit(tx, ctx.actor!, {
          action: 'serviceToken.rotateCallbackSecret',
          entityType: 'ServiceToken',
          entityId: id,
          before: auditedToken(before),
          after: auditedToken(after!),
        });
        return { callbackSigningSecret: secret, serviceToken: after! };
      });
    },
  }),
}));

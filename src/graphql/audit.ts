// The audit trail, read-only: who changed what, newest first. ADMIN and FINANCE only (it names every unit,
// token and account of the organization).
import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { and, asc, desc, eq, gte, lt, sql, type SQL } from 'drizzle-orm';
import { builder } from './builder.js';
import { auditEventsTable } from '../db/schema.js';
import { ValidationError } from '../errors.js';
import { isStorableBigintText } from '../validation.js';
import { cursorPage } from './pagination.js';

type AuditEventRow = typeof auditEventsTable.$inferSelect;

const AuditEventRef = builder.objectRef<AuditEventRow>('AuditEvent').implement({
  description:
    'One change made through the API, written in the same transaction as the change: who (subject, role, token id), what (action), on what (entity), before and after (secrets only as hints), when, and the HTTP request it came with.',
  fields: (t) => ({
    id: t.id({ description: 'Opaque id of the event.', resolve: (e) => encodeGlobalID('AuditEvent', e.id.toString()) }),
    actorSubject: t.exposeString('actorSubject', { description: 'Subject of the token the change was made with.' }),
    actorRole: t.exposeString('actorRole', { description: 'Role the caller had (ADMIN, FINANCE, MANAGER, MEMBER, SERVICE), or SYSTEM for what the gateway itself decided (an expired hold, an overrun).' }),
    actorTokenId: t.exposeString('actorTokenId', { nullable: true, description: 'jti of the token the change was made with.' }),
    requestId: t.exposeString('requestId', { nullable: true, description: "The request's X-Request-Id (or the one the gateway made up)." }),
    action: t.exposeString('action', { description: 'What was done, as `entity.verb` (e.g. `budget.set`, `serviceToken.revoke`, `job.submit`).' }),
    entityType: t.exposeString('entityType', { description: 'GraphQL type of the object changed (OrgUnit, Budget, Account, Job, ServiceToken, …).' }),
    entityId: t.id({ description: 'Global id of the object changed.', resolve: (e) => encodeGlobalID(e.entityType, e.entityId) }),
    before: t.field({ type: 'JSON', nullable: true, description: 'State before the change (null for a creation); amounts as decimal strings.', resolve: (e) => e.before }),
    after: t.field({ type: 'JSON', nullable: true, description: 'State after the change; secrets appear only as hints.', resolve: (e) => e.after }),
    createdAt: t.field({ type: 'DateTime', description: 'When the change committed (its transaction began).', resolve: (e) => e.createdAt }),
  }),
});

const AuditEventFilter = builder.inputType('AuditEventFilter', {
  description: 'Narrows the audit trail; all given fields must match.',
  fields: (t) => ({
    actorSubject: t.string({ required: false, description: 'Exactly this subject.' }),
    action: t.string({ required: false, description: 'Exactly this action.' }),
    entityType: t.string({ required: false, description: 'Exactly this entity type.' }),
    entityId: t.id({ required: false, description: 'Global id of the object changed.' }),
    from: t.field({ type: 'DateTime', required: false, description: 'Events at or after this instant.' }),
    to: t.field({ type: 'DateTime', required: false, description: 'Events before this instant.' }),
  }),
});

/** The entity a global id names, or null when it is not one. */
function entityOf(globalId: string): { type: string; id: string } | null {
  try {
    const { typename, id } = decodeGlobalID(globalId);
    return /^[A-Z][A-Za-z]{0,63}$/.test(typename) && id.length > 0 ? { type: typename, id } : null;
  } catch {
    return null;
  }
}

/** Keyset position of an event: (created_at, id), read from the row itself, so no timestamp precision is lost. */
function positionOf(cursor: string): SQL {
  if (!isStorableBigintText(cursor)) throw new ValidationError('after', 'invalid cursor');
  return sql`(select a.created_at, a.id from audit_events a where a.id = ${cursor}::bigint)`;
}

builder.queryFields((t) => ({
  auditEvents: t.connection({
    type: AuditEventRef,
    authScopes: { auditReader: true },
    description: 'The audit trail, newest first (ADMIN and FINANCE). One event per change made by a mutation; refused mutations leave none.',
    args: { filter: t.arg({ type: AuditEventFilter, required: false, description: 'Filter.' }) },
    resolve: (_r, args, ctx) => {
      const f = args.filter;
      const entity = f?.entityId != null ? entityOf(String(f.entityId)) : null;
      return cursorPage<AuditEventRow>(
        ctx,
        args,
        (e: AuditEventRow) => e.id.toString(),
        async ({ before, after, limit, inverted }): Promise<AuditEventRow[]> => {
          if (f?.entityId && !entity) return [];
          const row = sql`(${auditEventsTable.createdAt}, ${auditEventsTable.id})`;
          return ctx.db
            .select()
            .from(auditEventsTable)
            .where(
              and(
                f?.actorSubject ? eq(auditEventsTable.actorSubject, f.actorSubject) : undefined,
                f?.action ? eq(auditEventsTable.action, f.action) : undefined,
                f?.entityType ? eq(auditEventsTable.entityType, f.entityType) : undefined,
                entity ? and(eq(auditEventsTable.entityType, entity.type), eq(auditEventsTable.entityId, entity.id)) : undefined,
                f?.from ? gte(auditEventsTable.createdAt, f.from) : undefined,
                f?.to ? lt(auditEventsTable.createdAt, f.to) : undefined,
                after ? sql`${row} < ${positionOf(after)}` : undefined,
                before ? sql`${row} > ${positionOf(before)}` : undefined,
              ),
            )
            .orderBy(...(inverted ? [asc(auditEventsTable.createdAt), asc(auditEventsTable.id)] : [desc(auditEventsTable.createdAt), desc(auditEventsTable.id)]))
            .limit(limit);
        },
      );
    },
  }),
}));

// The caller itself, and service tokens.
import { and, asc, desc, eq, gt, inArray, isNull, lt, or, sql } from 'drizzle-orm';
import { builder } from './builder.js';
import { MUTATION_ERRORS } from './errors.js';
import { decodeId, tryDecodeId } from './ids.js';
import { OrgUnitRef } from './org.js';
import { requireVisibleUnit, visibleServiceTokensFilter, visibleUnit } from './visibility.js';
import { orgUnitsTable, serviceTokensTable } from '../db/schema.js';
import { ROLES, canListServiceTokensOf, type Actor } from '../auth/actor.js';
import { recordAudit } from '../audit/audit.js';
import { NotFoundError, ValidationError } from '../errors.js';
import { isUuid } from '../org/units.js';
import { uuidArray } from '../ledger/ledger.js';
import { requireName } from '../validation.js';
import { isStorableInstant } from '../validation.js';
import { cursorPage } from './pagination.js';

const RoleEnum = builder.enumType('Role', { description: 'What a caller may do (docs/architecture.md, Identity and roles).', values: ROLES });

const ViewerRef = builder.objectRef<Actor>('Viewer').implement({
  description: 'The authenticated caller.',
  fields: (t) => ({
    subject: t.exposeString('subject', { description: 'Subject of the token.' }),
    role: t.field({ type: RoleEnum, description: 'Role.', resolve: (a) => a.role }),
    orgUnit: t.field({
      type: OrgUnitRef,
      nullable: true,
      description: 'The unit the role applies to (a SERVICE token: its project).',
      resolve: (a, _args, ctx) => visibleUnit(ctx, a.unitId),
    }),
  }),
});

type ServiceTokenRow = typeof serviceTokensTable.$inferSelect;

/** A token record the caller may see (canListServiceTokensOf on its project), or null. */
async function visibleServiceToken(ctx: Parameters<typeof visibleUnit>[0], id: string | null): Promise<ServiceTokenRow | null> {
  if (!id || !ctx.actor) return null;
  const [row] = await ctx.db.select().from(serviceTokensTable).where(eq(serviceTokensTable.id, id));
  if (!row) return null;
  const unit = await visibleUnit(ctx, row.orgUnitId);
  return unit && canListServiceTokensOf(ctx.actor, unit) ? row : null;
}

export const ServiceTokenRef = builder.objectRef<ServiceTokenRow>('ServiceToken');
builder.node(ServiceTokenRef, {
  description:
    'A token issued by the gateway for one project. Only its id (the jti) is stored: the token itself is shown once, at issue, and cannot be read again. Visible to those who manage the project, and to FINANCE.',
  id: { resolve: (s) => s.id },
  loadOne: (id, ctx) => visibleServiceToken(ctx, id),
  fields: (t) => ({
    name: t.exposeString('name', { description: 'Name.' }),
    orgUnit: t.field({ type: OrgUnitRef, description: 'The project.', resolve: async (s, _a, ctx) => (await ctx.loaders.unitById.load(s.orgUnitId))! }),
    createdBy: t.exposeString('createdBy', { description: 'Subject that issued it.' }),
    createdAt: t.field({ type: 'DateTime', description: 'Issue time.', resolve: (s) => s.createdAt }),
    expiresAt: t.field({ type: 'DateTime', description: 'Expiry.', resolve: (s) => s.expiresAt }),
    revokedAt: t.field({ type: 'DateTime', nullable: true, description: 'Revocation time (null while not revoked).', resolve: (s) => s.revokedAt }),
    lastUsedAt: t.field({ type: 'DateTime', nullable: true, description: 'Last use (to the minute).', resolve: (s) => s.lastUsedAt }),
    callbackSecretRotatedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When its callback signing secret was set (at issue, or by rotateCallbackSecret); null: it has none, and its app callbacks wait for one.',
      resolve: (s) => s.callbackSecretRotatedAt,
    }),
    active: t.boolean({
      description: 'True while the token is accepted: neither revoked nor expired.',
      resolve: (s, _a, ctx) => s.revokedAt === null && s.expiresAt.getTime() > ctx.now.getTime(),
    }),
  }),
});

function tokenCursor(row: ServiceTokenRow): string {
  return `${row.createdAt.toISOString()}|${row.id}`;
}
function parseTokenCursor(cursor: string): { at: Date; id: string } {
  const [at, id] = cursor.split('|');
  const date = new Date(at ?? '');
  if (!id || !isUuid(id) || !isStorableInstant(date)) throw new ValidationError('after', 'invalid cursor');
  return { at: date, id };
}

builder.queryFields((t) => ({
  viewer: t.field({
    type: ViewerRef,
    authScopes: { authenticated: true },
    description: 'The authenticated caller.',
    resolve: (_r, _a, ctx) => ctx.actor!,
  }),
  serviceTokens: t.connection({
    type: ServiceTokenRef,
    authScopes: { tokenLister: true },
    description:
      'Service tokens the caller may see, newest first: all for ADMIN and FINANCE, those of projects in its subtree for a MANAGER (MEMBER and SERVICE callers are refused). Revoked and expired tokens are listed too.',
    args: {
      orgUnitId: t.arg.id({
        required: false,
        description: 'Global id of a unit: only tokens of projects in its subtree. A unit the caller may not see matches nothing.',
      }),
    },
    resolve: async (_r, args, ctx) => {
      const unitId = args.orgUnitId != null ? tryDecodeId(String(args.orgUnitId), 'OrgUnit') : null;
      // A unit the caller cannot read narrows to nothing, exactly like a unit that does not exist.
      const unit = args.orgUnitId != null ? await visibleUnit(ctx, unitId) : null;
      return cursorPage<ServiceTokenRow>(
        ctx,
        args,
        tokenCursor,
        async ({ before, after, limit, inverted }): Promise<ServiceTokenRow[]> => {
          if (args.orgUnitId && !unit) return [];
          const a = after ? parseTokenCursor(after) : null;
          const b = before ? parseTokenCursor(before) : null;
          return ctx.db
            .select()
            .from(serviceTokensTable)
            .where(
              and(
                visibleServiceTokensFilter(ctx.actor!),
                unit
                  ? inArray(
                      serviceTokensTable.orgUnitId,
                      sql`(select ${orgUnitsTable.id} from ${orgUnitsTable} where ${orgUnitsTable.path} @> ${uuidArray([unit.id])})`,
                    )
                  : undefined,
                a ? or(lt(serviceTokensTable.createdAt, a.at), and(eq(serviceTokensTable.createdAt, a.at), lt(serviceTokensTable.id, a.id))) : undefined,
                b ? or(gt(serviceTokensTable.createdAt, b.at), and(eq(serviceTokensTable.createdAt, b.at), gt(serviceTokensTable.id, b.id))) : undefined,
              ),
            )
            .orderBy(
              ...(inverted
                ? [asc(serviceTokensTable.createdAt), asc(serviceTokensTable.id)]
                : [desc(serviceTokensTable.createdAt), desc(serviceTokensTable.id)]),
            )
            .limit(limit);
        },
      );
    },
  }),
}));

const MAX_TOKEN_DAYS = 366;

/** What the audit trail keeps of a token record: never the token (it is not stored anywhere). */
export function auditedToken(row: ServiceTokenRow) {
  return {
    id: row.id,
    orgUnitId: row.orgUnitId,
    name: row.name,
    createdBy: row.createdBy,
    expiresAt: row.expiresAt,
    revokedAt: row.revokedAt,
    callbackSecretRotatedAt: row.callbackSecretRotatedAt,
  };
}

builder.mutationFields((t) => ({
  issueServiceToken: t.fieldWithInput({
    type: builder.simpleObject('IssueServiceTokenPayload', {
      description: 'The token, shown this once.',
      fields: (f) => ({
        token: f.string({ description: 'The bearer token. It is not stored and cannot be shown again.' }),
        callbackSigningSecret: f.string({
          description:
            "The secret the token's app callbacks are signed with (X-Gateway-Signature, docs/app-callbacks.md). Stored only encrypted; shown this once (rotateCallbackSecret replaces it).",
        }),
        serviceToken: f.field({ type: ServiceTokenRef, description: 'The token record.' }),
      }),
    }),
    errors: { types: MUTATION_ERRORS },
    authScopes: (_r, { input }) => ({ canManage: decodeId(String(input.orgUnitId), 'OrgUnit') }),
    description:
      'Issues a SERVICE token for one project (ADMIN; a MANAGER of the project or of a unit above it; not FINANCE). Only its id is stored. Audited.',
    input: {
      orgUnitId: t.input.id({ required: true, description: 'Global id of the project.' }),
      name: t.input.string({ required: true, description: 'What the token is for.' }),
      expiresAt: t.input.field({ type: 'DateTime', required: false, description: 'Expiry (default 90 days, at most 366).' }),
    },
    resolve: async (_r, { input }, ctx) => {
      const actor = ctx.actor!;
      const unit = await requireVisibleUnit(ctx, decodeId(String(input.orgUnitId), 'OrgUnit'));
      if (unit.kind !== 'PROJECT') throw new ValidationError('orgUnitId', 'service tokens are issued for a PROJECT');
      const name = requireName(input.name);
      const expiresAt = input.expiresAt ?? new Date(ctx.now.getTime() + 90 * 86400_000);
      if (expiresAt.getTime() <= ctx.now.getTime() || expiresAt.getTime() > ctx.now.getTime() + MAX_TOKEN_DAYS * 86400_000) {
        throw new ValidationError('expiresAt', `expiresAt must be in the future and at most ${MAX_TOKEN_DAYS} days away`);
      }
      return ctx.db.transaction(async (tx) => {
        const { id, token, callbackSecret } = await ctx.services.tokens.issueServiceToken(tx, { orgUnitId: unit.id, name, expiresAt, createdBy: actor.subject });
        const [serviceToken] = await tx.select().from(serviceTokensTable).where(eq(serviceTokensTable.id, id));
        await recordAudit(tx, actor, { action: 'serviceToken.issue', entityType: 'ServiceToken', entityId: id, before: null, after: auditedToken(serviceToken!) });
        return { token, callbackSigningSecret: callbackSecret, serviceToken: serviceToken! };
      });
    },
  }),
  revokeServiceToken: t.fieldWithInput({
    type: builder.simpleObject('RevokeServiceTokenPayload', {
      description: 'The revoked token.',
      fields: (f) => ({ serviceToken: f.field({ type: ServiceTokenRef, description: 'The token record.' }) }),
    }),
    errors: { types: MUTATION_ERRORS },
    // A token of a unit the caller may not read is not found; otherwise those who manage its project may revoke it.
    authScopes: async (_r, { input }, ctx) => {
      const id = decodeId(String(input.serviceTokenId), 'ServiceToken');
      const [row] = await ctx.db.select({ orgUnitId: serviceTokensTable.orgUnitId }).from(serviceTokensTable).where(eq(serviceTokensTable.id, id));
      const unit = row ? await visibleUnit(ctx, row.orgUnitId) : null;
      if (!unit) throw new NotFoundError('ServiceToken', String(input.serviceTokenId));
      return { canManage: unit.id };
    },
    description:
      'Revokes a service token (ADMIN; a MANAGER of its project or of a unit above it): every gateway process refuses it from its next request on: each drops it when PostgreSQL delivers the revocation notice (LISTEN/NOTIFY) and acknowledges it, and the answer waits for every listening process (a process whose listener is down reads the token record on every request). Revoking a revoked token changes nothing. Audited.',
    input: { serviceTokenId: t.input.id({ required: true, description: 'Global id of the token.' }) },
    resolve: async (_r, { input }, ctx) => {
      const id = decodeId(String(input.serviceTokenId), 'ServiceToken');
      // Every gateway process acknowledges the revocation notice; the answer waits for all of them, so that once it is
      // given no process accepts the token any more.
      const spread = ctx.services.tokens.expectRevocation(id, ctx.db);
      let changed = false;
      const revoked = await ctx.db.transaction(async (tx) => {
        const [before] = await tx.select().from(serviceTokensTable).where(eq(serviceTokensTable.id, id)).for('update');
        if (!before) throw new NotFoundError('ServiceToken', String(input.serviceTokenId));
        if (before.revokedAt) return { serviceToken: before };
        const [after] = await tx
          .update(serviceTokensTable)
          .set({ revokedAt: ctx.now })
          .where(and(eq(serviceTokensTable.id, id), isNull(serviceTokensTable.revokedAt)))
          .returning();
        await recordAudit(tx, ctx.actor!, {
          action: 'serviceToken.revoke',
          entityType: 'ServiceToken',
          entityId: id,
          before: auditedToken(before),
          after: auditedToken(after!),
        });
        changed = true;
        return { serviceToken: after! };
      }).catch((error: unknown) => {
        spread.cancel();
        throw error;
      });
      // Committed: this process refuses the token from now on; the others as soon as the trigger's notice reaches them.
      ctx.services.tokens.forget(id);
      if (changed) await spread.awaitEveryProcess();
      else spread.cancel();
      return revoked;
    },
  }),
}));

builder.objectField(OrgUnitRef, 'serviceTokens', (t) =>
  t.field({
    type: [ServiceTokenRef],
    description: 'Service tokens of this project, newest first (empty unless the caller manages it, or is FINANCE). See also Query.serviceTokens.',
    resolve: async (u, _a, ctx) => {
      if (!ctx.actor || !canListServiceTokensOf(ctx.actor, u)) return [];
      return ctx.db
        .select()
        .from(serviceTokensTable)
        .where(eq(serviceTokensTable.orgUnitId, u.id))
        .orderBy(desc(serviceTokensTable.createdAt), desc(serviceTokensTable.id));
    },
  }),
);

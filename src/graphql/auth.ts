// The caller itself, and service tokens.
import { and, desc, eq } from 'drizzle-orm';
import { builder } from './builder.js';
import { MUTATION_ERRORS } from './errors.js';
import { decodeId } from './ids.js';
import { OrgUnitRef, visibleUnit } from './org.js';
import { serviceTokensTable } from '../db/schema.js';
import { ROLES, canManageUnit, type Actor } from '../auth/actor.js';
import { ForbiddenError, NotFoundError, ValidationError } from '../errors.js';
import { requireName } from '../validation.js';

const RoleEnum = builder.enumType('Role', { description: 'What a caller may do (DESIGN.md §6).', values: ROLES });

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
export const ServiceTokenRef = builder.objectRef<ServiceTokenRow>('ServiceToken');
builder.node(ServiceTokenRef, {
  description: 'A token issued by the gateway for one project (the token itself is shown once, at issue).',
  id: { resolve: (s) => s.id },
  loadOne: async (id, ctx) => {
    const [row] = await ctx.db.select().from(serviceTokensTable).where(eq(serviceTokensTable.id, id));
    if (!row || !ctx.actor) return null;
    const unit = await visibleUnit(ctx, row.orgUnitId);
    return unit && (canManageUnit(ctx.actor, unit) || ctx.actor.role === 'FINANCE') ? row : null;
  },
  fields: (t) => ({
    name: t.exposeString('name', { description: 'Name.' }),
    orgUnit: t.field({ type: OrgUnitRef, description: 'The project.', resolve: async (s, _a, ctx) => (await ctx.loaders.unitById.load(s.orgUnitId))! }),
    createdBy: t.exposeString('createdBy', { description: 'Subject that issued it.' }),
    createdAt: t.field({ type: 'DateTime', description: 'Issue time.', resolve: (s) => s.createdAt }),
    expiresAt: t.field({ type: 'DateTime', description: 'Expiry.', resolve: (s) => s.expiresAt }),
    revokedAt: t.field({ type: 'DateTime', nullable: true, description: 'Revocation time.', resolve: (s) => s.revokedAt }),
    lastUsedAt: t.field({ type: 'DateTime', nullable: true, description: 'Last use (to the minute).', resolve: (s) => s.lastUsedAt }),
  }),
});

builder.queryFields((t) => ({
  viewer: t.field({
    type: ViewerRef,
    authScopes: { authenticated: true },
    description: 'The authenticated caller.',
    resolve: (_r, _a, ctx) => ctx.actor!,
  }),
}));

const MAX_TOKEN_DAYS = 366;

builder.mutationFields((t) => ({
  issueServiceToken: t.fieldWithInput({
    type: builder.simpleObject('IssueServiceTokenPayload', {
      description: 'The token, shown this once.',
      fields: (f) => ({
        token: f.string({ description: 'The bearer token. It is not stored and cannot be shown again.' }),
        serviceToken: f.field({ type: ServiceTokenRef, description: 'The token record.' }),
      }),
    }),
    errors: { types: MUTATION_ERRORS },
    authScopes: { authenticated: true },
    description: 'Issues a SERVICE token for one project (ADMIN; a MANAGER of a unit above it).',
    input: {
      orgUnitId: t.input.id({ required: true, description: 'Global id of the project.' }),
      name: t.input.string({ required: true, description: 'What the token is for.' }),
      expiresAt: t.input.field({ type: 'DateTime', required: false, description: 'Expiry (default 90 days, at most 366).' }),
    },
    resolve: async (_r, { input }, ctx) => {
      const actor = ctx.actor!;
      const unit = await visibleUnit(ctx, decodeId(String(input.orgUnitId), 'OrgUnit'));
      if (!unit) throw new NotFoundError('OrgUnit', String(input.orgUnitId));
      if (!canManageUnit(actor, unit)) throw new ForbiddenError('this caller cannot issue tokens for this unit');
      if (unit.kind !== 'PROJECT') throw new ValidationError('orgUnitId', 'service tokens are issued for a PROJECT');
      const name = requireName(input.name);
      const expiresAt = input.expiresAt ?? new Date(ctx.now.getTime() + 90 * 86400_000);
      if (expiresAt.getTime() <= ctx.now.getTime() || expiresAt.getTime() > ctx.now.getTime() + MAX_TOKEN_DAYS * 86400_000) {
        throw new ValidationError('expiresAt', `expiresAt must be in the future and at most ${MAX_TOKEN_DAYS} days away`);
      }
      return ctx.db.transaction(async (tx) => {
        const { id, token } = await ctx.services.tokens.issueServiceToken(tx, { orgUnitId: unit.id, name, expiresAt, createdBy: actor.subject });
        const [serviceToken] = await tx.select().from(serviceTokensTable).where(eq(serviceTokensTable.id, id));
        return { token, serviceToken: serviceToken! };
      });
    },
  }),
  revokeServiceToken: t.fieldWithInput({
    type: builder.simpleObject('RevokeServiceTokenPayload', {
      description: 'The revoked token.',
      fields: (f) => ({ serviceToken: f.field({ type: ServiceTokenRef, description: 'The token record.' }) }),
    }),
    errors: { types: MUTATION_ERRORS },
    authScopes: { authenticated: true },
    description: 'Revokes a service token; every gateway process refuses it from the next request on.',
    input: { serviceTokenId: t.input.id({ required: true, description: 'Global id of the token.' }) },
    resolve: async (_r, { input }, ctx) => {
      const id = decodeId(String(input.serviceTokenId), 'ServiceToken');
      const [row] = await ctx.db.select().from(serviceTokensTable).where(eq(serviceTokensTable.id, id));
      const unit = row ? await visibleUnit(ctx, row.orgUnitId) : null;
      if (!row || !unit) throw new NotFoundError('ServiceToken', String(input.serviceTokenId));
      if (!canManageUnit(ctx.actor!, unit)) throw new ForbiddenError('this caller cannot revoke tokens of this unit');
      const [updated] = await ctx.db
        .update(serviceTokensTable)
        .set({ revokedAt: ctx.now })
        .where(and(eq(serviceTokensTable.id, id)))
        .returning();
      return { serviceToken: updated! };
    },
  }),
}));

builder.objectField(OrgUnitRef, 'serviceTokens', (t) =>
  t.field({
    type: [ServiceTokenRef],
    description: 'Service tokens of this project (for callers who manage it).',
    resolve: async (u, _a, ctx) => {
      if (!ctx.actor || !(canManageUnit(ctx.actor, u) || ctx.actor.role === 'FINANCE')) return [];
      return ctx.db.select().from(serviceTokensTable).where(eq(serviceTokensTable.orgUnitId, u.id)).orderBy(desc(serviceTokensTable.createdAt));
    },
  }),
);

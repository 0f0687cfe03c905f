// How company identity-provider tokens map to gateway roles (ADMIN only).
import { asc, eq } from 'drizzle-orm';
import { builder } from './builder.js';
import { MUTATION_ERRORS } from './errors.js';
import { decodeId } from './ids.js';
import { OrgUnitRef } from './org.js';
import { visibleUnit } from './visibility.js';
import { MAPPABLE_ROLES, roleMappingsTable } from '../db/schema.js';
import { recordAudit } from '../audit/audit.js';
import { NotFoundError, ValidationError } from '../errors.js';
import { getUnit } from '../org/units.js';

type RoleMappingRow = typeof roleMappingsTable.$inferSelect;

const MappableRoleEnum = builder.enumType('MappableRole', {
  description: 'Roles a company token can be mapped to (SERVICE tokens are issued by the gateway only).',
  values: MAPPABLE_ROLES,
});

export const RoleMappingRef = builder.objectRef<RoleMappingRow>('RoleMapping');
builder.node(RoleMappingRef, {
  description: 'A company token whose claim holds the value gets the role (on the unit, for MANAGER and MEMBER).',
  id: { resolve: (m) => m.id },
  loadOne: async (id, ctx) => {
    if (ctx.actor?.role !== 'ADMIN') return null;
    const [row] = await ctx.db.select().from(roleMappingsTable).where(eq(roleMappingsTable.id, id));
    return row ?? null;
  },
  fields: (t) => ({
    claim: t.exposeString('claim', { description: 'Token claim, dotted for nested claims (e.g. groups, realm_access.roles).' }),
    value: t.exposeString('value', { description: 'Value the claim must be, or contain when it is a list.' }),
    role: t.field({ type: MappableRoleEnum, description: 'Role granted.', resolve: (m) => m.role }),
    orgUnit: t.field({ type: OrgUnitRef, nullable: true, description: 'Unit of a MANAGER or MEMBER role.', resolve: (m, _a, ctx) => visibleUnit(ctx, m.orgUnitId) }),
    createdBy: t.exposeString('createdBy', { description: 'Who added it.' }),
    createdAt: t.field({ type: 'DateTime', description: 'When it was added.', resolve: (m) => m.createdAt }),
  }),
});

builder.queryField('roleMappings', (t) =>
  t.field({
    type: [RoleMappingRef],
    authScopes: { admin: true },
    description: 'Stored claim-to-role mappings (ADMIN). Mappings from the ROLE_MAPPINGS setting apply as well.',
    resolve: (_r, _a, ctx) => ctx.db.select().from(roleMappingsTable).orderBy(asc(roleMappingsTable.createdAt), asc(roleMappingsTable.id)),
  }),
);

builder.mutationFields((t) => ({
  createRoleMapping: t.fieldWithInput({
    type: builder.simpleObject('CreateRoleMappingPayload', {
      description: 'The new mapping.',
      fields: (f) => ({ roleMapping: f.field({ type: RoleMappingRef, description: 'The mapping.' }) }),
    }),
    errors: { types: MUTATION_ERRORS },
    authScopes: { admin: true },
    description: 'Maps a company token claim value to a gateway role (ADMIN). Takes effect on the next request.',
    input: {
      claim: t.input.string({ required: true, description: 'Token claim, dotted for nested claims.' }),
      value: t.input.string({ required: true, description: 'Value to match.' }),
      role: t.input.field({ type: MappableRoleEnum, required: true, description: 'Role to grant.' }),
      orgUnitId: t.input.id({ required: false, description: 'Global id of the unit (required for MANAGER and MEMBER, refused otherwise).' }),
    },
    resolve: async (_r, { input }, ctx) => {
      const claim = input.claim.trim();
      const value = input.value.trim();
      if (!/^[A-Za-z0-9_:/.-]{1,200}$/.test(claim)) throw new ValidationError('claim', 'claim must be a claim name (dotted for nested claims)');
      if (!value || value.length > 500 || value.includes('\u0000')) throw new ValidationError('value', 'value must be 1 to 500 characters');
      const scoped = input.role === 'MANAGER' || input.role === 'MEMBER';
      if (scoped !== Boolean(input.orgUnitId)) {
        throw new ValidationError('orgUnitId', 'MANAGER and MEMBER mappings need an orgUnitId; ADMIN and FINANCE mappings take none');
      }
      const orgUnitId = input.orgUnitId != null ? decodeId(String(input.orgUnitId), 'OrgUnit') : null;
      if (orgUnitId && !(await getUnit(ctx.db, orgUnitId))) throw new NotFoundError('OrgUnit', String(input.orgUnitId));
      const roleMapping = await ctx.db.transaction(async (tx) => {
        const [row] = await tx
          .insert(roleMappingsTable)
          .values({ claim, value, role: input.role, orgUnitId, createdBy: ctx.actor!.subject })
          .onConflictDoNothing()
          .returning();
        if (!row) throw new ValidationError('value', 'this mapping exists');
        await recordAudit(tx, ctx.actor!, { action: 'roleMapping.create', entityType: 'RoleMapping', entityId: row.id, after: row });
        return row;
      });
      return { roleMapping };
    },
  }),
  deleteRoleMapping: t.fieldWithInput({
    type: builder.simpleObject('DeleteRoleMappingPayload', {
      description: 'The removed mapping.',
      fields: (f) => ({ roleMappingId: f.id({ description: 'Global id of the removed mapping.' }) }),
    }),
    errors: { types: MUTATION_ERRORS },
    authScopes: { admin: true },
    description: 'Removes a stored mapping (ADMIN). Callers who relied on it are refused from their next request.',
    input: { roleMappingId: t.input.id({ required: true, description: 'Global id of the mapping.' }) },
    resolve: async (_r, { input }, ctx) => {
      const id = decodeId(String(input.roleMappingId), 'RoleMapping');
      await ctx.db.transaction(async (tx) => {
        const [row] = await tx.delete(roleMappingsTable).where(eq(roleMappingsTable.id, id)).returning();
        if (!row) throw new NotFoundError('RoleMapping', String(input.roleMappingId));
        await recordAudit(tx, ctx.actor!, { action: 'roleMapping.delete', entityType: 'RoleMapping', entityId: row.id, before: row });
      });
      return { roleMappingId: String(input.roleMappingId) };
    },
  }),
}));

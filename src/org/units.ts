// The org tree: organization → department → team → project, with each unit's path stored.
import { newRowId } from '../primitives/ids.js';
import { and, eq, inArray, isNull } from 'drizzle-orm';
import { isUniqueViolation, type Db } from '../db/client.js';
import { accountsTable, orgUnitsTable, type OrgUnitKind } from '../db/schema.js';
import { NotFoundError, ValidationError } from '../errors.js';
import { requireName } from '../validation.js';

export type OrgUnitRow = typeof orgUnitsTable.$inferSelect;

const RANK: Record<OrgUnitKind, number> = { ORGANIZATION: 0, DEPARTMENT: 1, TEAM: 2, PROJECT: 3 };

export interface CreateOrgUnitInput {
  parentId: string | null;
  kind: OrgUnitKind;
  name: string;
  accountId: string | null;
}

export async function createOrgUnit(tx: Db, input: CreateOrgUnitInput): Promise<OrgUnitRow> {
  const name = requireName(input.name);
  if (input.accountId) {
    const [account] = await tx.select({ id: accountsTable.id }).from(accountsTable).where(eq(accountsTable.id, input.accountId));
    if (!account) throw new NotFoundError('Account', input.accountId);
  }
  let parent: OrgUnitRow | undefined;
  if (input.parentId === null) {
    if (input.kind !== 'ORGANIZATION') throw new ValidationError('parentId', 'only an ORGANIZATION has no parent');
    const [root] = await tx.select({ id: orgUnitsTable.id }).from(orgUnitsTable).where(isNull(orgUnitsTable.parentId));
    if (root) throw new ValidationError('parentId', 'the organization already exists; give a parentId');
  } else {
    [parent] = await tx.select().from(orgUnitsTable).where(eq(orgUnitsTable.id, input.parentId)).for('update');
    if (!parent) throw new NotFoundError('OrgUnit', input.parentId);
    if (RANK[input.kind] <= RANK[parent.kind]) {
      throw new ValidationError('kind', `a ${input.kind} cannot sit under a ${parent.kind}`);
    }
  }
  const [sibling] = await tx
    .select({ id: orgUnitsTable.id })
    .from(orgUnitsTable)
    .where(and(parent ? eq(orgUnitsTable.parentId, parent.id) : isNull(orgUnitsTable.parentId), eq(orgUnitsTable.name, name)));
  if (sibling) throw new ValidationError('name', 'a unit with this name exists under the same parent');
  const id = newRowId();
  try {
    const [row] = await tx
      .insert(orgUnitsTable)
      .values({
        id,
        parentId: parent?.id ?? null,
        kind: input.kind,
        name,
        path: [...(parent?.path ?? []), id],
        depth: parent ? parent.depth + 1 : 0,
        accountId: input.accountId,
      })
      .returning();
    return row!;
  } catch (error) {
    // A concurrent creation won the race for the root or for this name under the same parent.
    if (isUniqueViolation(error)) {
      throw parent ? new ValidationError('name', 'a unit with this name exists under the same parent') : new ValidationError('parentId', 'the organization already exists; give a parentId');
    }
    throw error;
  }
}

export async function getUnit(db: Db, id: string): Promise<OrgUnitRow | null> {
  const [row] = await db.select().from(orgUnitsTable).where(eq(orgUnitsTable.id, id));
  return row ?? null;
}

/**
 * Units never change once created (no mutation renames, moves or deletes one, and the database refuses it: migration
 * org_units_fixed), so each process keeps those it has read, per database handle: the unit a scope check, a page or
 * a caller's account needs costs no SQL twice. The least recently used unit goes first when the bound is reached (a
 * Map keeps insertion order: a unit used is moved to its end).
 */
export function knownUnits(db: Db): { recall(id: string): OrgUnitRow | undefined; remember(row: OrgUnitRow): void } {
  let units = knownUnitsByDb.get(db);
  if (!units) knownUnitsByDb.set(db, (units = new Map()));
  const known = units;
  const remember = (row: OrgUnitRow) => {
    known.delete(row.id);
    if (known.size >= KNOWN_UNITS_MAX) known.delete(known.keys().next().value!);
    known.set(row.id, row);
  };
  return {
    remember,
    recall: (id) => {
      const unit = known.get(id);
      if (unit) remember(unit);
      return unit;
    },
  };
}
const knownUnitsByDb = new WeakMap<Db, Map<string, OrgUnitRow>>();
const KNOWN_UNITS_MAX = 10_000;

/**
 * The units of `ids` that exist: those the process knows, and those it does not read in one statement (none when it
 * knows them all). The answer is the call's own: what the cache held before the read and what the read found,
 * whatever other requests put in or push out of the cache meanwhile.
 */
export async function unitsByIds(db: Db, ids: readonly string[]): Promise<Map<string, OrgUnitRow>> {
  const { recall, remember } = knownUnits(db);
  const found = new Map<string, OrgUnitRow>();
  const missing: string[] = [];
  for (const id of ids) {
    const unit = recall(id);
    if (unit) found.set(id, unit);
    else missing.push(id);
  }
  if (missing.length > 0) {
    for (const row of await db.select().from(orgUnitsTable).where(inArray(orgUnitsTable.id, missing))) {
      remember(row);
      found.set(row.id, row);
    }
  }
  return found;
}

/**
 * The account a project draws on: its own, else the nearest ancestor's. From the units the process knows (a service
 * token's reads ask it at every request).
 */
export async function accountForPath(db: Db, path: readonly string[]): Promise<string | null> {
  const units = await unitsByIds(db, path);
  for (let i = path.length - 1; i >= 0; i--) {
    const accountId = units.get(path[i]!)?.accountId;
    if (accountId) return accountId;
  }
  return null;
}

export function isUuid(value: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);
}

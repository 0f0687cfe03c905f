// The org tree as billing sees it: validated, and put in one canonical order (depth-first pre-order,
// siblings by id in code-unit order) so that statements and rounding ties never depend on the order
// in which the caller happened to list the units.
import { BillingValidationError } from '../primitives/errors.js';

export interface OrgUnitRef {
  readonly id: string;
  readonly parentId: string | null;
}

export interface OrgTree {
  /** Unit ids in canonical pre-order; the root is first. */
  readonly ids: readonly string[];
  /** Position of each id in `ids`. */
  readonly indexOf: ReadonlyMap<string, number>;
  /** Parent position per position; null for the root. Always smaller than the child's position. */
  readonly parentIndex: readonly (number | null)[];
  readonly depth: readonly number[];
}

export function buildOrgTree(units: readonly OrgUnitRef[]): OrgTree {
  const fail = (message: string): never => {
    throw new BillingValidationError('INVALID_ORG_TREE', 'units', message);
  };
  if (!Array.isArray(units) || units.length === 0) fail('the org tree has no units');

  const parentOf = new Map<string, string | null>();
  const children = new Map<string, string[]>();
  let root: string | null = null;
  for (const unit of units) {
    if (typeof unit.id !== 'string' || unit.id.length === 0) fail('a unit has no id');
    if (parentOf.has(unit.id)) fail(`unit ${unit.id} appears twice`);
    parentOf.set(unit.id, unit.parentId);
    if (unit.parentId === null) {
      if (root !== null) fail(`the org tree has two roots: ${root} and ${unit.id}`);
      root = unit.id;
    } else {
      const siblings = children.get(unit.parentId);
      if (siblings) siblings.push(unit.id);
      else children.set(unit.parentId, [unit.id]);
    }
  }
  if (root === null) return fail('the org tree has no root');
  for (const [id, parentId] of parentOf) {
    if (parentId !== null && !parentOf.has(parentId)) fail(`unit ${id} has an unknown parent ${parentId}`);
  }

  const ids: string[] = [];
  const parentIndex: (number | null)[] = [];
  const depth: number[] = [];
  const indexOf = new Map<string, number>();
  const stack: { id: string; parent: number | null; depth: number }[] = [{ id: root, parent: null, depth: 0 }];
  while (stack.length > 0) {
    const node = stack.pop()!;
    indexOf.set(node.id, ids.length);
    ids.push(node.id);
    parentIndex.push(node.parent);
    depth.push(node.depth);
    const kids = [...(children.get(node.id) ?? [])].sort(byCodeUnits).reverse();
    const self = ids.length - 1;
    for (const kid of kids) stack.push({ id: kid, parent: self, depth: node.depth + 1 });
  }
  // Anything not reached from the root sits on a cycle.
  if (ids.length !== parentOf.size) fail('the org tree has a cycle');
  return { ids, indexOf, parentIndex, depth };
}

function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// What a query asks for below a field, for a resolver that reads ahead for the fields under it.
import { getDirectiveValues, GraphQLIncludeDirective, GraphQLSkipDirective, Kind, type FieldNode, type GraphQLResolveInfo, type SelectionNode, type SelectionSetNode } from 'graphql';

/**
 * The fields named `name` selected directly under `fields` (fields of the query, e.g. `info.fieldNodes`), through
 * inline fragments and fragment spreads, without those `@skip`ped or not `@include`d. Aliases count once each.
 * Chain it to go down: `selectedFields(info, selectedFields(info, info.fieldNodes, 'edges'), 'node')`.
 */
export function selectedFields(info: GraphQLResolveInfo, fields: readonly FieldNode[], name: string): FieldNode[] {
  const found: FieldNode[] = [];
  const visit = (set: SelectionSetNode | undefined) => {
    for (const selection of set?.selections ?? []) {
      if (!included(info, selection)) continue;
      if (selection.kind === Kind.FIELD) {
        if (selection.name.value === name) found.push(selection);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        visit(selection.selectionSet);
      } else {
        visit(info.fragments[selection.name.value]?.selectionSet);
      }
    }
  };
  for (const field of fields) visit(field.selectionSet);
  return found;
}

function included(info: GraphQLResolveInfo, selection: SelectionNode): boolean {
  if (!selection.directives?.length) return true;
  if (getDirectiveValues(GraphQLSkipDirective, selection, info.variableValues)?.if === true) return false;
  return getDirectiveValues(GraphQLIncludeDirective, selection, info.variableValues)?.if !== false;
}

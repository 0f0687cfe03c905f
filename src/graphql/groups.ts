// How usage and chargeback lines are grouped (docs/billing.md, docs/governance.md), and who sees which person.
import { sql, type SQL } from 'drizzle-orm';
import { builder } from './builder.js';
import { ValidationError } from '../errors.js';
import type { Actor } from '../auth/actor.js';
import type { GroupBy } from '../billing/groups.js';

export const GroupByDimensionEnum = builder.enumType('GroupByDimension', {
  description: "TAG: by the value of one tag key (jobs without it: the untagged group); PERSON: by the job's person (an app's end user, else its submitter).",
  values: ['TAG', 'PERSON'] as const,
});

export const GroupByInput = builder.inputType('GroupByInput', {
  description: 'A grouping of usage or chargeback lines.',
  fields: (f) => ({
    by: f.field({ type: GroupByDimensionEnum, required: true, description: 'The dimension.' }),
    tagKey: f.string({ required: false, description: 'TAG: the key whose values form the groups.' }),
  }),
});

export function groupByOf(input: { by: 'TAG' | 'PERSON'; tagKey?: string | null }): Exclude<GroupBy, { by: 'TAG_SET' }> {
  if (input.by === 'PERSON') {
    if (input.tagKey != null) throw new ValidationError('groupBy.tagKey', 'tagKey is for grouping by TAG');
    return { by: 'PERSON' };
  }
  if (input.tagKey == null || input.tagKey === '') throw new ValidationError('groupBy.tagKey', 'grouping by TAG needs a tagKey');
  return { by: 'TAG', tagKey: input.tagKey };
}

/**
 * Person-level usage a caller may see: a MEMBER (and a SERVICE token) only its own subject's; the others every person
 * on the lines they may read. The rest group (no person) is hidden with the others' persons.
 */
export function personVisible(actor: Actor, person: string | null): boolean {
  if (actor.role !== 'MEMBER' && actor.role !== 'SERVICE') return true;
  return person === actor.subject;
}

/**
 * SQL filter mirroring personVisible for rows that may name a person (`person`: null when the row is about no
 * person, e.g. a money event of a unit or tag budget): such rows pass; a person's only for whom personVisible allows.
 */
export function personVisibleFilter(actor: Actor, person: SQL): SQL | undefined {
  if (actor.role !== 'MEMBER' && actor.role !== 'SERVICE') return undefined;
  return sql`(${person} is null or ${person} = ${actor.subject})`;
}

// A statement's lines split by group: by the value of one tag key, by person, or by whole tag set (the FOCUS export's
// rows). Usage per group comes from the rollups (usage_tag_rollups, usage_person_rollups: subtree sums per unit, like
// usage_rollups), never from the jobs. Each line's own cost is split over its groups by their own settled usage,
// by largest remainder, so a line's groups add up to it to the cent whatever the allocation policy made of it; what
// no group accounts for (jobs without the tag, adjustments, and a cost centre's unused commitment when it has no
// usage of its own) is the explicit rest group (value null: "untagged", "no person"). Subtree groups are sums of the
// own groups below, so they add up to the subtree line, and the organization's to the invoice.
import { sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { queryRows, toBigInt } from '../db/client.js';
import { largestRemainder, parseCreditSeconds, parseUsd, usdToCentsHalfUp } from '../primitives/money.js';
import type { ChargebackStatement } from './chargeback.js';

/** TAG: by the value of one key; PERSON: by the job's person; TAG_SET: by the job's whole set of tags. */
export type GroupBy = { readonly by: 'TAG'; readonly tagKey: string } | { readonly by: 'PERSON' } | { readonly by: 'TAG_SET' };

export interface GroupPart {
  /** The tag value, the person, or the tag set as JSON; null: the rest (no such tag, no person: adjustments). */
  value: string | null;
  /** Settled usage of the group in the line's subtree, and on the unit itself. */
  microCs: bigint;
  ownMicroCs: bigint;
  /** The group's part of the line's costUsd and ownCostUsd, in cents. */
  cents: bigint;
  ownCents: bigint;
}

/** Subtree settled usage per (unit, group value) of an account's period, from the rollups. */
async function groupUsage(db: Db, accountId: string, period: string, group: GroupBy): Promise<{ unit: string; value: string; settled: string }[]> {
  switch (group.by) {
    case 'TAG':
      return queryRows(
        db,
        sql`select org_unit_id as unit, tags->>${group.tagKey}::text as value, sum(settled_micro_cs)::text as settled from usage_tag_rollups
            where account_id = ${accountId} and period = ${period} and tags->>${group.tagKey}::text is not null group by 1, 2`,
      );
    case 'TAG_SET':
      return queryRows(
        db,
        sql`select org_unit_id as unit, tags::text as value, settled_micro_cs::text as settled from usage_tag_rollups
            where account_id = ${accountId} and period = ${period}`,
      );
    case 'PERSON':
      return queryRows(
        db,
        sql`select org_unit_id as unit, person as value, settled_micro_cs::text as settled from usage_person_rollups
            where account_id = ${accountId} and period = ${period}`,
      );
  }
}

const cents = (usd: string) => usdToCentsHalfUp(parseUsd(usd, { allowNegative: true }));
const byValue = (a: GroupPart, b: GroupPart) => (a.value === null ? 1 : b.value === null ? -1 : a.value < b.value ? -1 : a.value > b.value ? 1 : 0);

/** Every line's groups (by unit id), in value order with the rest last; groups with neither usage nor cost are left out. */
export async function groupStatement(db: Db, statement: ChargebackStatement, group: GroupBy): Promise<Map<string, GroupPart[]>> {
  const rows = await groupUsage(db, statement.accountId, statement.period, group);
  const parentOf = new Map(statement.lines.map((l) => [l.orgUnitId, l.parentId]));
  // Own usage per unit and value: the unit's subtree sum minus its children's.
  const own = new Map<string, Map<string, bigint>>();
  const add = (unit: string, value: string, micro: bigint) => {
    let values = own.get(unit);
    if (!values) own.set(unit, (values = new Map()));
    values.set(value, (values.get(value) ?? 0n) + micro);
  };
  for (const r of rows) {
    const micro = toBigInt(r.settled);
    add(r.unit, r.value, micro);
    const parent = parentOf.get(r.unit);
    if (parent) add(parent, r.value, -micro);
  }

  const result = new Map<string, GroupPart[]>();
  for (const line of statement.lines) {
    const ownCents = cents(line.ownCostUsd);
    const ownMicroCs = parseCreditSeconds(line.ownCreditSeconds, { allowNegative: true });
    const values = [...(own.get(line.orgUnitId) ?? new Map<string, bigint>())].filter(([, micro]) => micro !== 0n).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const rest = ownMicroCs - values.reduce((sum, [, micro]) => sum + micro, 0n);
    const weights = [...values.map(([, micro]) => micro), rest].map((w) => (w > 0n ? w : 0n));
    // A cost with no usage to split it by (a cost centre's unused commitment) stays whole on the rest.
    const split = ownCents > 0n && weights.some((w) => w > 0n) ? largestRemainder(ownCents, weights) : [...values.map(() => 0n), ownCents];
    result.set(line.orgUnitId, [
      ...values.map(([value, micro], i) => ({ value, microCs: 0n, ownMicroCs: micro, cents: 0n, ownCents: split[i]! })),
      { value: null, microCs: 0n, ownMicroCs: rest, cents: 0n, ownCents: split[values.length]! },
    ]);
  }
  // Subtree parts: a line's own parts plus its children's subtree parts (children come after their parent).
  const subtree = new Map<string, Map<string | null, GroupPart>>();
  for (const line of [...statement.lines].reverse()) {
    const mine = subtree.get(line.orgUnitId) ?? new Map<string | null, GroupPart>();
    for (const p of result.get(line.orgUnitId)!) {
      const at = mine.get(p.value) ?? { value: p.value, microCs: 0n, ownMicroCs: 0n, cents: 0n, ownCents: 0n };
      mine.set(p.value, { ...at, ownMicroCs: p.ownMicroCs, ownCents: p.ownCents, microCs: at.microCs + p.ownMicroCs, cents: at.cents + p.ownCents });
    }
    subtree.set(line.orgUnitId, mine);
    if (line.parentId) {
      const parent = subtree.get(line.parentId) ?? new Map<string | null, GroupPart>();
      for (const p of mine.values()) {
        const at = parent.get(p.value) ?? { value: p.value, microCs: 0n, ownMicroCs: 0n, cents: 0n, ownCents: 0n };
        parent.set(p.value, { ...at, microCs: at.microCs + p.microCs, cents: at.cents + p.cents });
      }
      subtree.set(line.parentId, parent);
    }
  }
  const groups = new Map<string, GroupPart[]>();
  for (const line of statement.lines) {
    const parts = [...subtree.get(line.orgUnitId)!.values()].filter((p) => p.microCs !== 0n || p.cents !== 0n || p.ownMicroCs !== 0n || p.ownCents !== 0n);
    groups.set(line.orgUnitId, parts.sort(byValue));
  }
  return groups;
}

export interface UsageGroup {
  /** The tag value or the person; null: the rest (jobs without the tag, adjustments). */
  value: string | null;
  reservedMicroCs: bigint;
  settledMicroCs: bigint;
}

/**
 * A unit's usage (its subtree) in one period, for some accounts (null: all), by tag value or by person, with the rest
 * (the unit's usage minus the groups) last, so that the groups add up to OrgUnit.usage exactly.
 */
export async function usageByGroup(db: Db, unitId: string, accountIds: readonly string[] | null, period: string, group: Exclude<GroupBy, { by: 'TAG_SET' }>): Promise<UsageGroup[]> {
  const accounts = accountIds === null ? sql`true` : accountIds.length === 0 ? sql`false` : sql`account_id in (${sql.join(accountIds.map((id) => sql`${id}::uuid`), sql`, `)})`;
  const grouped =
    group.by === 'TAG'
      ? sql`select tags->>${group.tagKey}::text as value, reserved_micro_cs, settled_micro_cs from usage_tag_rollups
             where org_unit_id = ${unitId} and period = ${period} and ${accounts} and tags->>${group.tagKey}::text is not null`
      : sql`select person as value, reserved_micro_cs, settled_micro_cs from usage_person_rollups
             where org_unit_id = ${unitId} and period = ${period} and ${accounts}`;
  const rows = await queryRows<{ value: string | null; reserved: string; settled: string }>(
    db,
    sql`select value, sum(reserved_micro_cs)::text as reserved, sum(settled_micro_cs)::text as settled from (${grouped}) g group by value
        union all
        select null, coalesce(sum(reserved_micro_cs), 0)::text, coalesce(sum(settled_micro_cs), 0)::text from usage_rollups
         where org_unit_id = ${unitId} and period = ${period} and ${accounts}`,
  );
  const groups = rows.filter((r) => r.value !== null).map((r) => ({ value: r.value, reservedMicroCs: toBigInt(r.reserved), settledMicroCs: toBigInt(r.settled) }));
  const total = rows.find((r) => r.value === null)!;
  const rest = {
    value: null,
    reservedMicroCs: toBigInt(total.reserved) - groups.reduce((s, g) => s + g.reservedMicroCs, 0n),
    settledMicroCs: toBigInt(total.settled) - groups.reduce((s, g) => s + g.settledMicroCs, 0n),
  };
  const parts = [...groups.filter((g) => g.reservedMicroCs !== 0n || g.settledMicroCs !== 0n).sort((a, b) => (a.value! < b.value! ? -1 : 1)), rest];
  return parts.filter((g) => g.value !== null || g.reservedMicroCs !== 0n || g.settledMicroCs !== 0n);
}

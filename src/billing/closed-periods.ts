// Which periods of an account are closed. A closed period's statement is frozen: usage that would land
// in it (a late adjustment, a settlement racing the close) goes to the next open period instead.
import { and, desc, eq, gte } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { billingStatementsTable } from '../db/schema.js';
import { nextPeriod } from '../primitives/period.js';

/** The latest closed period of the account, or null. */
export async function latestClosedPeriod(db: Db, accountId: string): Promise<string | null> {
  const [row] = await db
    .select({ period: billingStatementsTable.period })
    .from(billingStatementsTable)
    .where(eq(billingStatementsTable.accountId, accountId))
    .orderBy(desc(billingStatementsTable.period))
    .limit(1);
  return row?.period ?? null;
}

/**
 * The first period at or after `period` that is not closed. Callers hold the account row lock (closePeriod
 * takes it too), so the answer cannot change before their transaction commits.
 */
export async function openPeriodFrom(db: Db, accountId: string, period: string): Promise<string> {
  const rows = await db
    .select({ period: billingStatementsTable.period })
    .from(billingStatementsTable)
    .where(and(eq(billingStatementsTable.accountId, accountId), gte(billingStatementsTable.period, period)));
  const closed = new Set(rows.map((r) => r.period));
  let candidate = period;
  while (closed.has(candidate)) candidate = nextPeriod(candidate);
  return candidate;
}

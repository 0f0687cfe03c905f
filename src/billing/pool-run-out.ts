// `pool.run_out_forecast` (docs/notifications.md, docs/forecasts.md): told when the forecast says an account's
// included pool (usage-based: the period's; credit package: what is left of the term's) runs out before its horizon
// (the period's or the term's last day). Every process looks every FORECAST_ALERT_INTERVAL_MS; which process tells
// is settled by the outbox's unique key, never by a lock:
//   - an account's events for one pool window (a period, a term) are numbered 1, 2, 3…, the number in the key;
//   - a process reads the window's last event, and writes number n + 1 only when there is none yet or the projected
//     day moved by RUN_OUT_MOVE_DAYS or more from the day it told; two processes that both decide so write the same
//     key, so one event is written (the other's insert finds the key taken and writes nothing).
import { isNull, sql } from 'drizzle-orm';
import { queryRows, type Db } from '../db/client.js';
import { accountsTable, orgUnitsTable } from '../db/schema.js';
import { termPeriods, termsFor, type AccountRow } from '../accounts/accounts.js';
import { accountForecast, type AccountForecast } from './usage-forecast.js';
import { runPeriodically, type Periodic } from '../background/periodic.js';
import type { Logger } from '../logging.js';
import { MONEY_EVENT_TOPIC, recordMoneyEvent } from '../notifications/events.js';

const KIND = 'pool.run_out_forecast';
/** A projected day that moved by less than this (earlier or later) since the last event is not told again. */
export const RUN_OUT_MOVE_DAYS = 2;

const dayDistance = (a: string, b: string) => Math.abs(Date.parse(`${a}T00:00:00Z`) - Date.parse(`${b}T00:00:00Z`)) / 86_400_000;

/** The pool window the forecast is about: the period (usage-based) or the term `from..to` (credit package). */
async function poolWindow(db: Db, account: AccountRow, f: AccountForecast): Promise<string> {
  if (account.billingModel !== 'CREDIT_PACKAGE') return f.period;
  const term = termPeriods(await termsFor(db, account.id, f.period));
  return term ? `${term.from}..${term.to}` : f.period;
}

/** The facts of the window's last event (number and projected day), or null when none was written. */
async function lastTold(db: Db, rootId: string, accountId: string, window: string): Promise<{ sequence: number; runsOutOn: string } | null> {
  const [row] = await queryRows<{ sequence: number; runs_out_on: string }>(
    db,
    sql`select (payload->'data'->>'sequence')::int as sequence, payload->'data'->>'runsOutOn' as runs_out_on
        from outbox_events
        where topic = ${MONEY_EVENT_TOPIC} and org_unit_id = ${rootId}::uuid and kind = ${KIND}
          and payload->'data'->>'accountId' = ${accountId} and payload->'data'->>'window' = ${window}
        order by (payload->'data'->>'sequence')::int desc limit 1`,
  );
  return row ? { sequence: row.sequence, runsOutOn: row.runs_out_on } : null;
}

/** Checks one account's forecast, and writes its event when there is something new to tell. */
export async function checkPoolRunOut(db: Db, rootId: string, account: AccountRow, now: Date): Promise<void> {
  const f = await accountForecast(db, rootId, account, now);
  // No pool, none projected to run out by its horizon, a horizon already past, or a pool already used up (for a
  // usage-based account pool.crossed told that): nothing to foretell.
  if (!f.poolRunsOutOn || f.poolHorizon < f.today || f.includedMicroCs <= f.settledSoFarMicroCs) return;
  const window = await poolWindow(db, account, f);
  const last = await lastTold(db, rootId, account.id, window);
  if (last && dayDistance(last.runsOutOn, f.poolRunsOutOn) < RUN_OUT_MOVE_DAYS) return;
  const sequence = (last?.sequence ?? 0) + 1;
  const data = {
    accountId: account.id,
    billingModel: account.billingModel,
    window,
    sequence,
    runsOutOn: f.poolRunsOutOn,
    previousRunsOutOn: last?.runsOutOn ?? null,
    horizon: f.poolHorizon,
    asOfDay: f.today,
    includedMicroCs: f.includedMicroCs.toString(),
    settledMicroCs: f.settledSoFarMicroCs.toString(),
    openHoldsMicroCs: f.openHoldsMicroCs.toString(),
    dailyBurnMicroCs: BigInt(Math.round(f.model.dailyBurn)).toString(),
  };
  await db.transaction((tx) => recordMoneyEvent(tx, { kind: KIND, dedupeKey: `${account.id}:${window}:${sequence}`, orgUnitId: rootId, data }));
}

/** One pass over every account (the organization's: events belong to its root unit). */
export async function checkPoolRunOuts(db: Db, now: Date): Promise<void> {
  const [root] = await db.select({ id: orgUnitsTable.id }).from(orgUnitsTable).where(isNull(orgUnitsTable.parentId));
  if (!root) return;
  for (const account of await db.select().from(accountsTable)) await checkPoolRunOut(db, root.id, account, now);
}

export function startPoolRunOutChecks(db: Db, intervalMs: number, logger: Logger, backoffMaxMs: number): Periodic {
  return runPeriodically(
    'pool run-out forecast',
    async () => {
      await checkPoolRunOuts(db, new Date());
      return false;
    },
    intervalMs,
    logger,
    { backoffMaxMs },
  );
}

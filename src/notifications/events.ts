// Money events: what finance and team leads are told about (docs/notifications.md). Each is an outbox row of topic
// `money_event`, written in the transaction of its cause by one SQL function, `gateway_money_event` (migration
// "money_event_triggers"): the database's own triggers call it where usage or a budget changes (threshold crossings
// and their resolution, the included pool's crossing), and the gateway calls it from TypeScript for the rest. A
// unique key per event makes a re-run of the cause write nothing. The outbox worker fans each event out to the
// channels whose rules match it (src/notifications/delivery.ts). `budget.refused` is written by the admission
// statement that refused (`gateway_noted_admission`); at commit, `NOTIFY gateway_money_event` carries
// the event's id for live listeners (`moneyEventSignal`, the `moneyEvents` subscription).
import { sql } from 'drizzle-orm';
import { queryRows, type Db } from '../db/client.js';
import type { LiveSignal } from '../live/hub.js';

export const MONEY_EVENT_TOPIC = 'money_event';
/** The channel `NOTIFY` carries a committed money event's id on (for subscriptions on every process). */
export const MONEY_EVENT_CHANNEL = 'gateway_money_event';

export const MONEY_EVENT_KINDS = [
  'budget.threshold_crossed',
  'budget.threshold_resolved',
  'budget.refused',
  'pool.crossed',
  'pool.run_out_forecast',
  'wallet.drift_flagged',
  'hold.overdue',
  'job.overrun',
  'period.closed',
  'job.finished',
  'budget.increase_requested',
  'budget.increase_decided',
] as const;
export type MoneyEventKind = (typeof MONEY_EVENT_KINDS)[number];

export interface MoneyEventInput {
  kind: MoneyEventKind;
  /** Unique per event: the same key twice (a re-run of the cause) writes one event. */
  dedupeKey: string;
  /** The unit the event is about (a budget's unit, a job's project, an account's organization root). */
  orgUnitId: string;
  /** The event's facts: ids, amounts as decimal strings of micro-credit-seconds, periods; never a secret. */
  data: Record<string, unknown>;
}

/** The event as stored and as sent: `id` is the same on every delivery of it to every channel. */
export interface MoneyEvent {
  id: string;
  kind: MoneyEventKind;
  orgUnitId: string;
  occurredAt: string;
  data: Record<string, unknown>;
}

/** Writes a money event in the caller's transaction (nothing when its key was written before). */
export async function recordMoneyEvent(tx: Db, event: MoneyEventInput): Promise<void> {
  await tx.execute(
    sql`select gateway_money_event(${event.kind}, ${`${event.kind}:${event.dedupeKey}`}, ${event.orgUnitId}::uuid, ${JSON.stringify(event.data)}::jsonb)`,
  );
}

export function moneyEventOf(payload: unknown): MoneyEvent {
  const p = (typeof payload === 'string' ? JSON.parse(payload) : payload) as MoneyEvent;
  return { id: p.id, kind: p.kind, orgUnitId: p.orgUnitId, occurredAt: p.occurredAt, data: p.data ?? {} };
}

/**
 * The live signal of a committed money event (heard on `gateway_money_event`): kind `money`, for the event's unit
 * and every unit above it, so that a subscriber of any subtree holding it wakes; null when it is not a money event.
 */
export async function moneyEventSignal(db: Db, id: string): Promise<LiveSignal | null> {
  if (!/^[0-9a-f-]{36}$/i.test(id)) return null;
  const [row] = await queryRows<{ path: string[] }>(
    db,
    sql`select u.path from outbox_events e join org_units u on u.id = e.org_unit_id where e.id = ${id}::uuid and e.topic = ${MONEY_EVENT_TOPIC}`,
  );
  return row ? { kind: 'money', id, units: row.path } : null;
}

// Billing periods: a calendar month `YYYY-MM` in the account's IANA timezone. Offsets come from
// Intl.DateTimeFormat, so daylight-saving transitions follow the runtime's tz database.
import { BillingValidationError } from './errors.js';

export interface PeriodBounds {
  /** The first instant of the period (inclusive). */
  readonly start: Date;
  /** The first instant of the next period (exclusive). */
  readonly end: Date;
}

const PERIOD_PATTERN = /^(\d{4})-(\d{2})$/;
/** Years 1000–9999 keep `YYYY` four digits and Date.UTC away from its 0–99 → 1900s mapping. */
const MIN_YEAR = 1000;
const MAX_YEAR = 9999;
const HOUR_MS = 3_600_000;
/** Read without Intl (`utcWallClock`, below). */
const UTC = 'UTC';

interface YearMonth {
  readonly year: number;
  readonly month: number; // 1–12
}

export function isValidPeriod(period: unknown): period is string {
  return typeof period === 'string' && parseYearMonth(period) !== null;
}

export function isValidTimeZone(timeZone: unknown): timeZone is string {
  if (typeof timeZone !== 'string' || timeZone.length === 0) return false;
  if (timeZone === UTC) return true;
  try {
    formatterFor(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** The period an instant falls in, seen from `timeZone`. */
export function periodOf(instant: Date, timeZone: string): string {
  if (!(instant instanceof Date) || Number.isNaN(instant.getTime())) {
    throw new BillingValidationError('INVALID_PERIOD', 'instant', 'the instant is not a valid Date');
  }
  const wall = wallClock(requireTimeZone(timeZone), instant.getTime());
  return formatYearMonth({ year: wall.year, month: wall.month });
}

/** The calendar day (`YYYY-MM-DD`) an instant falls on, seen from `timeZone` (the runtime's tz database). */
export function dayOf(instant: Date, timeZone: string): string {
  if (!(instant instanceof Date) || Number.isNaN(instant.getTime())) {
    throw new BillingValidationError('INVALID_PERIOD', 'instant', 'the instant is not a valid Date');
  }
  const wall = wallClock(requireTimeZone(timeZone), instant.getTime());
  return `${formatYearMonth({ year: wall.year, month: wall.month })}-${String(wall.day).padStart(2, '0')}`;
}

/** The part (0..1) of the local day that has gone by at `instant`, seen from `timeZone`. */
export function elapsedOfDay(instant: Date, timeZone: string): number {
  const wall = wallClock(requireTimeZone(timeZone), instant.getTime());
  return Math.min(1, ((wall.hour % 24) * 3600 + wall.minute * 60 + wall.second) / 86_400);
}

/** The last day (`YYYY-MM-DD`) of a period. */
export function lastDayOf(period: string): string {
  const ym = requirePeriod(period);
  const days = new Date(Date.UTC(ym.year, ym.month, 0)).getUTCDate();
  return `${period}-${String(days).padStart(2, '0')}`;
}

/** The day a movement of `period` counts on: the day of `now` when it falls in that period, else its first day. */
export function dayInPeriod(now: Date, period: string, timeZone: string): string {
  requirePeriod(period);
  return periodOf(now, timeZone) === period ? dayOf(now, timeZone) : `${period}-01`;
}

/** [start, end) of a period in `timeZone`, each the instant of local midnight on the 1st. */
export function periodBounds(period: string, timeZone: string): PeriodBounds {
  const ym = requirePeriod(period);
  const tz = requireTimeZone(timeZone);
  return {
    start: new Date(startOfMonth(ym, tz)),
    end: new Date(startOfMonth(addMonths(ym, 1), tz)),
  };
}

export function nextPeriod(period: string): string {
  return formatYearMonth(addMonths(requirePeriod(period), 1));
}

export function previousPeriod(period: string): string {
  return formatYearMonth(addMonths(requirePeriod(period), -1));
}

/** Every period from `startPeriod` to `endPeriod`, both included; empty when start is after end. */
export function periodsBetween(startPeriod: string, endPeriod: string): string[] {
  let current = requirePeriod(startPeriod, 'startPeriod');
  const last = requirePeriod(endPeriod, 'endPeriod');
  const periods: string[] = [];
  while (current.year < last.year || (current.year === last.year && current.month <= last.month)) {
    periods.push(formatYearMonth(current));
    if (current.year === MAX_YEAR && current.month === 12) break;
    current = addMonths(current, 1);
  }
  return periods;
}

// ——— internals ———

function parseYearMonth(period: string): YearMonth | null {
  const match = PERIOD_PATTERN.exec(period);
  if (!match) return null;
  const year = Number(match[1]);
  const month = Number(match[2]);
  if (year < MIN_YEAR || year > MAX_YEAR || month < 1 || month > 12) return null;
  return { year, month };
}

function requirePeriod(period: unknown, field = 'period'): YearMonth {
  const ym = typeof period === 'string' ? parseYearMonth(period) : null;
  if (!ym) {
    throw new BillingValidationError('INVALID_PERIOD', field, `not a period of the form YYYY-MM: "${String(period)}"`);
  }
  return ym;
}

function requireTimeZone(timeZone: unknown): string {
  if (!isValidTimeZone(timeZone)) {
    throw new BillingValidationError('INVALID_TIME_ZONE', 'timeZone', `unknown IANA time zone: "${String(timeZone)}"`);
  }
  return timeZone;
}

function formatYearMonth({ year, month }: YearMonth): string {
  if (year < MIN_YEAR || year > MAX_YEAR) {
    throw new BillingValidationError('INVALID_PERIOD', 'period', `year ${year} is outside ${MIN_YEAR}–${MAX_YEAR}`);
  }
  return `${String(year).padStart(4, '0')}-${String(month).padStart(2, '0')}`;
}

function addMonths({ year, month }: YearMonth, delta: number): YearMonth {
  const index = year * 12 + (month - 1) + delta;
  return { year: Math.floor(index / 12), month: (index % 12) + 1 };
}

/**
 * `UTC` (the default zone of an account, and the zone of the org-wide reads) is read from the Date's UTC fields, with
 * no Intl.DateTimeFormat: creating the first formatter of a process loads ICU's locale and calendar data, about 6.5 MB
 * of the `node` binary's pages (file-backed, counted in the RSS) and 2 MB of native memory, which a gateway whose
 * accounts are all in UTC never needs (docs/benchmark.md, "the submit load's RSS, what the gateway itself holds").
 * The fields are those of the instant's whole second, as the formatter gives them.
 */
function utcWallClock(epochMs: number): WallClock {
  const at = new Date(Math.floor(epochMs / 1000) * 1000);
  return {
    year: at.getUTCFullYear(),
    month: at.getUTCMonth() + 1,
    day: at.getUTCDate(),
    hour: at.getUTCHours(),
    minute: at.getUTCMinutes(),
    second: at.getUTCSeconds(),
  };
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    // Throws RangeError for an unknown zone.
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

interface WallClock {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
}

/**
 * The last wall clock read per time zone, by its second: the callers of one operation ask for the same instant in the
 * same zone several times (an admission's period and day, for its account and again for every account; a
 * settlement's), operations under load share their second, and `formatToParts` is the costly part. The fields it
 * gives (to the second) are those of the instant's whole second, floored as the formatter floors it. Bounded like the
 * formatters: one entry per valid zone.
 */
const lastWallClock = new Map<string, { second: number; wall: WallClock }>();

function wallClock(timeZone: string, epochMs: number): WallClock {
  if (timeZone === UTC) return utcWallClock(epochMs);
  const second = Math.floor(epochMs / 1000);
  const last = lastWallClock.get(timeZone);
  if (last !== undefined && last.second === second) return last.wall;
  const fields: Record<string, number> = {};
  for (const part of formatterFor(timeZone).formatToParts(epochMs)) {
    if (part.type !== 'literal') fields[part.type] = Number(part.value);
  }
  const wall: WallClock = {
    year: fields['year'] ?? NaN,
    month: fields['month'] ?? NaN,
    day: fields['day'] ?? NaN,
    hour: fields['hour'] ?? NaN,
    minute: fields['minute'] ?? NaN,
    second: fields['second'] ?? NaN,
  };
  lastWallClock.set(timeZone, { second, wall });
  return wall;
}

/** The local wall-clock time at an instant, expressed as if it were a UTC epoch (whole seconds). */
function localMs(timeZone: string, epochMs: number): number {
  const w = wallClock(timeZone, epochMs);
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
}

/** UTC offset in ms at an instant (local − UTC). */
function offsetMs(timeZone: string, epochMs: number): number {
  const wholeSecond = epochMs - (((epochMs % 1000) + 1000) % 1000);
  return localMs(timeZone, wholeSecond) - wholeSecond;
}

/**
 * The first instant whose local time is at or after 00:00 on the 1st of the month.
 * Local midnight is `wallMidnight − offset` for the offset in force then; the offset is taken from a
 * few instants around it (zones span UTC−12…+14), and each candidate is checked:
 * - usually one candidate maps exactly to midnight;
 * - when midnight occurs twice (clocks set back across it) the earliest one starts the month;
 * - when midnight does not exist (clocks jump forward over it) the month starts at the jump, found
 *   by bisection over the local time, which is monotonic there.
 */
function startOfMonth(ym: YearMonth, timeZone: string): number {
  const wallMidnight = Date.UTC(ym.year, ym.month - 1, 1);
  const offsets = new Set<number>();
  for (let h = -18; h <= 18; h += 6) offsets.add(offsetMs(timeZone, wallMidnight + h * HOUR_MS));

  let exact: number | null = null;
  let after: number | null = null;
  for (const offset of offsets) {
    const instant = wallMidnight - offset;
    const local = localMs(timeZone, instant);
    if (local === wallMidnight) exact = exact === null ? instant : Math.min(exact, instant);
    else if (local > wallMidnight) after = after === null ? instant : Math.min(after, instant);
  }
  if (exact !== null) return exact;
  if (after === null) throw new RangeError(`cannot find the start of ${formatYearMonth(ym)} in ${timeZone}`);

  // Gap: find the first whole second at or after which the local time has reached midnight.
  let lo = after - 6 * HOUR_MS; // assumed before midnight, checked below
  let hi = after;
  if (localMs(timeZone, lo) >= wallMidnight) return after;
  while (hi - lo > 1000) {
    const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
    if (localMs(timeZone, mid) >= wallMidnight) hi = mid;
    else lo = mid;
  }
  return hi;
}

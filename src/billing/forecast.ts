// Forecasts from the daily rollups (usage_daily): O(days) per unit or account, never a scan of jobs.
//
// The method (docs/forecasts.md):
//   1. History: the settled usage of each of the last HISTORY_DAYS complete days before today (account's time
//      zone), starting at the first day with any usage (a new unit is not diluted by days it did not exist).
//   2. Burn: the mean daily usage `b` of that history.
//   3. Weekday seasonality: with at least 14 days of history, each weekday's factor is the mean of that weekday's
//      days divided by `b` (1 when `b` is 0); with less, every factor is 1.
//   4. Expected usage of a future day d: b × factor(weekday(d)); of today: that × the part of today still to come.
//   5. Projected usage at period end = settled so far (today included) + open holds + Σ expected(rest of period).
//   6. Band: σ = standard deviation of the history's residuals (day − b × factor); over n remaining days the band
//      is ± 1.645 × σ × √n (90 % if daily residuals were independent and normal), the low end never below what is
//      already settled plus held.
//   7. A run-out date (a pool, a budget's headroom): the first day whose cumulative expected usage, from now,
//      reaches what is left; null when it does not within the horizon (or the burn is 0).
import { MICRO_PER_CS } from '../primitives/money.js';

export const HISTORY_DAYS = 28;
/** Seasonality needs two of each weekday. */
export const SEASONAL_MIN_DAYS = 14;
export const BAND_Z = 1.645;

export interface DailyPoint {
  /** `YYYY-MM-DD`. */
  day: string;
  settledMicroCs: bigint;
}

export interface ForecastInput {
  /** Today in the account's time zone (`YYYY-MM-DD`) and the part of it already gone (0..1). */
  today: string;
  elapsedOfToday: number;
  /** The last day of the period (inclusive). */
  periodLastDay: string;
  /** Settled usage of the period so far (today included) and the holds open now. */
  settledSoFarMicroCs: bigint;
  openHoldsMicroCs: bigint;
  /** Daily settled usage before today (any days; those older than HISTORY_DAYS are ignored; missing days are 0). */
  history: readonly DailyPoint[];
}

export interface BurnModel {
  /** Mean daily usage of the history, micro-credit-seconds (fractional). */
  dailyBurn: number;
  /** Factors by weekday, Sunday = 0. */
  weekdayFactors: readonly number[];
  /** Standard deviation of the daily residuals. */
  sigma: number;
  historyDays: number;
}

export interface Forecast {
  model: BurnModel;
  projectedMicroCs: bigint;
  lowMicroCs: bigint;
  highMicroCs: bigint;
  /** Days left in the period after today. */
  daysRemaining: number;
}

const DAY_MS = 86_400_000;

function dayNumber(day: string): number {
  const [y, m, d] = day.split('-').map(Number) as [number, number, number];
  return Date.UTC(y, m - 1, d) / DAY_MS;
}

function dayString(n: number): string {
  return new Date(n * DAY_MS).toISOString().slice(0, 10);
}

export function addDays(day: string, n: number): string {
  return dayString(dayNumber(day) + n);
}

function weekday(n: number): number {
  // 1970-01-01 (day 0) was a Thursday.
  return (((n + 4) % 7) + 7) % 7;
}

export function burnModel(today: string, history: readonly DailyPoint[]): BurnModel {
  const t = dayNumber(today);
  const byDay = new Map<number, number>();
  for (const p of history) {
    const n = dayNumber(p.day);
    if (n < t && n >= t - HISTORY_DAYS) byDay.set(n, (byDay.get(n) ?? 0) + Number(p.settledMicroCs));
  }
  const used = [...byDay.entries()].filter(([, v]) => v !== 0).map(([n]) => n);
  if (used.length === 0) return { dailyBurn: 0, weekdayFactors: Array(7).fill(1), sigma: 0, historyDays: 0 };
  const first = Math.min(...used);
  const days: { n: number; v: number }[] = [];
  for (let n = first; n < t; n++) days.push({ n, v: byDay.get(n) ?? 0 });
  const mean = days.reduce((s, d) => s + d.v, 0) / days.length;
  const factors = Array<number>(7).fill(1);
  if (days.length >= SEASONAL_MIN_DAYS && mean > 0) {
    for (let w = 0; w < 7; w++) {
      const of = days.filter((d) => weekday(d.n) === w);
      if (of.length > 0) factors[w] = of.reduce((s, d) => s + d.v, 0) / of.length / mean;
    }
  }
  const residuals = days.map((d) => d.v - mean * factors[weekday(d.n)]!);
  const sigma = days.length > 1 ? Math.sqrt(residuals.reduce((s, r) => s + r * r, 0) / (days.length - 1)) : 0;
  return { dailyBurn: mean, weekdayFactors: factors, sigma, historyDays: days.length };
}

/** Expected usage of one day (micro-credit-seconds, fractional). */
export function expectedOn(model: BurnModel, day: string): number {
  return model.dailyBurn * model.weekdayFactors[weekday(dayNumber(day))]!;
}

const toMicro = (x: number): bigint => BigInt(Math.max(0, Math.round(x)));

export function forecastPeriod(input: ForecastInput): Forecast {
  const model = burnModel(input.today, input.history);
  const last = dayNumber(input.periodLastDay);
  const t = dayNumber(input.today);
  const rest = Math.max(0, Math.min(1, 1 - input.elapsedOfToday));
  let expected = expectedOn(model, input.today) * rest;
  for (let n = t + 1; n <= last; n++) expected += expectedOn(model, dayString(n));
  const daysRemaining = Math.max(0, last - t);
  const known = input.settledSoFarMicroCs + input.openHoldsMicroCs;
  const spread = BAND_Z * model.sigma * Math.sqrt(daysRemaining + rest);
  const projected = known + toMicro(expected);
  return {
    model,
    projectedMicroCs: projected,
    lowMicroCs: known + toMicro(expected - spread),
    highMicroCs: known + toMicro(expected + spread),
    daysRemaining,
  };
}

/**
 * The day on which expected usage from now reaches `leftMicroCs` (today when nothing is left), or null when it
 * does not by `lastDay` (inclusive) or the burn is 0.
 */
export function runOutDay(model: BurnModel, today: string, elapsedOfToday: number, leftMicroCs: bigint, lastDay: string): string | null {
  if (leftMicroCs <= 0n) return today;
  const left = Number(leftMicroCs);
  const last = dayNumber(lastDay);
  let used = expectedOn(model, today) * Math.max(0, 1 - elapsedOfToday);
  for (let n = dayNumber(today); n <= last; n++) {
    if (n > dayNumber(today)) used += expectedOn(model, dayString(n));
    if (used >= left) return dayString(n);
  }
  return null;
}


// The console's amounts: exact decimal strings from the API shown in USD and credit-seconds without floating point.
import { expect, it } from 'vitest';
import { cs, currentPeriod, daysOfPeriod, fromMicros, sumMicros, toMicros, usd } from '../src/console/format.js';
import { retryDelay, RETRY_FIRST_MS, RETRY_MAX_MS } from '../src/console/live.js';

it('shows US dollars to the cent, rounding half up, with thousands separators and a real minus sign', () => {
  expect(usd('5000')).toBe('$5,000.00');
  expect(usd('1234567.891')).toBe('$1,234,567.89');
  expect(usd('0.005')).toBe('$0.01');
  expect(usd('0.004999')).toBe('$0.00');
  expect(usd('-1234.5')).toBe('−$1,234.50');
  expect(usd(null)).toBe('—');
});

it('shows credit-seconds with the unit, at most two decimals, trailing zeros dropped', () => {
  expect(cs('600000')).toBe('600,000 cs');
  expect(cs('12345.500000')).toBe('12,345.5 cs');
  expect(cs('52.8')).toBe('52.8 cs');
  expect(cs('0.123456')).toBe('0.12 cs');
  expect(cs('-7')).toBe('−7 cs');
});

it('sums decimal strings exactly (no float drift over many lines)', () => {
  const lines = Array.from({ length: 1000 }, () => '0.10');
  expect(fromMicros(sumMicros(lines))).toBe('100.00');
  expect(toMicros('1.000001')).toBe(1_000_001n);
  expect(() => toMicros('1e5')).toThrow();
});

it('months and days in the account time zone', () => {
  expect(currentPeriod('UTC', new Date('2026-01-31T23:30:00Z'))).toBe('2026-01');
  expect(currentPeriod('Asia/Tokyo', new Date('2026-01-31T23:30:00Z'))).toBe('2026-02');
  expect(daysOfPeriod('2028-02')).toHaveLength(29);
});

it('reopens dropped streams after a doubling, jittered delay, capped', () => {
  expect([retryDelay(0, () => 0), retryDelay(0, () => 1)]).toEqual([RETRY_FIRST_MS / 2, RETRY_FIRST_MS]);
  expect([retryDelay(3, () => 0), retryDelay(3, () => 1)]).toEqual([4 * RETRY_FIRST_MS, 8 * RETRY_FIRST_MS]);
  expect([retryDelay(20, () => 0), retryDelay(20, () => 1)]).toEqual([RETRY_MAX_MS / 2, RETRY_MAX_MS]);
});

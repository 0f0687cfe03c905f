import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BillingValidationError } from '../src/primitives/errors.js';
import {
  isValidPeriod,
  isValidTimeZone,
  nextPeriod,
  periodBounds,
  dayOf,
  elapsedOfDay,
  periodOf,
  periodsBetween,
  previousPeriod,
} from '../src/primitives/period.js';

const iso = (d: Date) => d.toISOString();
const bounds = (period: string, tz: string) => {
  const b = periodBounds(period, tz);
  return { start: iso(b.start), end: iso(b.end) };
};
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function expectReason(fn: () => unknown, reason: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(BillingValidationError);
  expect((caught as BillingValidationError).reason).toBe(reason);
}

describe('periodOf', () => {
  it('puts 23:30 UTC on the last day of a month in the next month in Tokyo and the same month in Los Angeles', () => {
    const instant = new Date('2026-01-31T23:30:00Z'); // Tokyo 2026-02-01 08:30, LA 2026-01-31 15:30
    expect(periodOf(instant, 'Asia/Tokyo')).toBe('2026-02');
    expect(periodOf(instant, 'America/Los_Angeles')).toBe('2026-01');
    expect(periodOf(instant, 'UTC')).toBe('2026-01');
  });

  it('puts 07:30 UTC on the 1st in the previous month in Los Angeles', () => {
    expect(periodOf(new Date('2026-02-01T07:30:00Z'), 'America/Los_Angeles')).toBe('2026-01'); // 23:30 PST
    expect(periodOf(new Date('2026-02-01T08:00:00Z'), 'America/Los_Angeles')).toBe('2026-02'); // 00:00 PST
    // In summer LA is UTC−7: 06:59:59 UTC on 1 July is still June.
    expect(periodOf(new Date('2026-07-01T06:59:59.999Z'), 'America/Los_Angeles')).toBe('2026-06');
    expect(periodOf(new Date('2026-07-01T07:00:00Z'), 'America/Los_Angeles')).toBe('2026-07');
  });

  it('rolls over the year', () => {
    expect(periodOf(new Date('2026-12-31T23:30:00Z'), 'Asia/Tokyo')).toBe('2027-01');
    expect(periodOf(new Date('2027-01-01T07:30:00Z'), 'America/Los_Angeles')).toBe('2026-12');
  });

  it('answers for the instant and zone asked, whatever was asked just before (the last wall clock is kept per zone)', () => {
    // One millisecond apart, on both sides of local midnight: a kept wall clock answered for the wrong instant would show.
    const before = new Date('2026-01-31T14:59:59.999Z'); // Tokyo 2026-01-31 23:59:59.999
    const after = new Date('2026-01-31T15:00:00.000Z'); // Tokyo 2026-02-01 00:00
    for (let i = 0; i < 3; i++) {
      expect(dayOf(before, 'Asia/Tokyo')).toBe('2026-01-31');
      expect(periodOf(before, 'Asia/Tokyo')).toBe('2026-01');
      expect(dayOf(after, 'Asia/Tokyo')).toBe('2026-02-01');
      expect(periodOf(after, 'Asia/Tokyo')).toBe('2026-02');
      // The same instant in another zone, asked in between.
      expect(dayOf(after, 'America/Los_Angeles')).toBe('2026-01-31');
      expect(dayOf(after, 'Asia/Tokyo')).toBe('2026-02-01');
    }
    // Within one second, before and after the epoch: the formatter floors milliseconds.
    for (const [ms, second] of [[-1, 86_399], [-999, 86_399], [-1000, 86_399], [-1001, 86_398], [0, 0], [999, 0], [1000, 1], [-1, 86_399]] as const) {
      expect(dayOf(new Date(ms), 'UTC')).toBe(ms < 0 ? '1969-12-31' : '1970-01-01');
      expect(elapsedOfDay(new Date(ms), 'UTC')).toBe(second / 86_400);
    }
    // Every instant of a random sequence answers as a fresh formatter does, in each zone.
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.oneof(fc.integer({ min: Date.UTC(1900, 0, 1), max: Date.UTC(2100, 0, 1) }), fc.integer({ min: -86_400_000, max: 86_400_000 })), fc.constantFrom('UTC', 'Asia/Tokyo', 'America/Los_Angeles', 'Australia/Lord_Howe')), { minLength: 1, maxLength: 20 }), (asks) => {
        for (const [ms, zone] of asks) {
          const parts = Object.fromEntries(
            new Intl.DateTimeFormat('en-US', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' }).formatToParts(ms).map((p) => [p.type, p.value]),
          );
          expect(dayOf(new Date(ms), zone)).toBe(`${parts.year}-${parts.month}-${parts.day}`);
        }
      }),
    );
  });

  it('rejects an unknown time zone and an invalid date', () => {
    expectReason(() => periodOf(new Date('2026-01-01T00:00:00Z'), 'Mars/Olympus_Mons'), 'INVALID_TIME_ZONE');
    expectReason(() => periodOf(new Date('2026-01-01T00:00:00Z'), ''), 'INVALID_TIME_ZONE');
    expectReason(() => periodOf(new Date('nonsense'), 'UTC'), 'INVALID_PERIOD');
  });
});

describe('periodBounds', () => {
  it('is midnight to midnight in UTC, end exclusive', () => {
    expect(bounds('2026-02', 'UTC')).toEqual({ start: '2026-02-01T00:00:00.000Z', end: '2026-03-01T00:00:00.000Z' });
    expect(bounds('2028-02', 'UTC')).toEqual({ start: '2028-02-01T00:00:00.000Z', end: '2028-03-01T00:00:00.000Z' });
    expect(bounds('2026-12', 'UTC')).toEqual({ start: '2026-12-01T00:00:00.000Z', end: '2027-01-01T00:00:00.000Z' });
  });

  it('follows fixed offsets', () => {
    expect(bounds('2026-02', 'Asia/Tokyo')).toEqual({ start: '2026-01-31T15:00:00.000Z', end: '2026-02-28T15:00:00.000Z' });
    expect(bounds('2026-01', 'America/Los_Angeles')).toEqual({
      start: '2026-01-01T08:00:00.000Z',
      end: '2026-02-01T08:00:00.000Z',
    });
    expect(bounds('2026-05', 'Asia/Kathmandu')).toEqual({ start: '2026-04-30T18:15:00.000Z', end: '2026-05-31T18:15:00.000Z' });
  });

  it('handles the DST months of America/New_York (EST −5 / EDT −4)', () => {
    // DST starts 8 March 2026: the month is one hour short.
    const march = periodBounds('2026-03', 'America/New_York');
    expect(iso(march.start)).toBe('2026-03-01T05:00:00.000Z');
    expect(iso(march.end)).toBe('2026-04-01T04:00:00.000Z');
    expect(march.end.getTime() - march.start.getTime()).toBe(31 * DAY - HOUR);
    // DST ends at 02:00 on 1 November 2026, after local midnight: November starts in EDT, is one hour long.
    const november = periodBounds('2026-11', 'America/New_York');
    expect(iso(november.start)).toBe('2026-11-01T04:00:00.000Z');
    expect(iso(november.end)).toBe('2026-12-01T05:00:00.000Z');
    expect(november.end.getTime() - november.start.getTime()).toBe(30 * DAY + HOUR);
  });

  it('handles the DST months of Europe/Berlin (CET +1 / CEST +2)', () => {
    expect(bounds('2026-03', 'Europe/Berlin')).toEqual({ start: '2026-02-28T23:00:00.000Z', end: '2026-03-31T22:00:00.000Z' });
    expect(bounds('2026-10', 'Europe/Berlin')).toEqual({ start: '2026-09-30T22:00:00.000Z', end: '2026-10-31T23:00:00.000Z' });
  });

  it('handles the DST months of Australia/Sydney (AEDT +11 / AEST +10, southern hemisphere)', () => {
    // DST ends 5 April 2026, starts 4 October 2026.
    expect(bounds('2026-04', 'Australia/Sydney')).toEqual({
      start: '2026-03-31T13:00:00.000Z',
      end: '2026-04-30T14:00:00.000Z',
    });
    expect(bounds('2026-10', 'Australia/Sydney')).toEqual({
      start: '2026-09-30T14:00:00.000Z',
      end: '2026-10-31T13:00:00.000Z',
    });
    expect(bounds('2027-01', 'Australia/Sydney')).toEqual({
      start: '2026-12-31T13:00:00.000Z',
      end: '2027-01-31T13:00:00.000Z',
    });
  });

  it('starts a month at the jump when the clocks skip local midnight', () => {
    // Paraguay moved from −04 to −03 at 00:00 on 1 October 2023: that day had no 00:00–00:59.
    expect(bounds('2023-10', 'America/Asuncion')).toEqual({
      start: '2023-10-01T04:00:00.000Z',
      end: '2023-11-01T03:00:00.000Z',
    });
  });

  it('agrees with periodOf at and around its bounds, in every kind of zone', { timeout: 30_000 }, () => {
    const zones = [
      'UTC',
      'America/New_York',
      'America/Los_Angeles',
      'America/Asuncion',
      'America/Santiago',
      'America/St_Johns',
      'Europe/Berlin',
      'Europe/Dublin',
      'Asia/Tokyo',
      'Asia/Kathmandu',
      'Australia/Sydney',
      'Australia/Lord_Howe',
      'Pacific/Chatham',
      'Pacific/Apia',
      'Pacific/Kiritimati',
      'Pacific/Pago_Pago',
    ];
    fc.assert(
      fc.property(
        fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2040, 0, 1) }),
        fc.constantFrom(...zones),
        (ms, tz) => {
          const instant = new Date(ms);
          const period = periodOf(instant, tz);
          const { start, end } = periodBounds(period, tz);
          expect(start.getTime()).toBeLessThanOrEqual(ms);
          expect(ms).toBeLessThan(end.getTime());
          expect(periodOf(start, tz)).toBe(period);
          expect(periodOf(new Date(start.getTime() - 1), tz)).toBe(previousPeriod(period));
          expect(periodOf(new Date(end.getTime() - 1), tz)).toBe(period);
          expect(periodOf(end, tz)).toBe(nextPeriod(period));
          expect(periodBounds(nextPeriod(period), tz).start).toEqual(end);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('rejects invalid periods and time zones', () => {
    expectReason(() => periodBounds('2026-13', 'UTC'), 'INVALID_PERIOD');
    expectReason(() => periodBounds('2026-1', 'UTC'), 'INVALID_PERIOD');
    expectReason(() => periodBounds('2026-01', 'Nowhere/Special'), 'INVALID_TIME_ZONE');
    expectReason(() => periodBounds('2026-01', 'UTC+5'), 'INVALID_TIME_ZONE');
  });
});

describe('period arithmetic', () => {
  it('steps months across years', () => {
    expect(nextPeriod('2026-11')).toBe('2026-12');
    expect(nextPeriod('2026-12')).toBe('2027-01');
    expect(previousPeriod('2026-01')).toBe('2025-12');
    expect(previousPeriod('2026-10')).toBe('2026-09');
  });

  it('lists periods between two periods, both included', () => {
    expect(periodsBetween('2025-11', '2026-02')).toEqual(['2025-11', '2025-12', '2026-01', '2026-02']);
    expect(periodsBetween('2026-05', '2026-05')).toEqual(['2026-05']);
    expect(periodsBetween('2026-05', '2026-04')).toEqual([]);
    expect(periodsBetween('2024-01', '2026-12')).toHaveLength(36);
    expectReason(() => periodsBetween('2026-5', '2026-06'), 'INVALID_PERIOD');
  });

  it('validates periods', () => {
    for (const good of ['2026-01', '2026-12', '1999-07', '9999-12']) expect(isValidPeriod(good)).toBe(true);
    for (const bad of ['2026-00', '2026-13', '2026-1', '26-01', '2026-01-01', ' 2026-01', '2026/01', '0999-01', '', 202601]) {
      expect(isValidPeriod(bad)).toBe(false);
    }
    expectReason(() => nextPeriod('9999-12'), 'INVALID_PERIOD');
    expectReason(() => previousPeriod('nope'), 'INVALID_PERIOD');
  });

  it('validates time zones', () => {
    expect(isValidTimeZone('Europe/Berlin')).toBe(true);
    expect(isValidTimeZone('UTC')).toBe(true);
    expect(isValidTimeZone('Europe/Atlantis')).toBe(false);
    expect(isValidTimeZone('')).toBe(false);
    expect(isValidTimeZone(undefined)).toBe(false);
  });
});

describe('UTC without Intl', () => {
  it('reads UTC as Intl reads Etc/UTC, to the second, for any instant of years 1000–9999', () => {
    fc.assert(
      fc.property(fc.integer({ min: Date.UTC(1000, 0, 1), max: Date.UTC(9999, 11, 31, 23, 59, 59, 999) }), (ms) => {
        const instant = new Date(ms);
        expect(periodOf(instant, 'UTC')).toBe(periodOf(instant, 'Etc/UTC'));
        expect(dayOf(instant, 'UTC')).toBe(dayOf(instant, 'Etc/UTC'));
        expect(elapsedOfDay(instant, 'UTC')).toBe(elapsedOfDay(instant, 'Etc/UTC'));
        const period = periodOf(instant, 'UTC');
        expect(bounds(period, 'UTC')).toEqual(bounds(period, 'Etc/UTC'));
      }),
      { numRuns: 2000 },
    );
  });

  it('reads no Intl.DateTimeFormat for UTC', () => {
    // Formatters are kept per zone for the process (earlier tests may have made one for UTC): what is counted is
    // every reading of any formatter, at instants no earlier test read (the last wall clock is kept per second).
    const formatToParts = Intl.DateTimeFormat.prototype.formatToParts;
    let read = 0;
    Intl.DateTimeFormat.prototype.formatToParts = function (this: Intl.DateTimeFormat, ...args: Parameters<typeof formatToParts>) {
      read++;
      return formatToParts.apply(this, args);
    };
    try {
      expect(isValidTimeZone('UTC')).toBe(true);
      for (const at of ['2031-03-31T23:59:58.999Z', '2032-07-01T00:00:01.000Z', '2033-12-31T12:34:56.789Z']) {
        const instant = new Date(at);
        expect(periodOf(instant, 'UTC')).toBe(at.slice(0, 7));
        expect(dayOf(instant, 'UTC')).toBe(at.slice(0, 10));
      }
      expect(bounds('2031-03', 'UTC')).toEqual({ start: '2031-03-01T00:00:00.000Z', end: '2031-04-01T00:00:00.000Z' });
      expect(read).toBe(0);
    } finally {
      Intl.DateTimeFormat.prototype.formatToParts = formatToParts;
    }
  });
});

// Amounts as the API sends them (exact decimal strings), shown with their unit; exact sums in BigInt.
const SCALE = 6;
const FACTOR = 10n ** BigInt(SCALE);

/** An exact decimal string as an integer of 10^-6 units. */
export function toMicros(value: string | null | undefined): bigint {
  if (!value) return 0n;
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(value.trim());
  if (!m) throw new Error(`not a decimal: ${value}`);
  const frac = (m[3] ?? '').padEnd(SCALE, '0').slice(0, SCALE);
  const n = BigInt(m[2]!) * FACTOR + BigInt(frac);
  return m[1] ? -n : n;
}

export function fromMicros(n: bigint, digits = 2): string {
  const neg = n < 0n;
  const abs = neg ? -n : n;
  const whole = abs / FACTOR;
  const frac = (abs % FACTOR).toString().padStart(SCALE, '0').slice(0, digits);
  return `${neg ? '-' : ''}${whole}${digits > 0 ? `.${frac}` : ''}`;
}

export const sumMicros = (values: (string | null | undefined)[]) => values.reduce((acc, v) => acc + toMicros(v), 0n);

function group(whole: string): string {
  return whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** "$1,234.56" from "1234.56" (exact: no float on the way). */
export function usd(value: string | null | undefined): string {
  if (value === null || value === undefined) return '—';
  const n = toMicros(value);
  const cents = (n < 0n ? -n : n) / 10_000n + ((n < 0n ? -n : n) % 10_000n >= 5_000n ? 1n : 0n);
  const s = `${group((cents / 100n).toString())}.${(cents % 100n).toString().padStart(2, '0')}`;
  return `${n < 0n ? '−' : ''}$${s}`;
}

/** "12,345.5 cs" from "12345.5". */
export function cs(value: string | null | undefined): string {
  if (value === null || value === undefined) return '—';
  const n = toMicros(value);
  const abs = n < 0n ? -n : n;
  const whole = group((abs / FACTOR).toString());
  const frac = (abs % FACTOR).toString().padStart(SCALE, '0').replace(/0+$/, '').slice(0, 2);
  return `${n < 0n ? '−' : ''}${whole}${frac ? `.${frac}` : ''} cs`;
}

export const toNumber = (value: string | null | undefined) => Number(value ?? 0);

export function percent(part: string | null | undefined, whole: string | null | undefined): number {
  const w = toNumber(whole);
  return w > 0 ? Math.max(0, (toNumber(part) / w) * 100) : 0;
}

export function dateTime(iso: string | null | undefined, timeZone: string): string {
  if (!iso) return '—';
  return new Intl.DateTimeFormat('en-GB', { timeZone, dateStyle: 'medium', timeStyle: 'short' }).format(new Date(iso));
}

/** The calendar day (YYYY-MM-DD) of an instant in a time zone. */
export function dayIn(iso: string, timeZone: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(iso));
}

/** The current month (YYYY-MM) in a time zone. */
export function currentPeriod(timeZone: string, now = new Date()): string {
  return dayIn(now.toISOString(), timeZone).slice(0, 7);
}

export function daysOfPeriod(period: string): string[] {
  const [y, m] = period.split('-').map(Number) as [number, number];
  const count = new Date(Date.UTC(y, m, 0)).getUTCDate();
  return Array.from({ length: count }, (_, i) => `${period}-${String(i + 1).padStart(2, '0')}`);
}

/** "21 December 2026" from "2026-12-21" (a calendar day: no time zone applies). */
export function dayInWords(day: string): string {
  return new Intl.DateTimeFormat('en-GB', { timeZone: 'UTC', day: 'numeric', month: 'long', year: 'numeric' }).format(new Date(`${day}T00:00:00Z`));
}

/** The forecast band's colour on charts (the browser test finds the band's marks by it). */
export const BAND_COLOR = '#e8a33d';

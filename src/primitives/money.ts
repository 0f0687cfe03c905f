// Parsing, formatting and splitting of money. Units:
// - credit-seconds are bigint micro-credit-seconds (1 cs = 1_000_000n);
// - USD amounts and rates are exact Rationals of dollars (any decimal string parses exactly);
// - final money is bigint cents;
// - seconds (output lengths, price-book figures) are bigint microseconds, rounded up past 6 decimals.
// The bottom of the layering: imports nothing but its own folder and src/errors.ts.
import { BillingValidationError } from './errors.js';
import * as Q from './rational.js';
import type { Rational } from './rational.js';

export type { Rational } from './rational.js';

export const MICRO_PER_CS = 1_000_000n;
export const CS_DECIMALS = 6;
export const CENTS_PER_USD = 100n;

/** Longer inputs are refused rather than turned into giant bigints. */
const MAX_DECIMAL_LENGTH = 64;
/** Plain decimals only: optional minus sign, digits, optional fraction. No exponent, no spaces. */
const DECIMAL_PATTERN = /^(-?)(\d+)(?:\.(\d+))?$/;

export interface ParseOptions {
  /** Accept a leading minus sign (adjustments). Default: false. */
  readonly allowNegative?: boolean;
  /** The input field, named in the validation error. */
  readonly field?: string;
}

interface ScaledDecimal {
  /** The value times 10^scale. */
  readonly scaled: bigint;
  readonly scale: number;
}

function parseDecimal(value: unknown, what: string, options: ParseOptions, maxDecimals?: number): ScaledDecimal {
  const field = options.field ?? what;
  if (typeof value !== 'string') {
    throw new BillingValidationError('INVALID_AMOUNT', field, `${what} must be a decimal string`);
  }
  if (value.length > MAX_DECIMAL_LENGTH) {
    throw new BillingValidationError('INVALID_AMOUNT', field, `${what} is longer than ${MAX_DECIMAL_LENGTH} characters`);
  }
  const match = DECIMAL_PATTERN.exec(value);
  if (!match) {
    throw new BillingValidationError('INVALID_AMOUNT', field, `${what} is not a plain decimal number: "${value}"`);
  }
  const [, sign = '', whole = '', fraction = ''] = match;
  if (sign === '-' && !options.allowNegative) {
    throw new BillingValidationError('INVALID_AMOUNT', field, `${what} must not be negative`);
  }
  if (maxDecimals !== undefined && fraction.length > maxDecimals) {
    throw new BillingValidationError('INVALID_AMOUNT', field, `${what} has more than ${maxDecimals} decimals`);
  }
  const magnitude = BigInt(whole + fraction);
  return { scaled: sign === '-' ? -magnitude : magnitude, scale: fraction.length };
}

/** "600000.5" → 600000500000n micro-credit-seconds. At most 6 decimals; negative only when allowed. */
export function parseCreditSeconds(value: string, options: ParseOptions = {}): bigint {
  const { scaled, scale } = parseDecimal(value, 'credit-seconds', options, CS_DECIMALS);
  return scaled * 10n ** BigInt(CS_DECIMALS - scale);
}

/** Minimal plain decimal: 600000500000n → "600000.5", 1n → "0.000001", 0n → "0". */
export function formatCreditSeconds(micro: bigint): string {
  return formatScaled(micro, CS_DECIMALS, 0);
}

/** An exact USD amount or rate, in dollars: "0.00833" → 833/100000. Any number of decimals. */
export function parseUsd(value: string, options: ParseOptions = {}): Rational {
  const { scaled, scale } = parseDecimal(value, 'USD amount', options);
  return Q.rational(scaled, 10n ** BigInt(scale));
}

/** An exact non-negative (unless allowed) decimal fraction such as a share "0.25", as a Rational. */
export function parseDecimalRational(value: string, options: ParseOptions = {}): Rational {
  const { scaled, scale } = parseDecimal(value, 'decimal', options);
  return Q.rational(scaled, 10n ** BigInt(scale));
}

/** 583300n → "5833.00", 5n → "0.05", -5n → "-0.05". */
export function formatCents(cents: bigint): string {
  return formatScaled(cents, 2, 2);
}

/**
 * An exact Rational as a minimal plain decimal ("0.00833"). Throws when the value has no finite
 * decimal expansion (a denominator with a prime factor other than 2 and 5): rounding would be silent.
 */
export function formatDecimal(value: Rational): string {
  let twos = 0;
  let fives = 0;
  let rest = value.den;
  while (rest % 2n === 0n) {
    rest /= 2n;
    twos++;
  }
  while (rest % 5n === 0n) {
    rest /= 5n;
    fives++;
  }
  if (rest !== 1n) throw new RangeError('the value has no finite decimal expansion');
  const scale = Math.max(twos, fives);
  const scaled = (value.num * 10n ** BigInt(scale)) / value.den;
  return formatScaled(scaled, scale, 0);
}

/**
 * For display only: the exact decimal when there is one (with at least `minDecimals`), else the value rounded
 * half up to `maxDecimals` (a total price ÷ a pool, such as $10,000 / 1,500,000 cs, has no finite decimal).
 */
export function formatDecimalForDisplay(value: Rational, minDecimals = 0, maxDecimals = 12): string {
  try {
    const exact = formatDecimal(value);
    const decimals = (exact.split('.')[1] ?? '').length;
    if (decimals >= minDecimals) return exact;
  } catch {
    /* no finite expansion: rounded below */
  }
  const scale = 10n ** BigInt(maxDecimals);
  const scaled = Q.roundHalfUp(Q.mul(value, Q.fromBigInt(scale)));
  return formatScaled(scaled, maxDecimals, minDecimals);
}

/** USD (a Rational of dollars) to cents, rounded half up (ties towards +∞). The one rounding rule. */
export function usdToCentsHalfUp(usd: Rational): bigint {
  return Q.roundHalfUp(Q.mul(usd, Q.fromBigInt(CENTS_PER_USD)));
}

function formatScaled(scaled: bigint, scale: number, minDecimals: number): string {
  const negative = scaled < 0n;
  const digits = (negative ? -scaled : scaled).toString().padStart(scale + 1, '0');
  const whole = digits.slice(0, digits.length - scale);
  let fraction = digits.slice(digits.length - scale);
  let end = fraction.length;
  while (end > minDecimals && fraction[end - 1] === '0') end--;
  fraction = fraction.slice(0, end);
  return `${negative ? '-' : ''}${whole}${fraction.length > 0 ? `.${fraction}` : ''}`;
}

/**
 * Splits an exact integer `total` (cents, micro-cs, …) into integer parts proportional to `weights`
 * (Hamilton's largest-remainder method):
 * - each part starts as floor(total · w_i / Σw);
 * - the units still missing go one each to the largest fractional remainders;
 * - equal remainders are broken by index, lowest first, so the result is deterministic.
 *
 * The parts sum exactly to `total`. With a non-negative total every part is non-negative, and a
 * zero weight never receives anything. Weights must be non-negative; they may all be zero only when
 * the total is zero.
 */
export function largestRemainder(total: bigint, weights: readonly Rational[] | readonly bigint[]): bigint[] {
  const ws: Rational[] = (weights as readonly (Rational | bigint)[]).map((w) =>
    typeof w === 'bigint' ? Q.fromBigInt(w) : w,
  );
  if (ws.some(Q.isNegative)) {
    throw new BillingValidationError('INVALID_AMOUNT', 'weights', 'largest-remainder weights must not be negative');
  }
  const weightSum = Q.sum(ws);
  if (Q.isZero(weightSum)) {
    if (total === 0n) return ws.map(() => 0n);
    throw new BillingValidationError('INVALID_AMOUNT', 'weights', 'cannot split a non-zero total over zero weights');
  }
  const totalQ = Q.fromBigInt(total);
  const parts: bigint[] = [];
  const remainders: Rational[] = [];
  let assigned = 0n;
  for (const w of ws) {
    const exact = Q.div(Q.mul(totalQ, w), weightSum);
    const part = Q.floor(exact);
    parts.push(part);
    remainders.push(Q.sub(exact, Q.fromBigInt(part)));
    assigned += part;
  }
  // Σ remainders = total − Σ floors exactly, so `missing` is an integer in [0, count of non-zero remainders].
  const missing = total - assigned;
  const order = ws.map((_, i) => i);
  order.sort((a, b) => Q.compare(remainders[b]!, remainders[a]!) || a - b);
  for (let k = 0n; k < missing; k++) {
    const i = order[Number(k)]!;
    parts[i] = parts[i]! + 1n;
  }
  return parts;
}

/**
 * Renders a finite JSON number as a plain decimal string: 12.4 → "12.4", 1e-7 → "0.0000001",
 * 1e21 → "1000000000000000000000". The digits are JavaScript's shortest round-trip form.
 */
export function numberToDecimal(value: number): string {
  if (!Number.isFinite(value)) throw new RangeError('not a finite number');
  if (value === 0) return '0'; // also -0
  const text = String(value);
  if (!/e/i.test(text)) return text;
  const negative = text.startsWith('-');
  const [mantissa = '', exponentText = '0'] = (negative ? text.slice(1) : text).toLowerCase().split('e');
  const exponent = Number(exponentText);
  const [intPart = '', fracPart = ''] = mantissa.split('.');
  const digits = intPart + fracPart;
  const point = intPart.length + exponent;
  let plain: string;
  if (point <= 0) plain = `0.${'0'.repeat(-point)}${digits}`;
  else if (point >= digits.length) plain = digits + '0'.repeat(point - digits.length);
  else plain = `${digits.slice(0, point)}.${digits.slice(point)}`;
  return negative ? `-${plain}` : plain;
}

/** A decimal string or number of seconds to integer microseconds, rounding up past 6 decimals. */
export function secondsToMicro(value: string | number): bigint {
  const text = typeof value === 'number' ? numberToDecimal(value) : value.trim();
  const match = /^(\d+)(?:\.(\d+))?$/.exec(text);
  if (!match) throw new RangeError(`not a non-negative decimal: ${text}`);
  const whole = BigInt(match[1]!);
  const frac = match[2] ?? '';
  const head = BigInt((frac.slice(0, 6) + '000000').slice(0, 6));
  const roundUp = /[1-9]/.test(frac.slice(6)) ? 1n : 0n;
  return whole * MICRO_PER_CS + head + roundUp;
}

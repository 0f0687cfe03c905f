/** Exact fixed-point helpers: amounts are bigint millionths, never floats. */

export const MICRO = 1_000_000n;

const DECIMAL = /^(-)?(\d+)(?:\.(\d+))?$/;

/** Formats a JS number as a plain decimal string with at most six places ("0.0033", never "3.3e-3"). */
export function numberToDecimal(n: number): string {
  if (!Number.isFinite(n)) throw new RangeError(`not a finite number: ${n}`);
  const fixed = n.toFixed(6);
  return fixed.includes('.') ? fixed.replace(/\.?0+$/, '') : fixed;
}

/** Parses a decimal ("0.0033", 12, "-1.5") into millionths, rounding half away from zero past six places. */
export function decimalToMicro(value: string | number | bigint): bigint {
  if (typeof value === 'bigint') return value * MICRO;
  const text = typeof value === 'number' ? numberToDecimal(value) : value.trim();
  const match = DECIMAL.exec(text);
  if (!match) throw new RangeError(`not a decimal number: ${JSON.stringify(value)}`);
  const [, sign, whole = '0', fraction = ''] = match;
  const padded = (fraction + '0000000').slice(0, 7);
  let micro = BigInt(whole) * MICRO + BigInt(padded.slice(0, 6));
  if (Number(padded[6]) >= 5) micro += 1n;
  return sign ? -micro : micro;
}

/** num / den rounded half away from zero; den must be positive. */
export function divideRounded(num: bigint, den: bigint): bigint {
  const negative = num < 0n;
  const abs = negative ? -num : num;
  const q = (abs * 2n + den) / (den * 2n);
  return negative ? -q : q;
}

/** num / den as a decimal string with `places` places (half away from zero), trailing zeros trimmed. */
export function ratioToDecimal(num: bigint, den: bigint, places = 6): string {
  const scale = 10n ** BigInt(places);
  const scaled = divideRounded(num * scale, den);
  const negative = scaled < 0n;
  const abs = negative ? -scaled : scaled;
  const whole = abs / scale;
  const fraction = (abs % scale).toString().padStart(places, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}

/** For JSON fields that HeyGen types as numbers: exact decimal first, one conversion at the edge. */
export function ratioToNumber(num: bigint, den: bigint, places = 6): number {
  return Number(ratioToDecimal(num, den, places));
}

// Input checks shared by every domain module: what PostgreSQL cannot store must be a ValidationError,
// never a driver error.
import { ValidationError } from './errors.js';

/** Default deepest nesting of a JSON value the gateway stores (MAX_JSON_DEPTH overrides it). */
export const DEFAULT_MAX_JSON_DEPTH = 32;

// A NUL, or a UTF-16 surrogate without its pair: neither can be written to text or jsonb.
const UNSTORABLE_CHARACTER = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const UNPAIRED_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** True when PostgreSQL can store the string as text or inside jsonb. */
export function isStorableText(value: string): boolean {
  return !UNSTORABLE_CHARACTER.test(value);
}

/** True when the string is well-formed UTF-16 (every surrogate has its pair): it can be encoded as UTF-8 at all. */
export function isWellFormedText(value: string): boolean {
  return !UNPAIRED_SURROGATE.test(value);
}

export interface UnstorableValue {
  /** Dotted path of the first offending value (keys shown without unstorable characters). */
  path: string;
  problem: 'character' | 'depth';
}

/**
 * The first part of a JSON value PostgreSQL cannot take: a string (key or value) with a NUL or an unpaired
 * surrogate, or nesting deeper than `maxDepth`. Stops at the limit, so a hostile depth costs nothing.
 */
export function findUnstorableValue(
  value: unknown,
  path: string,
  maxDepth: number = DEFAULT_MAX_JSON_DEPTH,
  textOk: (text: string) => boolean = isStorableText,
  depth = 0,
): UnstorableValue | null {
  if (typeof value === 'string') return textOk(value) ? null : { path, problem: 'character' };
  if (value === null || typeof value !== 'object') return null;
  if (depth >= maxDepth) return { path, problem: 'depth' };
  const entries: [string, unknown][] = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
  for (const [key, child] of entries) {
    const at = `${path}.${key.replace(/[\u0000\uD800-\uDFFF]/g, '')}`;
    if (!textOk(key)) return { path: at, problem: 'character' };
    const found = findUnstorableValue(child, at, maxDepth, textOk, depth + 1);
    if (found) return found;
  }
  return null;
}

/** A ValidationError for the first unstorable part of `value`, if any. */
export function requireStorableValue(value: unknown, path: string, maxDepth: number = DEFAULT_MAX_JSON_DEPTH): void {
  const found = findUnstorableValue(value, path, maxDepth);
  if (!found) return;
  throw new ValidationError(
    found.path,
    found.problem === 'depth'
      ? `${path} is nested deeper than ${maxDepth} levels`
      : 'text must not contain NUL characters or unpaired UTF-16 surrogates',
  );
}

/** A display name: trimmed, 1 to 200 characters, storable. */
export function requireName(value: string, field = 'name'): string {
  const name = value.trim();
  if (!name || name.length > 200 || !isStorableText(name)) {
    throw new ValidationError(field, `${field} must be 1 to 200 characters, without NUL characters or unpaired surrogates`);
  }
  return name;
}

/** A calendar date written YYYY-MM-DD (2026-02-30 is refused). */
export function isCalendarDate(value: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return false;
  const date = new Date(`${value}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().slice(0, 10) === value;
}

/** Instants PostgreSQL's timestamptz can hold, with margin: years 1 to 9999. */
export function isStorableInstant(date: Date): boolean {
  const year = date.getUTCFullYear();
  return Number.isFinite(date.getTime()) && year >= 1 && year <= 9999;
}

/** Largest amount of micro-credit-seconds accepted as input (10^18, a ninth of bigint's range: sums stay storable). */
export const MAX_INPUT_MICRO_CS = 10n ** 18n;

/** A bigint column value given as decimal digits (cursors, ids): within PostgreSQL's bigint. */
export function isStorableBigintText(value: string): boolean {
  return /^\d{1,19}$/.test(value) && BigInt(value) <= 9223372036854775807n;
}

/** Tag keys: a lower-case letter, then up to 63 of a-z 0-9 _ - . : (docs/governance.md). */
const TAG_KEY = /^[a-z][a-z0-9_.:-]{0,63}$/;
const LABEL_MAX = 256;
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;

export function requireTagKey(key: string, field: string): string {
  if (!TAG_KEY.test(key)) throw new ValidationError(field, `tag key "${key.slice(0, 64)}" must be a lower-case letter, then up to 63 of a-z 0-9 _ - . :`);
  return key;
}

/** A tag value, an end user or a person: 1 to 256 characters, storable, without control characters or surrounding spaces. */
export function requireLabel(value: string, field: string): string {
  if (value.length === 0 || value.length > LABEL_MAX || CONTROL_CHARACTER.test(value) || !isWellFormedText(value) || value.trim() !== value) {
    throw new ValidationError(field, `${field} must be 1 to ${LABEL_MAX} characters, without control characters or surrounding spaces`);
  }
  return value;
}

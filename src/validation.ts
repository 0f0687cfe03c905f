// Input checks shared by every domain module: what PostgreSQL cannot store must be a ValidationError,
// never a driver error.
import { ValidationError } from './errors.js';

/** Dotted path of the first string (key or value) holding a NUL character, which text and jsonb cannot store. */
export function findNulCharacter(value: unknown, path: string): string | null {
  if (typeof value === 'string') return value.includes('\u0000') ? path : null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findNulCharacter(value[i], `${path}.${i}`);
      if (found) return found;
    }
    return null;
  }
  if (value && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) {
      if (key.includes('\u0000')) return `${path}.${key.replace(/\u0000/g, '')}`;
      const found = findNulCharacter(child, `${path}.${key}`);
      if (found) return found;
    }
  }
  return null;
}

/** A display name: trimmed, 1 to 200 characters, storable. */
export function requireName(value: string, field = 'name'): string {
  const name = value.trim();
  if (!name || name.length > 200 || name.includes('\u0000')) {
    throw new ValidationError(field, `${field} must be 1 to 200 characters, without NUL characters`);
  }
  return name;
}

/** A calendar date written YYYY-MM-DD (2026-02-30 is refused). */
export function isCalendarDate(value: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return false;
  const date = new Date(`${value}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().slice(0, 10) === value;
}

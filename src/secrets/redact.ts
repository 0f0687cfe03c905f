// The one redaction of secrets from text. Every upstream answer, error message and log line that is stored, logged
// or returned passes through `redactSecrets` BEFORE it is cut to length: a cut made first could leave most of a key
// behind the cut-off marker, where a match on the whole key no longer finds it.
//
// What is redacted:
// - every secret the process has handled (the secret box registers each plaintext it seals or opens: HeyGen API
//   keys, webhook secrets, the signing key; plus the master keys), and any secrets the caller passes;
// - any fragment of such a secret of MIN_FRAGMENT characters or more (an upstream that echoes half a key, or a key
//   split across a line break, still loses it);
// - bearer credentials and JWT-shaped strings (the gateway's own tokens and company tokens are JWTs).

export const REDACTION = '[REDACTED]';

/** Shortest piece of a secret that is redacted on its own. Shorter secrets are redacted only whole. */
export const MIN_FRAGMENT = 8;

const MAX_KNOWN = 10_000;
const known = new Set<string>();

/** Remember a secret so that every later redaction removes it (and its fragments). */
export function registerSecret(secret: string | null | undefined): void {
  if (!secret) return;
  // PEM armour lines are public boilerplate; the key material is in the other lines.
  for (const part of secret.split(/\r?\n/)) {
    const piece = part.trim();
    if (piece.length < 4 || piece.startsWith('-----')) continue;
    if (known.has(piece)) continue;
    if (known.size >= MAX_KNOWN) known.delete(known.values().next().value as string);
    known.add(piece);
  }
}

const BEARER = /\b(Bearer|Basic)\s+[^\s"',;]+/gi;
const JWT = /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;

/** `text` without any known secret, fragment of one, bearer credential or JWT. */
export function redactSecrets(text: string, secrets: readonly (string | null | undefined)[] = []): string {
  if (!text) return text;
  let out = text.replace(BEARER, (_m, scheme: string) => `${scheme} ${REDACTION}`).replace(JWT, REDACTION);
  const all = [...known, ...secrets.filter((s): s is string => !!s && s.length >= 4)];
  if (all.length === 0) return out;
  const marks = new Uint8Array(out.length);
  let marked = false;
  for (const secret of all) {
    const size = Math.min(secret.length, Math.max(MIN_FRAGMENT, 4));
    if (secret.length < MIN_FRAGMENT) {
      marked = markAll(out, secret, marks) || marked;
      continue;
    }
    for (let i = 0; i + size <= secret.length; i++) marked = markAll(out, secret.slice(i, i + size), marks) || marked;
  }
  if (!marked) return out;
  let result = '';
  for (let i = 0; i < out.length; ) {
    if (marks[i]) {
      while (i < out.length && marks[i]) i++;
      result += REDACTION;
    } else {
      result += out[i];
      i++;
    }
  }
  out = result;
  return out;
}

function markAll(text: string, piece: string, marks: Uint8Array): boolean {
  let found = false;
  for (let at = text.indexOf(piece); at !== -1; at = text.indexOf(piece, at + 1)) {
    marks.fill(1, at, at + piece.length);
    found = true;
  }
  return found;
}

/** Redacted first, then cut to at most `max` characters (plus an ellipsis). */
export function redactAndTruncate(text: string, max: number, secrets: readonly (string | null | undefined)[] = []): string {
  const clean = redactSecrets(text, secrets);
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

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
/** Every MIN_FRAGMENT-character window of every known secret: a text is scanned once, whatever their number. */
let windows = new Set<string>();
/** Known secrets shorter than MIN_FRAGMENT, matched whole. */
const short = new Set<string>();

function addWindows(secret: string, into: Set<string>): void {
  for (let i = 0; i + MIN_FRAGMENT <= secret.length; i++) into.add(secret.slice(i, i + MIN_FRAGMENT));
}

/** Remember a secret so that every later redaction removes it (and its fragments). */
export function registerSecret(secret: string | null | undefined): void {
  if (!secret) return;
  // PEM armour lines are public boilerplate; the key material is in the other lines.
  for (const part of secret.split(/\r?\n/)) {
    const piece = part.trim();
    if (piece.length < 4 || piece.startsWith('-----') || known.has(piece)) continue;
    if (known.size >= MAX_KNOWN) {
      const oldest = known.values().next().value as string;
      known.delete(oldest);
      short.delete(oldest);
      windows = new Set();
      for (const k of known) addWindows(k, windows);
    }
    known.add(piece);
    if (piece.length < MIN_FRAGMENT) short.add(piece);
    else addWindows(piece, windows);
  }
}

const BEARER = /\b(Bearer|Basic)\s+[^\s"',;]+/gi;
const JWT = /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;

/** `text` without any known secret, fragment of one, bearer credential or JWT. */
export function redactSecrets(text: string, secrets: readonly (string | null | undefined)[] = []): string {
  if (!text) return text;
  const out = text.replace(BEARER, (_m, scheme: string) => `${scheme} ${REDACTION}`).replace(JWT, REDACTION);
  let extraWindows: Set<string> | null = null;
  const whole = [...short];
  for (const s of secrets) {
    if (!s || s.length < 4 || known.has(s)) continue;
    if (s.length < MIN_FRAGMENT) whole.push(s);
    else addWindows(s, (extraWindows ??= new Set()));
  }
  if (out.length < 4 || (windows.size === 0 && !extraWindows && whole.length === 0)) return out;
  const marks = new Uint8Array(out.length);
  let marked = false;
  for (let i = 0; i + MIN_FRAGMENT <= out.length; i++) {
    const piece = out.slice(i, i + MIN_FRAGMENT);
    if (windows.has(piece) || extraWindows?.has(piece)) {
      marks.fill(1, i, i + MIN_FRAGMENT);
      marked = true;
    }
  }
  for (const secret of whole) {
    for (let at = out.indexOf(secret); at !== -1; at = out.indexOf(secret, at + 1)) {
      marks.fill(1, at, at + secret.length);
      marked = true;
    }
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
  return result;
}

/** Redacted first, then cut to at most `max` characters (plus an ellipsis). */
export function redactAndTruncate(text: string, max: number, secrets: readonly (string | null | undefined)[] = []): string {
  const clean = redactSecrets(text, secrets);
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

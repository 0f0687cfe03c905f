// AES-256-GCM envelope for secrets at rest (HeyGen API keys, webhook secrets, the gateway's signing key).
// Format: v1.<keyId>.<iv>.<tag>.<ciphertext> (base64url). The associated data binds a ciphertext to the
// row and field it belongs to, so a ciphertext copied into another row does not decrypt.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { registerSecret } from './redact.js';

export class SecretBoxError extends Error {}

interface MasterKey {
  readonly id: string;
  readonly key: Buffer;
}

export function parseMasterKey(text: string): MasterKey {
  const trimmed = text.trim();
  let key: Buffer;
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) key = Buffer.from(trimmed, 'hex');
  else key = Buffer.from(trimmed, 'base64');
  if (key.length !== 32) throw new SecretBoxError('GATEWAY_MASTER_KEY must be 32 bytes, as 64 hex characters or base64');
  return { id: createHash('sha256').update(key).digest('hex').slice(0, 8), key };
}

export function generateMasterKey(): string {
  return randomBytes(32).toString('base64');
}

export interface SecretBox {
  /** Id of the key new ciphertexts are written under. */
  readonly currentKeyId: string;
  encrypt(plaintext: string, context: string): string;
  decrypt(ciphertext: string, context: string): string;
  /** Key id a ciphertext was written under. */
  keyIdOf(ciphertext: string): string;
}

export function createSecretBox(current: string, previous: readonly string[] = []): SecretBox {
  for (const key of [current, ...previous]) registerSecret(key);
  const currentKey = parseMasterKey(current);
  const keys = new Map<string, MasterKey>([[currentKey.id, currentKey]]);
  for (const p of previous) {
    const k = parseMasterKey(p);
    if (!keys.has(k.id)) keys.set(k.id, k);
  }
  return {
    currentKeyId: currentKey.id,
    encrypt(plaintext, context) {
      registerSecret(plaintext);
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', currentKey.key, iv);
      cipher.setAAD(Buffer.from(context, 'utf8'));
      const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      const tag = cipher.getAuthTag();
      return ['v1', currentKey.id, iv.toString('base64url'), tag.toString('base64url'), ct.toString('base64url')].join('.');
    },
    decrypt(ciphertext, context) {
      const parts = ciphertext.split('.');
      if (parts.length !== 5 || parts[0] !== 'v1') throw new SecretBoxError('unrecognised ciphertext format');
      const [, keyId, iv, tag, ct] = parts as [string, string, string, string, string];
      const key = keys.get(keyId);
      if (!key) throw new SecretBoxError(`ciphertext was written under master key ${keyId}, which is not configured`);
      try {
        const decipher = createDecipheriv('aes-256-gcm', key.key, Buffer.from(iv, 'base64url'));
        decipher.setAAD(Buffer.from(context, 'utf8'));
        decipher.setAuthTag(Buffer.from(tag, 'base64url'));
        const plaintext = Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
        registerSecret(plaintext);
        return plaintext;
      } catch {
        throw new SecretBoxError('secret could not be decrypted (wrong key or tampered ciphertext)');
      }
    },
    keyIdOf(ciphertext) {
      return ciphertext.split('.')[1] ?? '';
    },
  };
}

/** The only part of a secret that is ever shown: its last four characters. */
export function secretHint(secret: string): string {
  return `…${secret.slice(-4)}`;
}

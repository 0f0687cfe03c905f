// Each service token has a callback signing secret: the app's callbacks (src/outbox/app-callback.ts) are signed with
// it, so the app can tell the gateway's deliveries from anyone else's. Generated at issue (and by rotation), shown
// once, stored only encrypted under the master key (bound to the token's row), never logged.
import { randomBytes } from 'node:crypto';
import { eq } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { serviceTokensTable } from '../db/schema.js';
import type { SecretBox } from '../secrets/secret-box.js';

export function callbackSecretContext(tokenId: string): string {
  return `service_token_callback_secret:${tokenId}`;
}

/** 32 random bytes, recognisable by its prefix (as HeyGen's `whsec_`). */
export function generateCallbackSecret(): string {
  return `gwcs_${randomBytes(32).toString('base64url')}`;
}

/** Gives the token a new callback secret (replacing any previous one at once) and returns it: its only showing. */
export async function setCallbackSecret(tx: Db, box: SecretBox, tokenId: string, now: Date): Promise<string> {
  const secret = generateCallbackSecret();
  await tx
    .update(serviceTokensTable)
    .set({ callbackSecretCiphertext: box.encrypt(secret, callbackSecretContext(tokenId)), callbackSecretRotatedAt: now })
    .where(eq(serviceTokensTable.id, tokenId));
  return secret;
}

export type CallbackSigner =
  | { type: 'ok'; secret: string }
  | { type: 'unavailable'; reason: 'unknown_token' | 'revoked' | 'no_secret' };

/** The secret to sign a callback of `tokenId`'s jobs with, or why there is none. */
export async function callbackSignerOf(db: Db, box: SecretBox, tokenId: string): Promise<CallbackSigner> {
  const [row] = await db
    .select({ ciphertext: serviceTokensTable.callbackSecretCiphertext, revokedAt: serviceTokensTable.revokedAt })
    .from(serviceTokensTable)
    .where(eq(serviceTokensTable.id, tokenId));
  if (!row) return { type: 'unavailable', reason: 'unknown_token' };
  if (row.revokedAt) return { type: 'unavailable', reason: 'revoked' };
  if (!row.ciphertext) return { type: 'unavailable', reason: 'no_secret' };
  return { type: 'ok', secret: box.decrypt(row.ciphertext, callbackSecretContext(tokenId)) };
}

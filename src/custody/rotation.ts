// Master-key rotation: every secret at rest is decrypted with whichever configured key wrote it and
// written again under the current key, in one transaction. Afterwards the old key decrypts nothing.
import { eq } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { accountsTable, notificationChannelsTable, serviceTokensTable, signingKeysTable } from '../db/schema.js';
import { channelSecretContext } from '../notifications/channels.js';
import { apiKeyContext, webhookSecretContext } from '../accounts/accounts.js';
import { signingKeyContext } from '../auth/tokens.js';
import { callbackSecretContext } from '../auth/callback-secrets.js';
import type { SecretBox } from '../secrets/secret-box.js';

export interface RotationReport {
  apiKeys: number;
  webhookSecrets: number;
  signingKeys: number;
  callbackSecrets: number;
  notificationChannels: number;
}

export async function rotateMasterKey(db: Db, box: SecretBox): Promise<RotationReport> {
  return db.transaction(async (tx) => {
    const report: RotationReport = { apiKeys: 0, webhookSecrets: 0, signingKeys: 0, callbackSecrets: 0, notificationChannels: 0 };
    const reencrypt = (ciphertext: string, context: string) => box.encrypt(box.decrypt(ciphertext, context), context);
    const stale = (ciphertext: string) => box.keyIdOf(ciphertext) !== box.currentKeyId;
    for (const account of await tx.select().from(accountsTable).for('update')) {
      const set: Partial<typeof accountsTable.$inferInsert> = {};
      if (stale(account.apiKeyCiphertext)) {
        set.apiKeyCiphertext = reencrypt(account.apiKeyCiphertext, apiKeyContext(account.id));
        report.apiKeys++;
      }
      if (account.webhookSecretCiphertext && stale(account.webhookSecretCiphertext)) {
        set.webhookSecretCiphertext = reencrypt(account.webhookSecretCiphertext, webhookSecretContext(account.id));
        report.webhookSecrets++;
      }
      if (Object.keys(set).length > 0) await tx.update(accountsTable).set(set).where(eq(accountsTable.id, account.id));
    }
    for (const key of await tx.select().from(signingKeysTable).for('update')) {
      if (!stale(key.privateKeyCiphertext)) continue;
      await tx
        .update(signingKeysTable)
        .set({ privateKeyCiphertext: reencrypt(key.privateKeyCiphertext, signingKeyContext(key.kid)) })
        .where(eq(signingKeysTable.kid, key.kid));
      report.signingKeys++;
    }
    for (const token of await tx.select({ id: serviceTokensTable.id, ciphertext: serviceTokensTable.callbackSecretCiphertext }).from(serviceTokensTable).for('update')) {
      if (!token.ciphertext || !stale(token.ciphertext)) continue;
      await tx
        .update(serviceTokensTable)
        .set({ callbackSecretCiphertext: reencrypt(token.ciphertext, callbackSecretContext(token.id)) })
        .where(eq(serviceTokensTable.id, token.id));
      report.callbackSecrets++;
    }
    for (const channel of await tx.select({ id: notificationChannelsTable.id, ciphertext: notificationChannelsTable.secretCiphertext }).from(notificationChannelsTable).for('update')) {
      if (!stale(channel.ciphertext)) continue;
      await tx
        .update(notificationChannelsTable)
        .set({ secretCiphertext: reencrypt(channel.ciphertext, channelSecretContext(channel.id)) })
        .where(eq(notificationChannelsTable.id, channel.id));
      report.notificationChannels++;
    }
    return report;
  });
}

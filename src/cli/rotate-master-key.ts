// Re-encrypts every stored secret under the current master key.
//   GATEWAY_MASTER_KEY=<new> GATEWAY_PREVIOUS_MASTER_KEYS=<old> npm run rotate-master-key
// Then restart every gateway process with GATEWAY_MASTER_KEY=<new> and without the old key.
import { openDatabase, runMigrations } from '../db/client.js';
import { createSecretBox } from '../secrets/secret-box.js';
import { rotateMasterKey } from '../custody/rotation.js';
import { databaseConfig, runCli, UsageError } from './run.js';

await runCli('rotate-master-key', async () => {
  if (!process.env.GATEWAY_MASTER_KEY) {
    throw new UsageError('GATEWAY_MASTER_KEY (the new key) is required; give the old one in GATEWAY_PREVIOUS_MASTER_KEYS');
  }
  const config = databaseConfig();
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    await runMigrations({ databaseUrl: config.databaseUrl, database });
    const report = await rotateMasterKey(database.db, createSecretBox(config.masterKey!, config.previousMasterKeys));
    console.log(`re-encrypted ${report.apiKeys} API keys, ${report.webhookSecrets} webhook secrets, ${report.signingKeys} signing keys, ${report.callbackSecrets} callback signing secrets, ${report.notificationChannels} notification channels`);
  } finally {
    await database.close();
  }
});

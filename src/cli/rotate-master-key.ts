// Re-encrypts every stored secret under the current master key.
//   GATEWAY_MASTER_KEY=<new> GATEWAY_PREVIOUS_MASTER_KEYS=<old> npm run rotate-master-key
// Then restart every gateway process with GATEWAY_MASTER_KEY=<new> and without the old key.
import { loadConfig } from '../config.js';
import { openDatabase, runMigrations } from '../db/client.js';
import { createSecretBox } from '../secrets/secret-box.js';
import { rotateMasterKey } from '../secrets/rotation.js';

const config = loadConfig();
if (!config.masterKey) {
  console.error('GATEWAY_MASTER_KEY (the new key) is required; give the old one in GATEWAY_PREVIOUS_MASTER_KEYS');
  process.exit(2);
}
const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
try {
  await runMigrations({ databaseUrl: config.databaseUrl, database });
  const report = await rotateMasterKey(database.db, createSecretBox(config.masterKey, config.previousMasterKeys));
  console.log(`re-encrypted ${report.apiKeys} API keys, ${report.webhookSecrets} webhook secrets, ${report.signingKeys} signing keys`);
} finally {
  await database.close();
}

// Applies the committed migrations to the configured database (under an advisory lock).
import { loadConfig } from '../config.js';
import { openDatabase, runMigrations } from '../db/client.js';

const config = loadConfig();
const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
try {
  await runMigrations({ databaseUrl: config.databaseUrl, database });
  console.log('migrations applied');
} finally {
  await database.close();
}

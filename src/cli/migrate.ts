// Applies the committed migrations to the configured database (under an advisory lock). Needs no master key.
import { openDatabase, runMigrations } from '../db/client.js';
import { databaseConfig, runCli } from './run.js';

await runCli('db:migrate', async () => {
  const config = databaseConfig({ requireMasterKey: false });
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    await runMigrations({ databaseUrl: config.databaseUrl, database });
    console.log('migrations applied');
  } finally {
    await database.close();
  }
});

// What every command-line tool shares: `.env` read (the environment wins over it), the database it will use said
// out loud, and a bad or missing setting reported as one line with exit code 2 — never a stack trace.
import { existsSync } from 'node:fs';
import { ConfigError, loadConfig, type Config } from '../config.js';
import { DataDirInUseError } from '../db/client.js';
import { SecretBoxError } from '../secrets/secret-box.js';

/** A wrong argument or setting the user can fix: one line, exit code 2. */
export class UsageError extends Error {}

/** Reads `.env` from the working directory when there is one; variables already set are kept. */
export function loadDotEnv(file = '.env'): void {
  if (existsSync(file)) process.loadEnvFile(file);
}

const oneLine = (text: string) => text.replace(/\s*\n\s*/g, '; ').replace(/^Invalid configuration:;\s*/, 'invalid configuration: ');

export async function runCli(name: string, main: () => Promise<void>): Promise<void> {
  try {
    loadDotEnv();
    await main();
  } catch (error) {
    // A malformed or wrong master key (SecretBoxError) is a setting too.
    const usage = error instanceof ConfigError || error instanceof UsageError || error instanceof DataDirInUseError || error instanceof SecretBoxError;
    console.error(`${name}: ${oneLine(error instanceof Error ? error.message : String(error))}`);
    process.exit(usage ? 2 : 1);
  }
}

/**
 * The configuration for a tool that works on the gateway's database. A master key without a DATABASE_URL means
 * the user meant a server and forgot its URL: using the embedded database then would give a token (or a schema)
 * for the wrong database, so it is refused.
 */
export function databaseConfig(opts: { requireMasterKey?: boolean } = {}): Config {
  if (process.env.GATEWAY_MASTER_KEY && !process.env.DATABASE_URL) {
    throw new UsageError(
      'GATEWAY_MASTER_KEY is set but DATABASE_URL is not: set DATABASE_URL to the gateway\'s PostgreSQL (unset GATEWAY_MASTER_KEY to use the embedded database)',
    );
  }
  const config = loadConfig(process.env, opts);
  console.error(`using ${describeDatabase(config)}`);
  return config;
}

/** The database in words, without its password. */
export function describeDatabase(config: Pick<Config, 'databaseUrl' | 'dataDir'>): string {
  if (!config.databaseUrl) return `the embedded database in ${config.dataDir}`;
  try {
    const url = new URL(config.databaseUrl);
    return `PostgreSQL ${url.hostname}:${url.port || '5432'}${url.pathname}`;
  } catch {
    return 'PostgreSQL (DATABASE_URL)';
  }
}

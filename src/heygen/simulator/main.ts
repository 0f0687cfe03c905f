/**
 * Runs the HeyGen v3 simulator on its own:
 *   npm run simulator -- --port 4100 [--host 127.0.0.1] [--api-key KEY ...] [--render-ms 2000] [--seed 1]
 */
import { parseArgs } from 'node:util';
import { DEMO_API_KEY, startSimulator } from './server.js';

const usage = 'usage: simulator [--port 4100] [--host 127.0.0.1] [--api-key KEY ...] [--render-ms MS] [--seed N]';

function integerOption(value: string | undefined, name: string, fallback?: number): number | undefined {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) {
    console.error(`--${name} must be a non-negative integer\n${usage}`);
    process.exit(2);
  }
  return parsed;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '4100' },
      host: { type: 'string', default: '127.0.0.1' },
      'api-key': { type: 'string', multiple: true },
      'render-ms': { type: 'string' },
      seed: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage);
    return;
  }

  const apiKeys = values['api-key']?.length ? values['api-key'] : [DEMO_API_KEY];
  const renderMs = integerOption(values['render-ms'], 'render-ms');
  const seed = integerOption(values.seed, 'seed');
  const simulator = await startSimulator({
    port: integerOption(values.port, 'port', 4100),
    host: values.host,
    accounts: apiKeys.map((apiKey) => ({ apiKey })),
    config: {
      ...(renderMs === undefined ? {} : { renderMs }),
      ...(seed === undefined ? {} : { seed }),
    },
  });

  console.log(`HeyGen v3 simulator (SIMULATED, not HeyGen) listening on ${simulator.url}`);
  console.log(`API key(s): ${apiKeys.join(', ')}`);
  console.log(`Control API: ${simulator.url}/_sim/stats, /_sim/config, /_sim/accounts, /_sim/reset`);

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal} received, shutting down`);
    simulator.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});

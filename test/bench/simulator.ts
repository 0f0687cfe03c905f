// The bench's HeyGen simulator, in its own process: renders instantly, no request-rate limit, no concurrency limit
// and no balance enforcement, so that it is the cheapest possible upstream and the baseline of every latency figure.
// Prints SIMULATOR_URL=<url> when listening; stops on SIGTERM.
import { startSimulator } from '../../src/heygen/simulator/server.js';

const apiKeys = process.argv.slice(2);
const simulator = await startSimulator({
  config: { renderMs: 0, requestsPerSecond: null, enforceBalance: false, defaultConcurrencyLimit: 1_000_000, latencyMs: 0 },
  accounts: apiKeys.map((apiKey) => ({ apiKey, concurrencyLimit: 1_000_000 })),
});
process.stdout.write(`SIMULATOR_URL=${simulator.url}\n`);
process.on('SIGTERM', () => {
  void simulator.close().finally(() => process.exit(0));
});

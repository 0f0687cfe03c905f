// Prints an ADMIN token for the configured database: npm run token -- --admin [--name ops] [--ttl-hours 12]
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { createServices, stopServices } from '../app.js';
import { createLogger } from '../logging.js';

const { values } = parseArgs({
  options: { admin: { type: 'boolean' }, name: { type: 'string', default: 'cli' }, 'ttl-hours': { type: 'string', default: '12' } },
});
if (!values.admin) {
  console.error('usage: npm run token -- --admin [--name <who>] [--ttl-hours <n>]\n(service tokens are issued with the issueServiceToken mutation)');
  process.exit(2);
}
const ttlHours = Number(values['ttl-hours']);
if (!Number.isFinite(ttlHours) || ttlHours <= 0 || ttlHours > 24 * 30) {
  console.error('--ttl-hours must be between 0 and 720');
  process.exit(2);
}
const config = loadConfig();
const services = await createServices(config, { logger: createLogger('warn') });
try {
  process.stdout.write(`${await services.tokens.issueAdminToken(values.name!, Math.round(ttlHours * 3600))}\n`);
} finally {
  await stopServices(services);
}

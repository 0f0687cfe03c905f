// Prints an ADMIN token for the configured database: npm run token -- --admin [--name ops] [--ttl-hours 12]
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { createServices, stopServices } from '../app.js';
import { createLogger } from '../logging.js';

const { values } = parseArgs({
  options: {
    admin: { type: 'boolean' },
    role: { type: 'string' },
    unit: { type: 'string' },
    name: { type: 'string', default: 'cli' },
    'ttl-hours': { type: 'string', default: '12' },
  },
});
const role = values.admin ? 'ADMIN' : values.role?.toUpperCase();
if (role !== 'ADMIN' && role !== 'FINANCE' && role !== 'MANAGER' && role !== 'MEMBER') {
  console.error(
    'usage: npm run token -- --admin [--name <who>] [--ttl-hours <n>]\n' +
      '       npm run token -- --role FINANCE|MANAGER|MEMBER [--unit <org unit uuid>] [--name <who>]\n' +
      '(service tokens are issued with the issueServiceToken mutation)',
  );
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
  const ttlSeconds = Math.round(ttlHours * 3600);
  const token =
    role === 'ADMIN'
      ? await services.tokens.issueAdminToken(values.name!, ttlSeconds)
      : await services.tokens.issueOperatorToken({ name: values.name!, role, unitId: values.unit ?? null, ttlSeconds });
  process.stdout.write(`${token}\n`);
} finally {
  await stopServices(services);
}

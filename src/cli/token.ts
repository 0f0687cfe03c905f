// Prints an operator token for the configured database:
//   npm run token -- --admin [--name ops] [--ttl-hours 12]
//   npm run token -- --role FINANCE|MANAGER|MEMBER [--unit <OrgUnit id as the API gives it>] [--name who]
import { parseArgs } from 'node:util';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { eq } from 'drizzle-orm';
import { createServices, stopServices } from '../app.js';
import { createLogger } from '../logging.js';
import { orgUnitsTable } from '../db/schema.js';
import { isUuid } from '../org/units.js';
import { databaseConfig, runCli, UsageError } from './run.js';

const USAGE =
  'usage: npm run token -- --admin | --role FINANCE|MANAGER|MEMBER [--unit <OrgUnit id>] [--name <who>] [--ttl-hours <n>] (service tokens come from the issueServiceToken mutation)';

/** The unit as the API names it (a global id such as `T3JnVW5pdDo…`), or its raw uuid. */
function unitUuid(value: string): string {
  if (isUuid(value)) return value;
  try {
    const { typename, id } = decodeGlobalID(value);
    if (typename === 'OrgUnit' && isUuid(id)) return id;
  } catch {
    /* not a global id: refused below */
  }
  throw new UsageError(`--unit must be an OrgUnit id as the API returns it (e.g. from orgUnits), not "${value}"`);
}

await runCli('token', async () => {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        admin: { type: 'boolean' },
        role: { type: 'string' },
        unit: { type: 'string' },
        name: { type: 'string', default: 'cli' },
        'ttl-hours': { type: 'string', default: '12' },
      },
    }));
  } catch (error) {
    throw new UsageError(`${(error as Error).message}; ${USAGE}`);
  }
  const role = values.admin ? 'ADMIN' : values.role?.toUpperCase();
  if (role !== 'ADMIN' && role !== 'FINANCE' && role !== 'MANAGER' && role !== 'MEMBER') throw new UsageError(USAGE);
  const needsUnit = role === 'MANAGER' || role === 'MEMBER';
  if (needsUnit !== (values.unit !== undefined)) throw new UsageError(needsUnit ? `--role ${role} needs --unit` : `--role ${role} takes no --unit`);
  const ttlHours = Number(values['ttl-hours']);
  if (!Number.isFinite(ttlHours) || ttlHours <= 0 || ttlHours > 24 * 30) throw new UsageError('--ttl-hours must be more than 0 and at most 720');
  const unitId = values.unit === undefined ? null : unitUuid(values.unit);

  const services = await createServices(databaseConfig(), { logger: createLogger('warn') });
  try {
    if (unitId) {
      const [unit] = await services.db.select({ id: orgUnitsTable.id }).from(orgUnitsTable).where(eq(orgUnitsTable.id, unitId));
      if (!unit) throw new UsageError(`--unit ${values.unit}: no such unit in this database`);
    }
    const ttlSeconds = Math.round(ttlHours * 3600);
    const token =
      role === 'ADMIN'
        ? await services.tokens.issueAdminToken(values.name!, ttlSeconds)
        : await services.tokens.issueOperatorToken({ name: values.name!, role, unitId, ttlSeconds });
    process.stdout.write(`${token}\n`);
  } finally {
    await stopServices(services);
  }
});

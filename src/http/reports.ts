// GET /reports/chargeback.csv?account=…&period=… (add format=focus, or use /reports/chargeback.focus.csv, for the
// FOCUS-style export). Authorised like the chargebackReport query: a Bearer token, an account the caller may see
// (else 404), and only the lines of the caller's subtree unless it is ADMIN or FINANCE.
import { decodeGlobalID } from '@pothos/plugin-relay';
import type { Services } from '../app.js';
import { accountsVisibleTo } from '../accounts/accounts.js';
import { AuthenticationError } from '../auth/tokens.js';
import { chargebackStatement, visibleLines } from '../billing/chargeback.js';
import { chargebackCsv, focusCsv } from '../billing/csv.js';
import { groupStatement } from '../billing/groups.js';
import { isValidPeriod } from '../primitives/period.js';
import { DomainError } from '../errors.js';
import { isUuid } from '../org/units.js';

export interface HttpResult {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}): HttpResult => ({
  status,
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});

/** An account id as a GraphQL global id (what the API hands out) or a bare uuid. */
function accountIdOf(value: string | null): string | null {
  if (!value) return null;
  if (isUuid(value)) return value;
  try {
    const { typename, id } = decodeGlobalID(value);
    return typename === 'Account' && isUuid(id) ? id : null;
  } catch {
    return null;
  }
}

/** `onCaller` is told the verified caller's subject (for the request log). */
export async function handleChargebackCsv(
  services: Services,
  url: URL,
  authorization: string | undefined,
  onCaller?: (subject: string) => void,
): Promise<HttpResult> {
  const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
  if (!match) return json(401, { error: 'an Authorization: Bearer <token> header is required' }, { 'www-authenticate': 'Bearer' });
  let actor;
  try {
    actor = await services.tokens.authenticate(services.db, match[1]!);
  } catch (error) {
    if (error instanceof AuthenticationError) return json(401, { error: error.message }, { 'www-authenticate': 'Bearer' });
    throw error;
  }
  onCaller?.(actor.subject);
  const focus = url.pathname.endsWith('.focus.csv') || url.searchParams.get('format') === 'focus';
  const format = url.searchParams.get('format');
  if (format !== null && format !== 'focus' && format !== 'chargeback') return json(400, { error: 'format must be chargeback or focus' });
  const period = url.searchParams.get('period') ?? '';
  if (!isValidPeriod(period)) return json(400, { error: 'period must be a month as YYYY-MM' });
  const accountId = accountIdOf(url.searchParams.get('account'));
  const visible = accountId ? await accountsVisibleTo(services.db, actor) : [];
  if (!accountId || (visible !== 'all' && !visible.includes(accountId))) return json(404, { error: 'account not found' });

  let statement;
  try {
    statement = await chargebackStatement(services.db, accountId, period);
  } catch (error) {
    if (error instanceof DomainError) return json(error.code === 'NOT_FOUND' ? 404 : 400, { error: error.message, code: error.code });
    throw error;
  }
  const lines = visibleLines(actor, statement);
  const body = focus ? focusCsv(statement, lines, await groupStatement(services.db, statement, { by: 'TAG_SET' })) : chargebackCsv(statement, lines);
  const name = `chargeback-${period}${focus ? '-focus' : ''}.csv`;
  return {
    status: 200,
    headers: {
      'content-type': 'text/csv; charset=utf-8',
      'content-disposition': `attachment; filename="${name}"`,
      'cache-control': 'no-store',
    },
    body,
  };
}

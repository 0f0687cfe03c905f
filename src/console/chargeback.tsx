// Chargeback: a period picker, the statement as a table whose own amounts sum to the invoice, CSV and FOCUS
// downloads (the same files as GET /reports/chargeback[.focus].csv), closed statements marked as such.
import { useState } from 'react';
import { useQuery, useSession, Loading, ErrorNote } from './api.js';
import { ChargebackQuery } from './queries.js';
import { cs, currentPeriod, dateTime, fromMicros, sumMicros, toMicros, usd } from './format.js';
import type { AccountRef } from './overview.js';

async function download(token: string, accountId: string, period: string, focus: boolean): Promise<string | null> {
  const url = `/reports/chargeback${focus ? '.focus' : ''}.csv?account=${encodeURIComponent(accountId)}&period=${encodeURIComponent(period)}`;
  const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  if (!response.ok) {
    const body = (await response.json().catch(() => null)) as { error?: string } | null;
    return `The download failed (${response.status}): ${body?.error ?? response.statusText}`;
  }
  const blob = await response.blob();
  const href = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = href;
  a.download = `chargeback-${period}${focus ? '-focus' : ''}.csv`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10_000);
  return null;
}

export function Chargeback({ account }: { account: AccountRef }) {
  const session = useSession();
  const [period, setPeriod] = useState(currentPeriod(account.timezone));
  const valid = /^\d{4}-(0[1-9]|1[0-2])$/.test(period);
  const report = useQuery(ChargebackQuery, { accountId: account.id, period }, null, !valid);
  const [problem, setProblem] = useState<string | null>(null);
  const r = report.data?.chargebackReport;
  const whole = session.role === 'ADMIN' || session.role === 'FINANCE';
  const ownTotal = r ? sumMicros(r.lines.map((l) => l.ownCostUsd)) : 0n;
  const get = (focus: boolean) => async () => setProblem(await download(session.token, account.id, period, focus));
  return (
    <>
      <h1>
        Chargeback <span className="muted small">{account.name}</span>
      </h1>
      <div className="toolbar">
        <label>
          Period{' '}
          <input type="month" value={period} onChange={(e) => setPeriod(e.target.value)} aria-describedby="tz" data-testid="period" />
        </label>
        <span id="tz" className="muted">
          months in {account.timezone}
        </span>
        <button type="button" onClick={get(false)} disabled={!r} data-testid="download-csv">
          Download CSV
        </button>
        <button type="button" onClick={get(true)} disabled={!r} className="secondary" data-testid="download-focus">
          Download FOCUS
        </button>
      </div>
      {problem && <ErrorNote message={problem} />}
      {!valid ? (
        <p className="error">Choose a month.</p>
      ) : report.error ? (
        <ErrorNote message={report.error} />
      ) : !r ? (
        <Loading what="the statement" />
      ) : (
        <>
          <p data-testid="statement-state">
            {r.closed ? (
              <span className="tag closed">Closed statement{r.closedAt ? ` · ${dateTime(r.closedAt, account.timezone)}` : ''}{r.closedBy ? ` by ${r.closedBy}` : ''}</span>
            ) : (
              <span className="tag open">Open period: amounts change until it is closed</span>
            )}{' '}
            <span className="muted">
              {r.billingModel.toLowerCase().replace('_', ' ')} · policy {r.policy ?? 'default'} · used {cs(r.usedCreditSeconds)} of {cs(r.includedCreditSeconds)} included
            </span>
          </p>
          {r.lines.length === 0 ? (
            <p className="empty">No usage in {period}.</p>
          ) : (
            <div className="table-wrap">
              <table data-testid="chargeback">
                <caption className="sr-only">Chargeback lines for {period}</caption>
                <thead>
                  <tr>
                    <th scope="col">Unit</th>
                    <th scope="col" className="num">Usage</th>
                    <th scope="col" className="num">In pool</th>
                    <th scope="col" className="num">Overage</th>
                    <th scope="col" className="num">Own cost</th>
                    <th scope="col" className="num">Subtree cost</th>
                  </tr>
                </thead>
                <tbody>
                  {r.lines.map((l) => (
                    <tr key={l.orgUnit.id}>
                      <th scope="row" style={{ paddingLeft: `${0.5 + l.depth * 1.2}rem` }}>
                        {l.name} <span className="muted small">{l.kind.toLowerCase()}</span>
                      </th>
                      <td className="num">{cs(l.creditSeconds)}</td>
                      <td className="num">{cs(l.inPoolCreditSeconds)}</td>
                      <td className="num">{cs(l.overageCreditSeconds)}</td>
                      <td className="num">{usd(l.ownCostUsd)}</td>
                      <td className="num">{usd(l.costUsd)}</td>
                    </tr>
                  ))}
                </tbody>
                <tfoot>
                  <tr>
                    <th scope="row">{whole ? 'Sum of own costs' : 'Sum of own costs (your subtree)'}</th>
                    <td colSpan={3} />
                    <td className="num" data-testid="own-total">{usd(fromMicros(ownTotal))}</td>
                    <td />
                  </tr>
                  <tr>
                    <th scope="row">Invoice total</th>
                    <td colSpan={3} className="muted small">
                      MMC {usd(r.mmcUsd)} + overage {usd(r.overageUsd)}
                    </td>
                    <td className="num" data-testid="invoice-total">{usd(r.invoiceTotalUsd)}</td>
                    <td className="small">{whole ? (ownTotal === toMicros(r.invoiceTotalUsd) ? '✓ lines sum to the invoice' : '✗ lines differ from the invoice') : ''}</td>
                  </tr>
                </tfoot>
              </table>
            </div>
          )}
          {r.adjustments.length > 0 && (
            <p className="muted small">
              {r.adjustments.length} usage adjustment(s) included: {r.adjustments.map((a) => `${cs(a.creditSeconds)} (${a.reason})`).join('; ')}.
            </p>
          )}
        </>
      )}
    </>
  );
}

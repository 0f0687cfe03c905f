// Overview of the caller's subtree: this month's spend against the included pool, the projected invoice, overage,
// wallet drift, a cumulative chart, and the org tree with each unit's budgets as bars.
import { useMemo } from 'react';
import { useQuery, usePaged, Loading, ErrorNote, useSession } from './api.js';
import { ChargebackQuery, OverrunFlagsQuery, OverviewQuery, UnitsQuery, UsageSeriesQuery, type UsageForecastFields } from './queries.js';
import type { ResultOf } from './graphql.js';
import { BAND_COLOR, cs, currentPeriod, dayInWords, daysOfPeriod, toNumber, usd } from './format.js';
import { Chart } from './chart.js';
import { BudgetBar, type BudgetView } from './budget-bar.js';
import { JobsTable, LiveNote, useJobs } from './jobs.js';

export interface AccountRef {
  id: string;
  name: string;
  timezone: string;
}

interface UnitNode {
  id: string;
  name: string;
  kind: string;
  parentId: string | null;
  budgets: BudgetView[];
  children: UnitNode[];
}

function Kpi({ label, value, sub, testId }: { label: string; value: string; sub?: string; testId: string }) {
  return (
    <div className="kpi">
      <div className="kpi-label">{label}</div>
      <div className="kpi-value" data-testid={testId}>
        {value}
      </div>
      {sub && <div className="kpi-sub muted">{sub}</div>}
    </div>
  );
}

function Tree({ nodes, accountId }: { nodes: UnitNode[]; accountId: string }) {
  return (
    <ul className="tree">
      {nodes.map((node) => (
        <li key={node.id} data-testid="unit" data-unit-name={node.name}>
          <div className="unit-row">
            <a href={`#/unit/${encodeURIComponent(node.id)}`}>{node.name}</a> <span className="muted small">{node.kind.toLowerCase()}</span>
          </div>
          {node.budgets.filter((b) => !b.account || b.account.id === accountId).map((b) => (
            <BudgetBar key={b.id} budget={b} />
          ))}
          {node.children.length > 0 && <Tree nodes={node.children} accountId={accountId} />}
        </li>
      ))}
    </ul>
  );
}

export type UsageForecastView = ResultOf<typeof UsageForecastFields>;

/** `from` + (`to` − `from`) × the share of the way from day `i0` to day `i1` at day `i` (the band between today and the period's end). */
function along(from: number, to: number, i: number, i0: number, i1: number): number {
  const share = i1 === i0 ? 1 : (i - i0) / (i1 - i0);
  return Math.round((from + (to - from) * share) * 100) / 100;
}

/**
 * Cumulative settled usage per day (the API's exact daily series) against the included pool, and the forecast for
 * the rest of the period: the projection and its band, from today's cumulative usage to the projected, low and high
 * figures at the period's end (drawn straight between the two: the API gives the end points).
 */
export function cumulativeOption(series: { day: string; settledCreditSeconds: string }[], period: string, included: string | null, forecast: UsageForecastView | null) {
  const days = daysOfPeriod(period);
  const perDay = new Map(series.map((p) => [p.day, toNumber(p.settledCreditSeconds)]));
  const today = forecast?.asOfDay ?? series.at(-1)?.day ?? days[0]!;
  let total = 0;
  const cumulative = days.map((d) => {
    total += perDay.get(d) ?? 0;
    return d <= today ? Math.round(total * 100) / 100 : null;
  });
  const i0 = days.indexOf(today);
  const i1 = days.length - 1;
  const start = i0 >= 0 ? (cumulative[i0] ?? 0) : 0;
  const projected = forecast && i0 >= 0 && forecast.historyDays > 0;
  const line = (end: string) => days.map((_, i) => (projected && i >= i0 ? along(start, toNumber(end), i, i0, i1) : null));
  const low = projected ? line(forecast.lowCreditSeconds) : [];
  const high = projected ? line(forecast.highCreditSeconds) : [];
  return {
    tooltip: { trigger: 'axis', valueFormatter: (v: unknown) => (typeof v === 'number' ? `${v.toLocaleString('en-US')} cs` : '—') },
    legend: { top: 0, type: 'scroll' },
    grid: { left: 8, right: 16, top: 48, bottom: 8, containLabel: true },
    xAxis: { type: 'category', data: days.map((d) => d.slice(8)) },
    yAxis: { type: 'value', name: 'credit-seconds' },
    series: [
      { name: 'Settled (cumulative)', type: 'line', data: cumulative, areaStyle: { opacity: 0.15 }, showSymbol: false },
      ...(projected
        ? [
            // The band: its low edge (not drawn) with high − low stacked on it as an area.
            { name: 'Forecast low', type: 'line', stack: 'band', data: low, lineStyle: { opacity: 0 }, showSymbol: false, silent: true, tooltip: { show: false } },
            {
              name: 'Forecast band (90 %)',
              type: 'line',
              stack: 'band',
              data: high.map((v, i) => (v === null ? null : Math.round((v - (low[i] ?? 0)) * 100) / 100)),
              lineStyle: { opacity: 0 },
              areaStyle: { color: BAND_COLOR, opacity: 0.3 },
              itemStyle: { color: BAND_COLOR },
              showSymbol: false,
              tooltip: { show: false },
            },
            { name: 'Forecast', type: 'line', data: line(forecast.projectedCreditSeconds), lineStyle: { type: 'dotted' }, showSymbol: false },
          ]
        : []),
      ...(included ? [{ name: 'Included pool', type: 'line', data: days.map(() => toNumber(included)), lineStyle: { type: 'dashed' }, showSymbol: false }] : []),
    ],
  };
}

export function Overview({ account }: { account: AccountRef }) {
  const session = useSession();
  const period = currentPeriod(account.timezone);
  const overview = useQuery(OverviewQuery, { period });
  const report = useQuery(ChargebackQuery, { accountId: account.id, period });
  const finance = session.role === 'ADMIN' || session.role === 'FINANCE';
  const overruns = useQuery(OverrunFlagsQuery, { accountId: account.id, period }, null, !finance);
  const unitsPaged = usePaged(UnitsQuery, {}, (d) => d.orgUnits);
  const live = useJobs(account.id, period);
  const jobs = live.jobs;

  const acc = overview.data?.accounts.find((a) => a.id === account.id);
  const tree = useMemo(() => {
    const units = unitsPaged.nodes;
    const byId = new Map<string, UnitNode>(units.map((u) => [u.id, { id: u.id, name: u.name, kind: u.kind, parentId: u.parent?.id ?? null, budgets: u.budgets, children: [] }]));
    const roots: UnitNode[] = [];
    for (const node of byId.values()) {
      const parent = node.parentId ? byId.get(node.parentId) : undefined;
      (parent ? parent.children : roots).push(node);
    }
    return roots;
  }, [unitsPaged.nodes]);
  // The chart's subtree: the caller's unit, or (ADMIN, FINANCE: the whole tree) the organization at its root.
  const chartUnit = session.unit?.id ?? tree[0]?.id ?? null;
  const days = daysOfPeriod(period);
  const seriesQuery = useQuery(UsageSeriesQuery, { unit: chartUnit ?? '', accountId: account.id, from: days[0]!, to: days.at(-1)! }, null, chartUnit === null);
  const forecast = acc?.period?.forecast ?? null;
  // The whole account's forecast when the chart shows the whole tree; the caller's subtree's otherwise.
  const chartForecast = session.unit ? (seriesQuery.data?.orgUnit?.forecast ?? null) : (forecast?.usage ?? null);
  const option = useMemo(
    () => cumulativeOption(seriesQuery.data?.usageSeries ?? [], period, acc?.period?.includedCreditSeconds ?? null, chartForecast),
    [seriesQuery.data, period, acc, chartForecast],
  );

  // As on the unit page: a failed re-read keeps what was shown, with the error above.
  if (!overview.data) return overview.error ? <ErrorNote message={overview.error} /> : <Loading what="the overview" />;
  const p = acc?.period;
  return (
    <>
      {overview.error && <ErrorNote message={overview.error} />}
      <h1>
        Overview <span className="muted small">{account.name} · {period} ({account.timezone})</span>
      </h1>
      {p ? (
        <section className="kpis" aria-label="This month">
          <Kpi label="Used this month" value={cs(p.usedCreditSeconds)} sub={`of ${cs(p.includedCreditSeconds)} included`} testId="kpi-used" />
          <Kpi label="Included pool left" value={cs(p.remainingIncludedCreditSeconds)} testId="kpi-remaining" />
          <Kpi label="Held by running jobs" value={cs(p.reservedCreditSeconds)} sub={`${acc.inFlightJobs} in flight`} testId="kpi-reserved" />
          <Kpi label="Overage so far" value={cs(p.overageCreditSeconds)} testId="kpi-overage" />
          <Kpi label="Projected invoice" value={usd(p.projectedInvoiceUsd)} sub="the API's projection for this month" testId="kpi-projected" />
          <Kpi
            label="Invoice so far (chargeback)"
            value={report.data ? usd(report.data.chargebackReport.invoiceTotalUsd) : report.error ? '—' : '…'}
            sub={report.error ?? (report.data?.chargebackReport.closed ? 'closed statement' : 'open period')}
            testId="kpi-invoice"
          />
          {acc.wallet && (
            <Kpi
              label="Wallet drift"
              value={cs(acc.wallet.driftCreditSeconds)}
              sub={acc.wallet.driftFlagged ? `over the ${cs(acc.wallet.driftThresholdCreditSeconds)} threshold` : 'within threshold'}
              testId="kpi-drift"
            />
          )}
        </section>
      ) : null}
      {p && forecast && (
        <section className="kpis" aria-label="Forecast for this month">
          <div className="kpi">
            <div className="kpi-label">Forecast usage at month end</div>
            <div className="kpi-value" data-testid="forecast-usage">{cs(forecast.usage.projectedCreditSeconds)}</div>
            <div className="kpi-sub muted">
              90 % band <span data-testid="forecast-usage-low">{cs(forecast.usage.lowCreditSeconds)}</span> to <span data-testid="forecast-usage-high">{cs(forecast.usage.highCreditSeconds)}</span>
            </div>
          </div>
          <div className="kpi">
            <div className="kpi-label">Forecast invoice</div>
            <div className="kpi-value" data-testid="forecast-invoice">{usd(forecast.projectedInvoiceUsd)}</div>
            <div className="kpi-sub muted">
              <span data-testid="forecast-invoice-low">{usd(forecast.lowInvoiceUsd)}</span> to <span data-testid="forecast-invoice-high">{usd(forecast.highInvoiceUsd)}</span>
            </div>
          </div>
          <div className="kpi">
            <div className="kpi-label">Included pool</div>
            <div className="kpi-value kpi-words" data-testid="forecast-pool" data-runs-out-on={forecast.poolRunsOutOn ?? ''}>
              {forecast.poolRunsOutOn ? `Runs out on ${dayInWords(forecast.poolRunsOutOn)}` : `Lasts to ${dayInWords(forecast.poolHorizon)}`}
            </div>
            <div className="kpi-sub muted">
              at the current burn of {cs(forecast.usage.dailyBurnCreditSeconds)} a day ({forecast.usage.historyDays} days measured), open holds counted
            </div>
          </div>
        </section>
      )}
      {p ? null : session.role === 'ADMIN' || session.role === 'FINANCE' || !session.unit ? (
        <p className="empty">The account has no terms for {period} yet.</p>
      ) : (
        // The account's totals are for ADMIN and FINANCE (they would tell a sibling's usage): the caller's subtree's.
        <section className="kpis" aria-label={`${session.unit.name} this month`}>
          <Kpi label={`${session.unit.name}: settled this month`} value={chartForecast ? cs(chartForecast.settledSoFarCreditSeconds) : '…'} testId="kpi-subtree-settled" />
          <Kpi label="Held by running jobs" value={chartForecast ? cs(chartForecast.openHoldsCreditSeconds) : '…'} testId="kpi-subtree-held" />
          {chartForecast && chartForecast.historyDays > 0 && (
            <Kpi
              label="Projected for the month"
              value={cs(chartForecast.projectedCreditSeconds)}
              sub={`90 % between ${cs(chartForecast.lowCreditSeconds)} and ${cs(chartForecast.highCreditSeconds)}`}
              testId="kpi-subtree-projected"
            />
          )}
          <p className="muted small">The account's totals and invoice are shown to ADMIN and FINANCE.</p>
        </section>
      )}
      <section aria-labelledby="burn">
        <h2 id="burn">Spend this month</h2>
        <Chart option={option} label={`Cumulative settled credit-seconds in ${period} against the included pool`} testId="chart-cumulative" />
        <p className="muted small">
          Settled usage by day ({account.timezone}){session.unit ? ` of ${session.unit.name}` : ''}, from the API&apos;s daily series.{' '}
          {chartForecast && chartForecast.historyDays > 0
            ? 'The forecast and its 90 % band run straight from today to the projected, low and high usage at the month’s end.'
            : 'No forecast is drawn until a complete day with usage exists.'}
        </p>
        {seriesQuery.error && <ErrorNote message={seriesQuery.error} />}
      </section>
      <section aria-labelledby="org">
        <h2 id="org">Organisation and budgets</h2>
        {unitsPaged.error ? (
          <ErrorNote message={unitsPaged.error} />
        ) : unitsPaged.loading && tree.length === 0 ? (
          <Loading what="the organisation" />
        ) : tree.length === 0 ? (
          <p className="empty">No units are visible to you.</p>
        ) : (
          <Tree nodes={tree} accountId={account.id} />
        )}
      </section>
      {finance && (
        <section aria-labelledby="overruns">
          <h2 id="overruns">Projects flagged for overruns</h2>
          {overruns.error ? (
            <ErrorNote message={overruns.error} />
          ) : !overruns.data ? (
            <Loading what="overrun flags" />
          ) : overruns.data.overrunFlags.length === 0 ? (
            <p className="empty">No project's overruns reached the flag threshold this month.</p>
          ) : (
            <ul data-testid="overrun-flags">
              {overruns.data.overrunFlags.map((f) => (
                <li key={f.project?.id ?? 'none'}>
                  {f.project ? <a href={`#/unit/${encodeURIComponent(f.project.id)}`}>{f.project.name}</a> : 'A project'}: {cs(f.overrunCreditSeconds)} over the holds
                  in {f.jobsWithOverrun} job(s), largest {cs(f.largestOverrunCreditSeconds)}. Already billed; the estimates need fixing.
                </li>
              ))}
            </ul>
          )}
        </section>
      )}
      <section aria-labelledby="recent">
        <h2 id="recent">Recent jobs</h2>
        <LiveNote anyRunning={live.anyRunning} streamsDown={live.streamsDown} />
        {live.error && <ErrorNote message={live.error} />}
        {live.loading ? !live.error && <Loading what="jobs" /> : <JobsTable jobs={jobs.slice(0, 20)} timeZone={account.timezone} />}
      </section>
      {session.role === 'MEMBER' && <p className="muted small">As a MEMBER you see your own unit only.</p>}
    </>
  );
}

// Overview of the caller's subtree: this month's spend against the included pool, the projected invoice, overage,
// wallet drift, a cumulative chart, and the org tree with each unit's budgets as bars.
import { useMemo } from 'react';
import { useQuery, usePaged, Loading, ErrorNote, useSession } from './api.js';
import { ChargebackQuery, OverrunFlagsQuery, OverviewQuery, UnitsQuery } from './queries.js';
import { cs, currentPeriod, dayIn, daysOfPeriod, toNumber, usd } from './format.js';
import { Chart } from './chart.js';
import { BudgetBar, type BudgetView } from './budget-bar.js';
import { JobsTable, useJobs, type JobView } from './jobs.js';

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

/** Cumulative settled usage per day (from the jobs the caller may see) against the included pool. */
export function cumulativeOption(jobs: JobView[], period: string, timeZone: string, included: string | null) {
  const days = daysOfPeriod(period);
  const perDay = new Map<string, number>();
  for (const job of jobs) {
    if (!job.settledAt || !job.actualCreditSeconds) continue;
    const day = dayIn(job.settledAt, timeZone);
    if (day.startsWith(period)) perDay.set(day, (perDay.get(day) ?? 0) + toNumber(job.actualCreditSeconds));
  }
  const today = dayIn(new Date().toISOString(), timeZone);
  let total = 0;
  const cumulative = days.map((d) => {
    total += perDay.get(d) ?? 0;
    return d <= today ? Math.round(total * 100) / 100 : null;
  });
  return {
    tooltip: { trigger: 'axis', valueFormatter: (v: unknown) => (typeof v === 'number' ? `${v.toLocaleString('en-US')} cs` : '—') },
    legend: { top: 0 },
    grid: { left: 8, right: 16, top: 32, bottom: 8, containLabel: true },
    xAxis: { type: 'category', data: days.map((d) => d.slice(8)) },
    yAxis: { type: 'value', name: 'credit-seconds' },
    series: [
      { name: 'Settled (cumulative)', type: 'line', data: cumulative, areaStyle: { opacity: 0.15 }, showSymbol: false },
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
  const option = useMemo(() => cumulativeOption(jobs, period, account.timezone, acc?.period?.includedCreditSeconds ?? null), [jobs, period, account.timezone, acc]);

  if (overview.error) return <ErrorNote message={overview.error} />;
  if (!overview.data) return <Loading what="the overview" />;
  const p = acc?.period;
  return (
    <>
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
      ) : (
        <p className="empty">The account has no terms for {period} yet.</p>
      )}
      <section aria-labelledby="burn">
        <h2 id="burn">Spend this month</h2>
        <Chart option={option} label={`Cumulative settled credit-seconds in ${period} against the included pool`} testId="chart-cumulative" />
        <p className="muted small">
          {live.truncated ? 'Only the most recent jobs are charted. ' : ''}Settled jobs by day ({account.timezone}). A forecast band is not drawn: the API has no forecast yet; the projected invoice above is
          its <code>projectedInvoiceUsd</code>.
        </p>
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
        {live.error ? <ErrorNote message={live.error} /> : live.loading ? <Loading what="jobs" /> : <JobsTable jobs={jobs.slice(0, 20)} timeZone={account.timezone} />}
      </section>
      {session.role === 'MEMBER' && <p className="muted small">As a MEMBER you see your own unit only.</p>}
    </>
  );
}

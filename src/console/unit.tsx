// One unit: its path, this month's usage, a daily usage chart by product, its budgets (editable where the role
// allows: ADMIN and FINANCE anywhere, a MANAGER below its own unit), and its recent and live jobs.
import { useEffect, useMemo, useRef, useState, type FormEvent } from 'react';
import { useQuery, useSession, Loading, ErrorNote, type Session } from './api.js';
import { RefusalsQuery, RefusalsSubscription, SetBudgetMutation, UnitQuery, UnitSeriesQuery, type RefusalFields } from './queries.js';
import { follow } from './live.js';
import { describeCode, describeError, type ResultOf } from './graphql.js';
import { cs, currentPeriod, dateTime, dayIn, daysOfPeriod, fromMicros, sumMicros, toMicros, toNumber } from './format.js';
import { Chart } from './chart.js';
import { BudgetBar, type BudgetView } from './budget-bar.js';
import { JobsTable, LiveNote, isRunning, useJobs, type JobView } from './jobs.js';
import type { AccountRef } from './overview.js';

const CS_PATTERN = /^\d{1,15}(\.\d{1,6})?$/;
const USD_PATTERN = /^\d{1,13}(\.\d{1,2})?$/;

/** The same checks as the API (src/budgets): a message, or null when the input may be sent. */
export function checkBudgetInput(limit: string, unit: 'CREDIT_SECONDS' | 'USD', thresholds: string): string | null {
  if (unit === 'CREDIT_SECONDS' && !CS_PATTERN.test(limit.trim())) return 'The limit must be a non-negative number of credit-seconds with at most 6 decimals.';
  if (unit === 'USD' && !USD_PATTERN.test(limit.trim())) return 'The limit must be a non-negative amount of US dollars (cents at most).';
  const parts = thresholds.split(',').map((t) => t.trim()).filter(Boolean);
  if (parts.length > 10 || parts.some((t) => !/^\d{1,4}$/.test(t) || Number(t) < 1 || Number(t) > 1000)) {
    return 'Alert thresholds are up to 10 whole percentages from 1 to 1000, separated by commas.';
  }
  return null;
}

function canEdit(session: Session, path: { id: string }[], unitId: string): boolean {
  if (session.role === 'ADMIN' || session.role === 'FINANCE') return true;
  if (session.role !== 'MANAGER' || !session.unit) return false;
  return unitId !== session.unit.id && path.some((p) => p.id === session.unit!.id);
}

function BudgetEditor({ unitId, budget, accountId, onSaved, onCancel }: {
  unitId: string;
  budget: BudgetView | null;
  accountId: string;
  onSaved(optimistic: BudgetView, commit: Promise<BudgetView | string>): void;
  onCancel(): void;
}) {
  const unit = budget?.limitUnit === 'USD' ? 'USD' : 'CREDIT_SECONDS';
  const [limit, setLimit] = useState((unit === 'USD' ? budget?.limitUsd : budget?.limitCreditSeconds) ?? '');
  const [enforcement, setEnforcement] = useState(budget?.enforcement ?? 'HARD');
  const [thresholds, setThresholds] = useState((budget?.alertThresholds ?? [50, 80, 100]).join(', '));
  const [problem, setProblem] = useState<string | null>(null);
  const session = useSession();
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const invalid = checkBudgetInput(limit, unit, thresholds);
    if (invalid) return setProblem(invalid);
    const alertThresholds = thresholds.split(',').map((t) => t.trim()).filter(Boolean).map(Number);
    const window = budget?.window ?? 'MONTHLY';
    const input = {
      orgUnitId: unitId,
      accountId: budget ? (budget.account?.id ?? null) : accountId,
      window,
      enforcement,
      allowOverage: budget?.allowOverage ?? true,
      alertThresholds,
      ...(unit === 'USD' ? { limitUsd: limit.trim() } : { limitCreditSeconds: limit.trim() }),
    };
    const optimistic: BudgetView = {
      ...(budget ?? {
        id: `pending-${unitId}`,
        window,
        allowOverage: true,
        limitUnit: 'CREDIT_SECONDS',
        limitUsd: null,
        reservedCreditSeconds: '0',
        settledCreditSeconds: '0',
        updatedAt: new Date().toISOString(),
        account: { id: accountId },
      }),
      enforcement,
      alertThresholds,
      limitCreditSeconds: unit === 'USD' ? (budget?.limitCreditSeconds ?? null) : limit.trim(),
      limitUsd: unit === 'USD' ? limit.trim() : null,
      availableCreditSeconds:
        unit === 'USD' ? (budget?.availableCreditSeconds ?? '0') : String(toNumber(limit) - toNumber(budget?.reservedCreditSeconds) - toNumber(budget?.settledCreditSeconds)),
    } as BudgetView;
    const commit = session.client
      .mutation(SetBudgetMutation, { input })
      .toPromise()
      .then((result): BudgetView | string => {
        if (result.error) return describeError(result.error) ?? 'The change was not saved.';
        const payload = result.data?.setBudget;
        if (!payload) return 'The change was not saved.';
        if (payload.__typename === 'SetBudgetPayload') return payload.budget;
        return describeCode(payload.code, payload.message);
      });
    onSaved(optimistic, commit);
  };
  return (
    <form className="editor" onSubmit={submit} aria-label="Edit budget" data-testid="budget-editor">
      <label>
        Limit ({unit === 'USD' ? 'USD' : 'credit-seconds'})
        <input name="limit" inputMode="decimal" value={limit} onChange={(e) => setLimit(e.target.value)} required autoFocus />
      </label>
      <label>
        Enforcement
        <select name="enforcement" value={enforcement} onChange={(e) => setEnforcement(e.target.value as 'HARD' | 'SOFT')}>
          <option value="HARD">HARD: refuse jobs over the limit</option>
          <option value="SOFT">SOFT: alert only</option>
        </select>
      </label>
      <label>
        Alert thresholds (%)
        <input name="thresholds" value={thresholds} onChange={(e) => setThresholds(e.target.value)} />
      </label>
      {problem && (
        <p className="error" role="alert">
          {problem}
        </p>
      )}
      <div className="actions">
        <button type="submit">Save</button>
        <button type="button" className="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function Budgets({ unitId, path, budgets, accountId, onChanged }: { unitId: string; path: { id: string }[]; budgets: BudgetView[]; accountId: string; onChanged(): void }) {
  const session = useSession();
  const editable = canEdit(session, path, unitId);
  // Optimistic copies by budget id; rolled back when the API answers with a typed error.
  const [shown, setShown] = useState(budgets);
  useEffect(() => setShown(budgets), [budgets]);
  const [editing, setEditing] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const [message, setMessage] = useState<{ kind: 'error' | 'ok'; text: string } | null>(null);
  const save = (before: BudgetView | null) => (optimistic: BudgetView, commit: Promise<BudgetView | string>) => {
    const previous = shown;
    setShown(before ? shown.map((b) => (b.id === before.id ? optimistic : b)) : [...shown, optimistic]);
    setEditing(null);
    setSaving(true);
    setMessage(null);
    void commit.then((result) => {
      setSaving(false);
      if (typeof result === 'string') {
        setShown(previous);
        setMessage({ kind: 'error', text: `Not saved: ${result}` });
        return;
      }
      setShown((current) => current.map((b) => (b.id === optimistic.id ? result : b)));
      setMessage({ kind: 'ok', text: 'Budget saved.' });
      onChanged();
    });
  };
  return (
    <section aria-labelledby="budgets">
      <h2 id="budgets">Budgets</h2>
      {shown.length === 0 && <p className="empty">No budget on this unit: it draws on the budgets above it.</p>}
      {shown.map((b) => (
        <div key={b.id} className="budget-block">
          {editing === b.id ? (
            <BudgetEditor unitId={unitId} budget={b} accountId={accountId} onSaved={save(b)} onCancel={() => setEditing(null)} />
          ) : (
            <>
              <BudgetBar budget={b} />
              <div className="muted small">Alerts at {b.alertThresholds.join('%, ')}% · overage {b.allowOverage ? 'allowed' : 'refused'}</div>
              {editable && (
                <button type="button" className="secondary" onClick={() => setEditing(b.id)} disabled={saving}>
                  Edit budget
                </button>
              )}
            </>
          )}
        </div>
      ))}
      {editable && shown.length === 0 && (editing === 'new' ? (
        <BudgetEditor unitId={unitId} budget={null} accountId={accountId} onSaved={save(null)} onCancel={() => setEditing(null)} />
      ) : (
        <button type="button" onClick={() => setEditing('new')}>Set a monthly budget</button>
      ))}
      {saving && <p className="muted" role="status">Saving…</p>}
      {message && (
        <p className={message.kind === 'error' ? 'error' : 'ok'} role={message.kind === 'error' ? 'alert' : 'status'} data-testid="budget-message">
          {message.text}
        </p>
      )}
      {!editable && <p className="muted small">Your role ({session.role}) may not change this unit's budgets.</p>}
    </section>
  );
}

/** Settled usage per day of the period, stacked by product (the API's daily rollups, split by product). */
export function dailyByProductOption(series: ResultOf<typeof UnitSeriesQuery>['usageSeries'], period: string) {
  const days = daysOfPeriod(period);
  const table = new Map<string, Map<string, number>>();
  for (const point of series) {
    for (const part of point.byProduct) {
      if (toNumber(part.settledCreditSeconds) === 0) continue;
      if (!table.has(part.product)) table.set(part.product, new Map());
      table.get(part.product)!.set(point.day, toNumber(part.settledCreditSeconds));
    }
  }
  const products = [...table.keys()].sort();
  return {
    tooltip: { trigger: 'axis', valueFormatter: (v: unknown) => (typeof v === 'number' ? `${v.toLocaleString('en-US')} cs` : '—') },
    legend: { top: 0, type: 'scroll' },
    grid: { left: 8, right: 16, top: 48, bottom: 8, containLabel: true },
    xAxis: { type: 'category', data: days.map((d) => d.slice(8)) },
    yAxis: { type: 'value', name: 'credit-seconds' },
    series: (products.length ? products : ['(no usage yet)']).map((p) => ({
      name: p,
      type: 'bar',
      stack: 'usage',
      data: days.map((d) => Math.round((table.get(p)?.get(d) ?? 0) * 100) / 100),
    })),
  };
}

/** This month's jobs of the unit that cost more than their hold (every overrun is billed; the estimate needs fixing). */
function Overruns({ jobs, period, timeZone, truncated }: { jobs: JobView[]; period: string; timeZone: string; truncated: boolean }) {
  const over = jobs.filter((j) => j.settledAt && toMicros(j.overrunCreditSeconds) > 0n && dayIn(j.settledAt, timeZone).startsWith(period));
  const total = sumMicros(over.map((j) => j.overrunCreditSeconds));
  return (
    <section aria-labelledby="overruns">
      <h2 id="overruns">Overruns this month</h2>
      {over.length === 0 ? (
        <p className="empty">No job of this unit cost more than its hold this month.</p>
      ) : (
        <>
          <p data-testid="overrun-summary">
            {over.length} job{over.length === 1 ? '' : 's'} cost {cs(fromMicros(total, 6))} more than {over.length === 1 ? 'its hold' : 'their holds'}: already billed,
            but the estimates need fixing.
          </p>
          <div className="table-wrap">
            <table data-testid="overruns">
              <caption className="sr-only">Jobs that cost more than their hold in {period}</caption>
              <thead>
                <tr>
                  <th scope="col">Settled ({timeZone})</th>
                  <th scope="col">Project</th>
                  <th scope="col">Product</th>
                  <th scope="col">Submitted by</th>
                  <th scope="col" className="num">Cost</th>
                  <th scope="col" className="num">Overrun</th>
                </tr>
              </thead>
              <tbody>
                {over.map((j) => (
                  <tr key={j.id} data-job-id={j.id}>
                    <td>{dateTime(j.settledAt, timeZone)}</td>
                    <td>{j.project.name}</td>
                    <td>{j.product}</td>
                    <td>{j.createdBy}</td>
                    <td className="num">{cs(j.actualCreditSeconds)}</td>
                    <td className="num">{cs(j.overrunCreditSeconds)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
      {truncated && <p className="muted small">Only the latest jobs were read: older overruns of the month may be missing here (the chargeback has them all).</p>}
    </section>
  );
}

type Refusal = ResultOf<typeof RefusalFields>;

interface RefusalData {
  reason?: string;
  firstRequestedMicroCs?: string | null;
  availableMicroCs?: string | null;
  limitMicroCs?: string | null;
}

/** Micro-credit-seconds (an integer string, as money events carry them) in credit-seconds with the unit. */
const microCs = (value: string | null | undefined) => (value && /^-?\d+$/.test(value) ? cs(fromMicros(BigInt(value), 6)) : '—');

/**
 * Admissions refused by this unit's budgets and those below it: the API's `budget.refused` money events (the first
 * refusal of each budget in each hour), followed live by the `moneyEvents` subscription and re-read when it reopens.
 */
function RefusedAdmissions({ unitId, timeZone }: { unitId: string; timeZone: string }) {
  const session = useSession();
  const read = useQuery(RefusalsQuery, { unit: unitId });
  const [pushed, setPushed] = useState<Refusal[]>([]);
  const [streaming, setStreaming] = useState(false);
  const refetch = read.refetch;
  useEffect(
    () =>
      follow(session.live, RefusalsSubscription, { unit: unitId }, {
        data: ({ moneyEvents: event }) => setPushed((list) => [event, ...list.filter((e) => e.id !== event.id)]),
        open: (reopened) => {
          setStreaming(true);
          if (reopened) refetch();
        },
        closed: () => setStreaming(false),
      }),
    [session, unitId, refetch],
  );
  const listed = read.data?.moneyEvents.edges.map((e) => e.node) ?? [];
  const events = [...pushed.filter((p) => !listed.some((l) => l.id === p.id)), ...listed];
  return (
    <section aria-labelledby="refusals" data-testid="refusals-section" data-live={streaming ? 'open' : 'closed'}>
      <h2 id="refusals">Refused admissions</h2>
      <p className="muted small">Jobs a HARD budget of this unit or below it (or the account's pool) refused: the first refusal of each budget in each hour.</p>
      {read.error && <ErrorNote message={read.error} />}
      {!read.data ? (
        !read.error && <Loading what="refusals" />
      ) : events.length === 0 ? (
        <p className="empty">No job was refused here.</p>
      ) : (
        <div className="table-wrap">
          <table data-testid="refusals">
            <caption className="sr-only">Refused admissions, newest first</caption>
            <thead>
              <tr>
                <th scope="col">When ({timeZone})</th>
                <th scope="col">Refused by</th>
                <th scope="col" className="num">Asked</th>
                <th scope="col" className="num">Available</th>
                <th scope="col" className="num">Limit</th>
              </tr>
            </thead>
            <tbody>
              {events.map((e) => {
                const d = (e.data ?? {}) as RefusalData;
                return (
                  <tr key={e.id} data-testid="refusal" data-event-id={e.id}>
                    <td>{dateTime(e.occurredAt, timeZone)}</td>
                    <td>{d.reason === 'POOL' ? "the account's included pool" : `the budget of ${e.orgUnit.name}`}</td>
                    <td className="num">{microCs(d.firstRequestedMicroCs)}</td>
                    <td className="num">{microCs(d.availableMicroCs)}</td>
                    <td className="num">{microCs(d.limitMicroCs)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

export function UnitPage({ id, account }: { id: string; account: AccountRef }) {
  const period = currentPeriod(account.timezone);
  const unit = useQuery(UnitQuery, { id, period });
  const jobsQuery = useJobs(account.id, period);
  const jobs = useMemo(() => jobsQuery.jobs.filter((j) => j.project.path.some((p) => p.id === id)), [jobsQuery.jobs, id]);
  const anyRunning = jobs.some(isRunning);
  const days = daysOfPeriod(period);
  const series = useQuery(UnitSeriesQuery, { unit: id, accountId: account.id, from: days[0]!, to: days.at(-1)! });
  const option = useMemo(() => dailyByProductOption(series.data?.usageSeries ?? [], period), [series.data, period]);
  // A job of this unit that settles (seen live or polled) moves its usage: read the unit and its series again.
  const settled = jobs.filter((j) => j.settledAt).length;
  const refetchUnit = unit.refetch;
  const refetchSeries = series.refetch;
  const seen = useRef(settled);
  useEffect(() => {
    if (seen.current === settled) return;
    seen.current = settled;
    refetchUnit();
    refetchSeries();
  }, [settled, refetchUnit, refetchSeries]);

  // A failed re-read (the gateway restarting, the network gone) keeps the page that was shown, with the error above.
  if (!unit.data) return unit.error ? <ErrorNote message={unit.error} /> : <Loading what="the unit" />;
  const u = unit.data.orgUnit;
  if (!u) return <p className="empty">This unit does not exist or is not visible to you.</p>;
  return (
    <>
      {unit.error && <ErrorNote message={unit.error} />}
      <nav aria-label="Path" className="crumbs">
        <a href="#/">Overview</a>
        {u.path.map((p) => (
          <span key={p.id}>
            {' / '}
            {p.id === u.id ? <span aria-current="page">{p.name}</span> : <a href={`#/unit/${encodeURIComponent(p.id)}`}>{p.name}</a>}
          </span>
        ))}
      </nav>
      <h1>
        {u.name} <span className="muted small">{u.kind.toLowerCase()} · {period} ({account.timezone})</span>
      </h1>
      <section className="kpis" aria-label="Usage this month">
        <div className="kpi">
          <div className="kpi-label">Settled this month</div>
          <div className="kpi-value" data-testid="unit-settled">{cs(u.usage.settledCreditSeconds)}</div>
        </div>
        <div className="kpi">
          <div className="kpi-label">Held by running jobs</div>
          <div className="kpi-value" data-testid="unit-reserved">{cs(u.usage.reservedCreditSeconds)}</div>
        </div>
      </section>
      <section aria-labelledby="daily">
        <h2 id="daily">Daily usage by product</h2>
        {series.error ? (
          <ErrorNote message={series.error} />
        ) : !series.data ? (
          <Loading what="the daily usage" />
        ) : (
          <Chart option={option} label={`Settled credit-seconds per day in ${period}, by product`} testId="chart-daily" empty="No settled usage in this unit this month yet." />
        )}
      </section>
      <Budgets unitId={u.id} path={u.path} budgets={u.budgets} accountId={account.id} onChanged={unit.refetch} />
      <RefusedAdmissions unitId={u.id} timeZone={account.timezone} />
      <Overruns jobs={jobs} period={period} timeZone={account.timezone} truncated={jobsQuery.truncated} />
      <section aria-labelledby="jobs">
        <h2 id="jobs">Recent and live jobs</h2>
        <LiveNote anyRunning={anyRunning} streamsDown={jobsQuery.streamsDown} />
        {jobsQuery.error && <ErrorNote message={jobsQuery.error} />}
        {jobsQuery.loading ? !jobsQuery.error && <Loading what="jobs" /> : <JobsTable jobs={jobs.slice(0, 50)} timeZone={account.timezone} />}
      </section>
    </>
  );
}

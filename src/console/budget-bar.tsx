// One budget as a bar: used (settled), held (reserved), available; HARD or SOFT; its window.
import type { ResultOf } from './graphql.js';
import type { BudgetFields } from './queries.js';
import { cs, dayInWords, percent, usd } from './format.js';

export type BudgetView = ResultOf<typeof BudgetFields>;

const WINDOW: Record<string, string> = { MONTHLY: 'monthly', LIFETIME: 'lifetime', CONTRACT_TERM: 'contract term' };

export function BudgetBar({ budget }: { budget: BudgetView }) {
  const limit = budget.limitCreditSeconds;
  const used = percent(budget.settledCreditSeconds, limit);
  const held = Math.min(percent(budget.reservedCreditSeconds, limit), Math.max(0, 100 - used));
  const over = limit !== null && used >= 100;
  return (
    <div className="budget" data-testid="budget" data-budget-id={budget.id}>
      <div className="budget-head">
        <span className={`tag ${budget.enforcement === 'HARD' ? 'hard' : 'soft'}`}>{budget.enforcement}</span>
        <span className="muted">{WINDOW[budget.window] ?? budget.window}</span>
        <span data-testid="budget-limit">
          {budget.limitUnit === 'USD' ? `limit ${usd(budget.limitUsd)} (${cs(limit)})` : `limit ${cs(limit)}${budget.limitUsd ? ` (≈ ${usd(budget.limitUsd)})` : ''}`}
        </span>
      </div>
      {limit !== null && (
        <div
          className="bar"
          role="meter"
          aria-valuemin={0}
          aria-valuemax={100}
          aria-valuenow={Math.round(used + held)}
          aria-label={`Budget used ${used.toFixed(0)}%, held ${held.toFixed(0)}%`}
        >
          <span className={`used ${over ? 'over' : ''}`} style={{ width: `${Math.min(used, 100)}%` }} />
          <span className="held" style={{ width: `${held}%` }} />
        </div>
      )}
      <div className="budget-legend muted">
        <span>
          <i className="dot used" /> used {cs(budget.settledCreditSeconds)}
        </span>
        <span>
          <i className="dot held" /> held {cs(budget.reservedCreditSeconds)}
        </span>
        <span>available {cs(budget.availableCreditSeconds)}</span>
      </div>
      {budget.enforcement === 'HARD' && budget.settledCreditSeconds !== null && (
        <div className="muted small" data-testid="budget-exhausts" data-exhausts-on={budget.exhaustsOn ?? ''}>
          {budget.exhaustsOn
            ? `At the current burn, jobs are refused from ${dayInWords(budget.exhaustsOn)}.`
            : 'At the current burn, it lasts to the end of its window.'}
        </div>
      )}
    </div>
  );
}

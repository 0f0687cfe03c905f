// Daily usage series and forecasts, read from the rollups (src/billing/usage-forecast.ts; the method:
// src/billing/forecast.ts, docs/forecasts.md). Authorised like the usage reads they extend.
import { isNull } from 'drizzle-orm';
import { builder } from './builder.js';
import { decodeId } from './ids.js';
import { AccountPeriodRef } from './accounts.js';
import { BudgetRef, OrgUnitRef } from './org.js';
import { budgetCountersVisible, requireVisibleAccount, requireVisibleUnit, visibleAccountIds } from './visibility.js';
import type { GraphQLContext } from './context.js';
import { canReadCostsOf } from '../auth/actor.js';
import { orgUnitsTable } from '../db/schema.js';
import { accountForPath } from '../org/units.js';
import { ForbiddenError, ValidationError } from '../errors.js';
import { dayOf, lastDayOf } from '../primitives/period.js';
import { availableOf } from '../budgets/budgets.js';
import { accountForecast, dailyUsage, dailyUsageByProduct, exhaustionDay, unitForecast, type AccountForecast, type ProductDailyUsage, type UsageForecast } from '../billing/usage-forecast.js';
import { addDays, burnModel, HISTORY_DAYS } from '../billing/forecast.js';

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;
const MAX_SERIES_DAYS = 366;

function parseDay(field: string, value: string): string {
  const m = DAY.exec(value);
  const valid = m && new Date(`${value}T00:00:00Z`).toISOString().slice(0, 10) === value && Number(m[1]) >= 1000;
  if (!valid) throw new ValidationError(field, `${field} must be a day as YYYY-MM-DD`);
  return value;
}

const Granularity = builder.enumType('UsageGranularity', { description: 'Bucket size of a usage series.', values: { DAY: { description: "One point per day in the account's time zone." } } });

const ProductUsageRef = builder.objectRef<ProductDailyUsage>('ProductUsage').implement({
  description: "One product's share of a bucket of a usage series.",
  fields: (t) => ({
    product: t.exposeString('product', { description: 'The price-book product of the jobs (Job.product); ADJUSTMENT for usage adjustments.' }),
    settledCreditSeconds: t.field({ type: 'CreditSeconds', description: 'Usage of this product settled in the bucket.', resolve: (p) => p.settledMicroCs }),
    reservedCreditSeconds: t.field({ type: 'CreditSeconds', description: "This product's holds placed in the bucket and still open.", resolve: (p) => p.reservedMicroCs }),
  }),
});

interface UsagePoint {
  day: string;
  reservedMicroCs: bigint;
  settledMicroCs: bigint;
  byProduct: ProductDailyUsage[];
}

const UsagePointRef = builder.objectRef<UsagePoint>('UsagePoint').implement({
  description: 'Usage of one bucket of a series.',
  fields: (t) => ({
    day: t.exposeString('day', { description: "The day (YYYY-MM-DD, the account's time zone)." }),
    settledCreditSeconds: t.field({ type: 'CreditSeconds', description: 'Usage settled on that day.', resolve: (p) => p.settledMicroCs }),
    reservedCreditSeconds: t.field({ type: 'CreditSeconds', description: 'Holds placed that day and still open.', resolve: (p) => p.reservedMicroCs }),
    byProduct: t.field({
      type: [ProductUsageRef],
      description: 'The same usage split by product (by product name; products without usage in the bucket are left out): the parts sum to the bucket.',
      resolve: (p) => p.byProduct,
    }),
  }),
});

const METHOD =
  'trailing daily burn: the mean settled usage of the last 28 complete days (from the first day with usage), with weekday factors once 14 days are known; projected = settled so far + open holds + the expected rest of the period; band ± 1.645 σ √days (90 %). See docs/forecasts.md.';

const UsageForecastRef = builder.objectRef<UsageForecast>('UsageForecast').implement({
  description: `The current period's usage projected to its last day, from the daily rollups. Method: ${METHOD}`,
  fields: (t) => ({
    period: t.field({ type: 'Period', description: 'The period (the current one, in the account\'s time zone).', resolve: (f) => f.period }),
    asOfDay: t.exposeString('today', { description: "Today in the account's time zone (YYYY-MM-DD)." }),
    periodLastDay: t.exposeString('periodLastDay', { description: 'The last day of the period.' }),
    settledSoFarCreditSeconds: t.field({ type: 'CreditSeconds', description: 'Usage settled in the period so far.', resolve: (f) => f.settledSoFarMicroCs }),
    openHoldsCreditSeconds: t.field({ type: 'CreditSeconds', description: 'Holds open now (counted as usage to come).', resolve: (f) => f.openHoldsMicroCs }),
    dailyBurnCreditSeconds: t.field({ type: 'CreditSeconds', description: 'Mean daily usage of the history (before weekday factors).', resolve: (f) => BigInt(Math.round(f.model.dailyBurn)) }),
    historyDays: t.int({ description: `Complete days the burn is measured over (at most ${HISTORY_DAYS}; 0: no usage yet, nothing projected).`, resolve: (f) => f.model.historyDays }),
    seasonal: t.boolean({ description: 'Whether weekday factors were applied (14 days of history or more).', resolve: (f) => f.model.weekdayFactors.some((x) => x !== 1) }),
    projectedCreditSeconds: t.field({ type: 'CreditSeconds', description: 'Projected usage at the end of the period.', resolve: (f) => f.projectedMicroCs }),
    lowCreditSeconds: t.field({ type: 'CreditSeconds', description: 'Low end of the band.', resolve: (f) => f.lowMicroCs }),
    highCreditSeconds: t.field({ type: 'CreditSeconds', description: 'High end of the band.', resolve: (f) => f.highMicroCs }),
  }),
});

const AccountForecastRef = builder.objectRef<AccountForecast>('AccountForecast').implement({
  description: `An account's current period projected to its end, with its invoice and its included pool. Method: ${METHOD}`,
  fields: (t) => ({
    usage: t.field({ type: UsageForecastRef, description: 'The projected usage.', resolve: (f) => f }),
    projectedInvoiceUsd: t.field({ type: 'Usd', description: 'The invoice of the projected usage.', resolve: (f) => f.projectedInvoiceUsd }),
    lowInvoiceUsd: t.field({ type: 'Usd', description: 'The invoice of the low end of the band.', resolve: (f) => f.lowInvoiceUsd }),
    highInvoiceUsd: t.field({ type: 'Usd', description: 'The invoice of the high end of the band.', resolve: (f) => f.highInvoiceUsd }),
    poolRunsOutOn: t.exposeString('poolRunsOutOn', {
      nullable: true,
      description: 'The day the included pool (a credit package: what is left of it) is used up at the current burn, open holds counted; null when it lasts to poolHorizon.',
    }),
    poolHorizon: t.exposeString('poolHorizon', { description: "The pool's last day: the period's (usage-based) or the term's (credit package)." }),
  }),
});

builder.objectField(OrgUnitRef, 'forecast', (t) =>
  t.field({
    type: UsageForecastRef,
    nullable: true,
    description: "This unit's subtree's usage in the current period, projected to its end (null when no account applies). Readable like OrgUnit.usage.",
    args: { accountId: t.arg.id({ required: false, description: 'Global id of an account; omitted: the account the unit draws on.' }) },
    resolve: async (u, args, ctx) => {
      if (!canReadCostsOf(ctx.actor!, u)) throw new ForbiddenError("usage is shown for units in the caller's own subtree");
      const accountId = args.accountId != null ? decodeId(String(args.accountId), 'Account') : await accountForPath(ctx.db, u.path);
      if (!accountId) return null;
      const account = await requireVisibleAccount(ctx, accountId);
      return unitForecast(ctx.db, u.id, account, ctx.now);
    },
  }),
);

async function rootUnitId(ctx: GraphQLContext): Promise<string | null> {
  const [root] = await ctx.db.select({ id: orgUnitsTable.id }).from(orgUnitsTable).where(isNull(orgUnitsTable.parentId));
  return root?.id ?? null;
}

builder.objectField(AccountPeriodRef, 'forecast', (t) =>
  t.field({
    type: AccountForecastRef,
    nullable: true,
    description: 'The period projected to its end: only for the current period (null for others, or before any unit exists).',
    resolve: async (p, _a, ctx) => {
      const account = await ctx.loaders.accountById.load(p.accountId);
      if (!account || ctx.loaders.periodNow(account.timezone) !== p.period) return null;
      const root = await rootUnitId(ctx);
      return root ? accountForecast(ctx.db, root, account, ctx.now) : null;
    },
  }),
);

builder.objectField(BudgetRef, 'exhaustsOn', (t) =>
  t.string({
    nullable: true,
    description:
      "HARD budgets: the day (account's time zone; UTC for a budget over all accounts) admissions would be refused at the current burn of the unit (open holds counted); null when it lasts to its window's end (a year for LIFETIME), for SOFT budgets, and for callers that may not see the budget's counters.",
    resolve: async (b, _a, ctx) => {
      if (b.enforcement !== 'HARD' || !(await budgetCountersVisible(ctx, b))) return null;
      const account = b.accountId ? await ctx.loaders.accountById.load(b.accountId) : null;
      const tz = account?.timezone ?? 'UTC';
      const today = dayOf(ctx.now, tz);
      const usage = await ctx.loaders.budgetUsage.load(b);
      const available = availableOf(b, usage);
      // The window's last day (its bounds are days or periods); a year ahead at most.
      const end = usage.windowTo.length === 10 ? usage.windowTo : lastDayOf(usage.windowTo);
      const lastDay = end < addDays(today, 366) ? end : addDays(today, 366);
      const history = await dailyUsage(ctx.db, b.orgUnitId, b.accountId ? [b.accountId] : null, addDays(today, -HISTORY_DAYS), addDays(today, -1));
      return exhaustionDay(burnModel(today, history), ctx.now, tz, available, lastDay);
    },
  }),
);

builder.queryField('usageSeries', (t) =>
  t.field({
    type: [UsagePointRef],
    authScopes: { authenticated: true },
    description:
      "Daily usage of a unit's subtree over an inclusive range of days (at most 366), one point per day (zeros included), each split by product (UsagePoint.byProduct), for one account or all the caller may see. Readable like OrgUnit.usage.",
    args: {
      orgUnitId: t.arg.id({ required: true, description: 'Global id of the unit.' }),
      from: t.arg.string({ required: true, description: 'First day, YYYY-MM-DD.' }),
      to: t.arg.string({ required: true, description: 'Last day, YYYY-MM-DD.' }),
      granularity: t.arg({ type: Granularity, required: false, defaultValue: 'DAY', description: 'Bucket size (DAY).' }),
      accountId: t.arg.id({ required: false, description: 'Global id of an account; omitted: every account the caller may see.' }),
    },
    resolve: async (_r, args, ctx) => {
      const from = parseDay('from', args.from);
      const to = parseDay('to', args.to);
      if (to < from) throw new ValidationError('to', 'to must not be before from');
      const span = (Date.parse(to) - Date.parse(from)) / 86_400_000 + 1;
      if (span > MAX_SERIES_DAYS) throw new ValidationError('to', `a series spans at most ${MAX_SERIES_DAYS} days`);
      const unit = await requireVisibleUnit(ctx, decodeId(String(args.orgUnitId), 'OrgUnit'));
      if (!canReadCostsOf(ctx.actor!, unit)) throw new ForbiddenError("usage is shown for units in the caller's own subtree");
      let accounts: string[] | null;
      if (args.accountId != null) accounts = [(await requireVisibleAccount(ctx, decodeId(String(args.accountId), 'Account'))).id];
      else {
        const visible = await visibleAccountIds(ctx);
        accounts = visible === 'all' ? null : visible;
      }
      const points = new Map<string, UsagePoint>();
      for (let day = from; day <= to; day = addDays(day, 1)) points.set(day, { day, reservedMicroCs: 0n, settledMicroCs: 0n, byProduct: [] });
      for (const row of await dailyUsageByProduct(ctx.db, unit.id, accounts, from, to)) {
        const point = points.get(row.day)!;
        point.reservedMicroCs += row.reservedMicroCs;
        point.settledMicroCs += row.settledMicroCs;
        point.byProduct.push(row);
      }
      return [...points.values()];
    },
  }),
);

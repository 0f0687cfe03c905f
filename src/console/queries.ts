import { graphql } from './graphql.js';

export const ViewerQuery = graphql(`
  query ConsoleViewer {
    viewer { role subject orgUnit { id name kind } }
    accounts { id name timezone billingModel }
  }
`);

export const BudgetFields = graphql(`
  fragment ConsoleBudget on Budget {
    id window enforcement allowOverage alertThresholds limitUnit
    limitCreditSeconds limitUsd reservedCreditSeconds settledCreditSeconds availableCreditSeconds exhaustsOn updatedAt
    account { id }
  }
`);

export const UsageForecastFields = graphql(`
  fragment ConsoleUsageForecast on UsageForecast {
    asOfDay periodLastDay historyDays seasonal dailyBurnCreditSeconds
    settledSoFarCreditSeconds openHoldsCreditSeconds projectedCreditSeconds lowCreditSeconds highCreditSeconds
  }
`);

export const AccountForecastFields = graphql(
  `
  fragment ConsoleAccountForecast on AccountForecast {
    projectedInvoiceUsd lowInvoiceUsd highInvoiceUsd poolHorizon poolRunsOutOn
    usage { ...ConsoleUsageForecast }
  }
`,
  [UsageForecastFields],
);

/** Daily settled usage of a unit's subtree (exact, from the API's daily rollups) and the subtree's forecast. */
export const UsageSeriesQuery = graphql(
  `
  query ConsoleUsageSeries($unit: ID!, $accountId: ID!, $from: String!, $to: String!) {
    usageSeries(orgUnitId: $unit, accountId: $accountId, from: $from, to: $to, granularity: DAY) { day settledCreditSeconds reservedCreditSeconds }
    orgUnit(id: $unit) { id forecast(accountId: $accountId) { ...ConsoleUsageForecast } }
  }
`,
  [UsageForecastFields],
);

/** A unit's settled usage per day, split by product (the API's daily rollups). */
export const UnitSeriesQuery = graphql(`
  query ConsoleUnitSeries($unit: ID!, $accountId: ID!, $from: String!, $to: String!) {
    usageSeries(orgUnitId: $unit, accountId: $accountId, from: $from, to: $to, granularity: DAY) { day byProduct { product settledCreditSeconds } }
  }
`);

export const OverviewQuery = graphql(
  `
  query ConsoleOverview($period: Period) {
    accounts {
      id name timezone billingModel inFlightJobs
      period(period: $period) {
        period includedCreditSeconds usedCreditSeconds reservedCreditSeconds overageCreditSeconds
        remainingIncludedCreditSeconds projectedInvoiceUsd
        forecast { ...ConsoleAccountForecast }
      }
      wallet { driftCreditSeconds driftFlagged driftThresholdCreditSeconds heygenUsedCreditSeconds gatewayUsedCreditSeconds takenAt }
    }
  }
`,
  [AccountForecastFields],
);

/** Pages of PAGE_SIZE: the API's query cost limit (GRAPHQL_MAX_COST) bounds what one request may ask. */
export const PAGE_SIZE = 50;

export const UnitsQuery = graphql(
  `
  query ConsoleUnits($after: String) {
    orgUnits(first: 50, after: $after) {
      pageInfo { hasNextPage endCursor }
      edges { node { id name kind parent { id } budgets { ...ConsoleBudget } } }
    }
  }
`,
  [BudgetFields],
);

export const JobFields = graphql(`
  fragment ConsoleJob on Job {
    id status kind product createdAt submittedAt settledAt
    estimatedCreditSeconds reservedCreditSeconds actualCreditSeconds overrunCreditSeconds
    failureCode failureMessage upstreamIds createdBy
    project { id name path { id } }
  }
`);

export const JobsQuery = graphql(
  `
  query ConsoleJobs($accountId: ID, $after: String) {
    jobs(first: 50, after: $after, filter: { accountId: $accountId }) {
      pageInfo { hasNextPage endCursor }
      edges { node { ...ConsoleJob } }
    }
  }
`,
  [JobFields],
);

/** One project's jobs as they are created or change status (the live list's updates; polling is the fallback). */
export const JobsUpdatedSubscription = graphql(
  `
  subscription ConsoleJobsUpdated($projectId: ID!) {
    jobsUpdated(projectId: $projectId) { ...ConsoleJob }
  }
`,
  [JobFields],
);

/** One job's outputs, read fresh from HeyGen by the gateway: asked for one job at a time, when the user wants its video. */
export const JobOutputsQuery = graphql(`
  query ConsoleJobOutputs($id: ID!) {
    job(id: $id) { id outputs { upstreamId status videoUrl failureMessage } }
  }
`);

export const UnitQuery = graphql(
  `
  query ConsoleUnit($id: ID!, $period: Period) {
    orgUnit(id: $id) {
      id name kind
      path { id name kind }
      budgets { ...ConsoleBudget }
      usage(period: $period) { period settledCreditSeconds reservedCreditSeconds }
    }
  }
`,
  [BudgetFields],
);

export const ChargebackQuery = graphql(`
  query ConsoleChargeback($accountId: ID!, $period: String!) {
    chargebackReport(accountId: $accountId, period: $period) {
      period timezone closed closedAt closedBy billingModel policy
      invoiceTotalUsd mmcUsd overageUsd usedCreditSeconds includedCreditSeconds overageCreditSeconds remainingCreditSeconds
      periodStart periodEnd
      lines {
        name kind depth orgUnit { id }
        creditSeconds inPoolCreditSeconds overageCreditSeconds costUsd
        ownCreditSeconds ownCostUsd
      }
      adjustments { id creditSeconds reason createdBy }
    }
  }
`);

export const SetBudgetMutation = graphql(
  `
  mutation ConsoleSetBudget($input: SetBudgetInput!) {
    setBudget(input: $input) {
      __typename
      ... on SetBudgetPayload { budget { ...ConsoleBudget } }
      ... on Error { code message }
    }
  }
`,
  [BudgetFields],
);

export const OverrunFlagsQuery = graphql(`
  query ConsoleOverrunFlags($accountId: ID, $period: Period!) {
    overrunFlags(accountId: $accountId, period: $period) {
      jobsWithOverrun largestOverrunCreditSeconds overrunCreditSeconds
      project { id name }
    }
  }
`);

export const RefusalFields = graphql(`
  fragment ConsoleRefusal on MoneyEvent {
    id occurredAt data orgUnit { id name }
  }
`);

/** Admissions refused by the budgets of a unit's subtree (money events `budget.refused`: the first of each budget and hour). */
export const RefusalsQuery = graphql(
  `
  query ConsoleRefusals($unit: ID!) {
    moneyEvents(orgUnitId: $unit, kinds: [BUDGET_REFUSED], first: 20) { edges { node { ...ConsoleRefusal } } }
  }
`,
  [RefusalFields],
);

export const RefusalsSubscription = graphql(
  `
  subscription ConsoleRefusalsLive($unit: ID!) {
    moneyEvents(orgUnitId: $unit, kinds: [BUDGET_REFUSED]) { ...ConsoleRefusal }
  }
`,
  [RefusalFields],
);

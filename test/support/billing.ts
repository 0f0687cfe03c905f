// Fixtures for the billing tests: accounts with terms from a chosen period, trees, adjustments, reports.
import { decodeGlobalID } from '@pothos/plugin-relay';
import { expect } from 'vitest';
import type { Harness } from './harness.js';
import { createUnit, mustMutate } from './fixtures.js';

export const TIER_5K_TERMS = { mmcUsd: '5000', includedCreditSeconds: '600000', contractRateUsd: '0.00750', overageRateUsd: '0.00833' };

export function rawId(globalId: string): string {
  return decodeGlobalID(globalId).id;
}

export async function createBillingAccount(
  h: Harness,
  opts: {
    name: string;
    timezone?: string;
    effectiveFrom?: string;
    usageBased?: Record<string, string>;
    creditPackage?: Record<string, string>;
    apiKey?: string;
  },
): Promise<string> {
  const input: Record<string, unknown> = {
    name: opts.name,
    billingModel: opts.creditPackage ? 'CREDIT_PACKAGE' : 'USAGE_BASED',
    apiKey: opts.apiKey ?? 'sk_test_primary_key_0001',
    baseUrl: h.sim.url,
    concurrencyLimit: 50,
    timezone: opts.timezone ?? 'UTC',
    effectiveFrom: opts.effectiveFrom ?? '2024-01',
  };
  if (opts.creditPackage) input.creditPackage = opts.creditPackage;
  else input.usageBased = opts.usageBased ?? TIER_5K_TERMS;
  const p = await mustMutate(
    h,
    `mutation($input: CreateAccountInput!) { createAccount(input: $input) { __typename ... on CreateAccountPayload { account { id } } ... on Error { message code } } }`,
    { input },
    'createAccount',
  );
  return p.account.id;
}

const roots = new WeakMap<Harness, string>();

/** The one organization of a gateway (created on first use). */
export async function organization(h: Harness): Promise<string> {
  let org = roots.get(h);
  if (!org) {
    org = await createUnit(h, 'ORGANIZATION', 'Acme', null);
    roots.set(h, org);
  }
  return org;
}

/**
 * org
 * ├─ <prefix> Media (draws on the account)
 * │  ├─ Team A ─ Project A
 * │  └─ Team B ─ Project B
 * └─ <prefix> Sales (draws on the account)
 *    └─ Team C ─ Project C
 */
export interface BillingTree {
  accountId: string;
  orgId: string;
  mediaId: string;
  salesId: string;
  teamA: string;
  teamB: string;
  teamC: string;
  projectA: string;
  projectB: string;
  projectC: string;
}

export async function createBillingTree(h: Harness, accountId: string, prefix: string): Promise<BillingTree> {
  const orgId = await organization(h);
  const mediaId = await createUnit(h, 'DEPARTMENT', `${prefix} Media`, orgId, accountId);
  const salesId = await createUnit(h, 'DEPARTMENT', `${prefix} Sales`, orgId, accountId);
  const teamA = await createUnit(h, 'TEAM', 'Team A', mediaId);
  const teamB = await createUnit(h, 'TEAM', 'Team B', mediaId);
  const teamC = await createUnit(h, 'TEAM', 'Team C', salesId);
  const projectA = await createUnit(h, 'PROJECT', 'Project A', teamA);
  const projectB = await createUnit(h, 'PROJECT', 'Project B', teamB);
  const projectC = await createUnit(h, 'PROJECT', 'Project C', teamC);
  return { accountId, orgId, mediaId, salesId, teamA, teamB, teamC, projectA, projectB, projectC };
}

export const ADJUST = `mutation($input: RecordUsageAdjustmentInput!) {
  recordUsageAdjustment(input: $input) {
    __typename
    ... on RecordUsageAdjustmentPayload { adjustment { id creditSeconds period requestedPeriod movedToNextOpenPeriod reason createdBy orgUnit { id } } }
    ... on ValidationError { message code field }
    ... on Error { message code }
  }
}`;

export async function adjust(h: Harness, accountId: string, orgUnitId: string, period: string, creditSeconds: string, reason = 'usage before the gateway'): Promise<any> {
  return mustMutate(h, ADJUST, { input: { accountId, orgUnitId, period, creditSeconds, reason } }, 'recordUsageAdjustment');
}

export const REPORT = `query($accountId: ID!, $period: String!) {
  chargebackReport(accountId: $accountId, period: $period) {
    period policy closed closedAt billingModel timezone periodStart periodEnd
    invoiceTotalUsd mmcUsd overageUsd drawdownUsd forfeitedUsd
    usedCreditSeconds includedCreditSeconds overageCreditSeconds remainingCreditSeconds forfeitedCreditSeconds
    costCentre { id }
    adjustments { id creditSeconds reason requestedPeriod orgUnit { id } }
    lines { orgUnit { id name } name kind depth creditSeconds inPoolCreditSeconds overageCreditSeconds costUsd
            ownCreditSeconds ownInPoolCreditSeconds ownOverageCreditSeconds ownCostUsd }
  }
}`;

export async function report(h: Harness, accountId: string, period: string, token?: string): Promise<any> {
  const res = await h.gql(REPORT, { accountId, period }, token);
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data.chargebackReport;
}

/** Line of a report by unit global id. */
export function lineOf(r: any, unitId: string): any {
  const line = r.lines.find((l: any) => l.orgUnit.id === unitId);
  if (!line) throw new Error(`no line for ${unitId}`);
  return line;
}

export async function setTerms(h: Harness, input: Record<string, unknown>, token?: string): Promise<any> {
  return mustMutate(
    h,
    `mutation($input: SetAccountTermsInput!) { setAccountTerms(input: $input) { __typename
       ... on SetAccountTermsPayload { terms { effectiveFrom preset mmcUsd includedCreditSeconds overageRateUsd allocationPolicy costCentre { id } } }
       ... on Error { message code } } }`,
    { input },
    'setAccountTerms',
    token,
  );
}

export async function setShares(h: Harness, accountId: string, effectiveFrom: string, shares: { orgUnitId: string; share: string }[]): Promise<any> {
  return mustMutate(
    h,
    `mutation($input: SetCommittedSharesInput!) { setCommittedShares(input: $input) { __typename
       ... on SetCommittedSharesPayload { shares { share orgUnit { id } } } ... on Error { message code } } }`,
    { input: { accountId, effectiveFrom, shares } },
    'setCommittedShares',
  );
}

export async function fetchCsv(h: Harness, path: string, token: string | null = h.adminToken): Promise<{ status: number; body: string; type: string | null }> {
  const res = await fetch(`${h.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, body: await res.text(), type: res.headers.get('content-type') };
}

/** Sum of decimal strings with 2 decimals, in cents. */
export function sumCents(values: string[]): bigint {
  return values.reduce((acc, v) => {
    const negative = v.startsWith('-');
    const [whole = '0', frac = ''] = v.replace('-', '').split('.');
    const cents = BigInt(whole) * 100n + BigInt((frac + '00').slice(0, 2));
    return acc + (negative ? -cents : cents);
  }, 0n);
}

// Chargeback and usage grouped by tag and by person (docs/billing.md, docs/governance.md): 1,000 random jobs with
// random tags, submitters and end users (and adjustments, failures and jobs still in flight) in one period; under
// every allocation policy each line's groups sum to the line to the cent, the organization's to the invoice, the
// groups' usage is what the jobs settled, and the FOCUS export's rows (one per tag set, job tags in `Tags`) sum to
// the invoice.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { parse } from 'csv-parse/sync';
import { startHarness, type Harness } from './support/harness.js';
import { avatarRequest, mustMutate } from './support/fixtures.js';
import { adjust, createBillingAccount, createBillingTree, fetchCsv, rawId, setShares, setTerms, sumCents, type BillingTree } from './support/billing.js';
import { expectCountersEqualLedger } from './support/invariants.js';
import { admitJob } from '../src/jobs/admission.js';
import { settleJob } from '../src/jobs/settlement.js';
import { queryRows } from '../src/db/client.js';
import type { Actor } from '../src/auth/actor.js';

const PERIOD = '2025-03';
const JOBS = 1000;
const CAMPAIGNS = ['spring', 'summer', 'autumn'];
const CLIENTS = ['acme', 'globex', 'initech', 'umbrella'];

let h: Harness;
let tree: BillingTree;
let ann: string;

/** A deterministic pseudo-random sequence (mulberry32), so that a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const REPORT = `query($accountId: ID!, $period: String!, $groupBy: GroupByInput) {
  chargebackReport(accountId: $accountId, period: $period, groupBy: $groupBy) {
    policy invoiceTotalUsd
    lines { orgUnit { id } creditSeconds ownCreditSeconds costUsd ownCostUsd
            groups { tagKey value label creditSeconds ownCreditSeconds costUsd ownCostUsd } }
  }
}`;

const micro = (cs: string) => {
  const negative = cs.startsWith('-');
  const [whole = '0', frac = ''] = cs.replace('-', '').split('.');
  const value = BigInt(whole) * 1_000_000n + BigInt((frac + '000000').slice(0, 6));
  return negative ? -value : value;
};

beforeAll(async () => {
  h = await startHarness({ workers: false, sim: { autoComplete: false } });
  const account = await createBillingAccount(h, {
    name: 'Tagged',
    effectiveFrom: '2024-01',
    usageBased: { mmcUsd: '100', includedCreditSeconds: '20000', contractRateUsd: '0.005', overageRateUsd: '0.00833' },
  });
  tree = await createBillingTree(h, account, 'Tagged');
  await mustMutate(h, `mutation { setTagKeys(input: { keys: ["campaign", "client"] }) { __typename } }`, {}, 'setTagKeys');
  ann = await h.services.tokens.issueOperatorToken({ name: 'ann', role: 'MEMBER', unitId: rawId(tree.teamA) });

  const path = async (unit: string) =>
    (await queryRows<{ path: string[] }>(h.services.db, sql`select path from org_units where id = ${rawId(unit)}`))[0]!.path;
  const projects = [tree.projectA, tree.projectB, tree.projectC].map(rawId);
  const teams = [tree.teamA, tree.teamB, tree.teamC];
  const members: Actor[][] = await Promise.all(
    teams.map(async (team, i) => {
      const unitPath = await path(team);
      return ['ann', 'ben', 'cy'].slice(0, i + 1).map((name) => ({ subject: `member:${name}`, role: 'MEMBER' as const, unitId: rawId(team), unitPath, tokenId: null }));
    }),
  );
  const apps: Actor[] = await Promise.all(
    projects.map(async (p, i) => ({ subject: `service:app-${i}`, role: 'SERVICE' as const, unitId: p, unitPath: await path([tree.projectA, tree.projectB, tree.projectC][i]!), tokenId: null })),
  );

  const next = random(20250301);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)]!;
  const at = new Date('2025-03-10T12:00:00Z');
  // In chunks below the account's concurrency limit: admitted, accepted by HeyGen, rendered (random lengths, so that
  // every split has remainders) and settled; a few fail, some stay in flight (their holds count nowhere in the
  // chargeback).
  for (let done = 0; done < JOBS; done += 40) {
    const admitted: { id: string; fate: number }[] = [];
    for (let i = done; i < Math.min(JOBS, done + 40); i++) {
      const p = Math.floor(next() * 3);
      const byApp = next() < 0.4;
      const actor = byApp ? apps[p]! : pick(members[p]!);
      const tags: Record<string, string> = {};
      if (next() < 0.7) tags.campaign = pick(CAMPAIGNS);
      if (next() < 0.5) tags.client = pick(CLIENTS);
      const endUser = byApp && next() < 0.8 ? `user${Math.floor(next() * 7)}@example.com` : null;
      const input = { projectId: projects[p]!, kind: 'AVATAR_VIDEO' as const, request: avatarRequest(), estimatedSeconds: null, idempotencyKey: null, tags, endUser };
      const { job } = await admitJob(h.services.db, actor, input, h.services.admission, at);
      admitted.push({ id: job.id, fate: next() });
    }
    // The first chunk's few stay in flight (below the account's concurrency limit with every later chunk).
    const settled = admitted.filter((j) => done > 0 || j.fate >= 0.2);
    await h.services.db.execute(sql`update jobs set status = 'SUBMITTED' where id in (${sql.join(admitted.map((j) => sql`${j.id}::uuid`), sql`, `)})`);
    await h.services.db.execute(
      sql`insert into job_items (job_id, upstream_id, kind, status, duration_seconds, cost_micro_cs)
          values ${sql.join(
            settled.map((j) => {
              const failed = j.fate < 0.05;
              const cost = 1_000_000n + BigInt(Math.floor(next() * 150_000_000));
              return sql`(${j.id}::uuid, ${`up-${j.id}`}, 'video', ${failed ? 'failed' : 'completed'}, ${failed ? null : '10'}, ${failed ? null : cost})`;
            }),
            sql`, `,
          )}`,
    );
    await Promise.all(settled.map((j) => settleJob(h.services.db, j.id, { type: 'upstream_terminal' }, new Date('2025-03-20T12:00:00Z'))));
  }
  // Usage without a job: no tag, no person.
  await adjust(h, tree.accountId, tree.teamA, PERIOD, '1234.567891');
  await adjust(h, tree.accountId, tree.orgId, PERIOD, '99.5');
  await adjust(h, tree.accountId, tree.projectB, PERIOD, '-10.25');
}, 600_000);
afterAll(async () => h?.close());

/** What the jobs themselves settled, per tag value (or person) in the account's period: the truth the rollups must equal. */
async function settledBy(group: string): Promise<Map<string, bigint>> {
  const rows = await queryRows<{ g: string; settled: string }>(
    h.services.db,
    sql`select ${sql.raw(group)} as g, sum(l.amount_micro_cs)::text as settled from ledger_entries l join jobs j on j.id = l.job_id
        where l.entry_type = 'DEBIT' and l.period = ${PERIOD} and l.account_id = ${rawId(tree.accountId)} and ${sql.raw(group)} is not null group by 1`,
  );
  return new Map(rows.map((r) => [r.g, BigInt(r.settled)]));
}

async function grouped(groupBy: Record<string, unknown>, token?: string) {
  const res = await h.gql(REPORT, { accountId: tree.accountId, period: PERIOD, groupBy }, token);
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data.chargebackReport;
}

describe('grouped chargeback adds up to the cent under every allocation policy', () => {
  const policies = ['PROPORTIONAL', 'MARGINAL', 'COMMITTED_SHARES'] as const;
  for (const policy of policies) {
    it(policy, async () => {
      if (policy === 'COMMITTED_SHARES') {
        await setShares(h, tree.accountId, PERIOD, [
          { orgUnitId: tree.mediaId, share: '0.55' },
          { orgUnitId: tree.salesId, share: '0.45' },
        ]);
      }
      await setTerms(h, { accountId: tree.accountId, effectiveFrom: PERIOD, allocationPolicy: policy });
      const truth = {
        campaign: await settledBy(`j.tags->>'campaign'`),
        client: await settledBy(`j.tags->>'client'`),
        person: await settledBy(`coalesce('user:' || j.end_user, j.created_by)`),
      };
      for (const [name, groupBy] of [
        ['campaign', { by: 'TAG', tagKey: 'campaign' }],
        ['client', { by: 'TAG', tagKey: 'client' }],
        ['person', { by: 'PERSON' }],
      ] as const) {
        const r = await grouped(groupBy);
        expect(r.policy).toBe(policy);
        for (const line of r.lines) {
          const groups = line.groups as { value: string | null; creditSeconds: string; ownCreditSeconds: string; costUsd: string; ownCostUsd: string }[];
          expect(sumCents(groups.map((g) => g.costUsd)), `${name} ${line.orgUnit.id}`).toBe(sumCents([line.costUsd]));
          expect(sumCents(groups.map((g) => g.ownCostUsd))).toBe(sumCents([line.ownCostUsd]));
          expect(groups.reduce((s, g) => s + micro(g.creditSeconds), 0n)).toBe(micro(line.creditSeconds));
          expect(groups.reduce((s, g) => s + micro(g.ownCreditSeconds), 0n)).toBe(micro(line.ownCreditSeconds));
          expect(groups.every((g) => !g.costUsd.startsWith('-') && !g.ownCostUsd.startsWith('-'))).toBe(true);
        }
        const org = r.lines.find((l: { orgUnit: { id: string } }) => l.orgUnit.id === tree.orgId);
        expect(sumCents(org.groups.map((g: { costUsd: string }) => g.costUsd))).toBe(sumCents([r.invoiceTotalUsd]));
        // The groups' usage is what the jobs settled; the rest is the untagged jobs and the adjustments.
        const values = new Map<string, bigint>(org.groups.filter((g: { value: string | null }) => g.value !== null).map((g: { value: string; creditSeconds: string }) => [g.value, micro(g.creditSeconds)]));
        expect(values).toEqual(truth[name]);
        const rest = org.groups.find((g: { value: string | null }) => g.value === null);
        expect(rest.label).toBe(name === 'person' ? 'no person' : 'untagged');
      }
    });
  }

  it('a MEMBER sees only its own person among the groups of the lines it may read', async () => {
    const r = await grouped({ by: 'PERSON' }, ann);
    const persons = new Set(r.lines.flatMap((l: { groups: { value: string | null }[] }) => l.groups.map((g) => g.value)));
    expect([...persons]).toEqual(['member:ann']);
    const all = await grouped({ by: 'PERSON' });
    const teamA = all.lines.find((l: { orgUnit: { id: string } }) => l.orgUnit.id === tree.teamA);
    const mine = r.lines.find((l: { orgUnit: { id: string } }) => l.orgUnit.id === tree.teamA);
    expect(mine.groups).toEqual(teamA.groups.filter((g: { value: string | null }) => g.value === 'member:ann'));
  });

  it('the FOCUS export has one row per tag set with the job tags in Tags, and its rows sum to the invoice', async () => {
    const r = await grouped({ by: 'TAG', tagKey: 'campaign' });
    const csv = await fetchCsv(h, `/reports/chargeback.focus.csv?account=${encodeURIComponent(tree.accountId)}&period=${PERIOD}`);
    expect(csv.status).toBe(200);
    const rows = parse(csv.body, { columns: true }) as Record<string, string>[];
    expect(sumCents(rows.map((row) => row.BilledCost!))).toBe(sumCents([r.invoiceTotalUsd]));
    const byCampaign = new Map<string, bigint>();
    for (const row of rows) {
      const tags = JSON.parse(row.Tags!) as Record<string, string>;
      if (tags.campaign) byCampaign.set(tags.campaign, (byCampaign.get(tags.campaign) ?? 0n) + micro(row.ConsumedQuantity!));
    }
    expect(byCampaign).toEqual(await settledBy(`j.tags->>'campaign'`));
    const projectA = rows.filter((row) => row.SubAccountId === rawId(tree.projectA));
    expect(projectA.some((row) => JSON.parse(row.Tags!)['x-gateway/untagged'] === 'true')).toBe(true);
    expect(new Set(projectA.map((row) => row.Tags)).size).toBe(projectA.length);
  });

  it('usage by tag adds up to the unit usage, and the rollups equal the ledger', async () => {
    const res = await h.gql(
      `query($id: ID!, $accountId: ID!) { node(id: $id) { ... on OrgUnit { usage(accountId: $accountId, period: "${PERIOD}") {
         settledCreditSeconds groups(groupBy: { by: TAG, tagKey: "client" }) { value settledCreditSeconds } } } } }`,
      { id: tree.orgId, accountId: tree.accountId },
    );
    const usage = res.data.node.usage;
    expect(usage.groups.reduce((s: bigint, g: { settledCreditSeconds: string }) => s + micro(g.settledCreditSeconds), 0n)).toBe(micro(usage.settledCreditSeconds));
    expect(usage.groups.at(-1).value).toBeNull();
    await expectCountersEqualLedger(h.services.db);
  });
});

// The published overspend bound (docs/budgets.md), asserted on a hostile project: a SERVICE token submits as fast as
// the caps let it while HeyGen bills some jobs far beyond their holds. Usage of a HARD budget never passes
// limit + the overruns of the jobs in flight at its last admission (at most the account's concurrency limit of
// them); once past the limit the unit admits nothing; every overrun is debited, audited, in /metrics, in the
// chargeback and flagged to finance.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { sql } from 'drizzle-orm';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { createTree, issueServiceToken, setBudget, SUBMIT, avatarRequest, JOB_QUERY, type Tree } from './support/fixtures.js';
import { expectCountersEqualLedger } from './support/invariants.js';
import { queryRows } from '../src/db/client.js';
import { parseCreditSeconds, formatCreditSeconds } from '../src/primitives/money.js';
import { periodOf } from '../src/primitives/period.js';

const LIMIT = '1000';
const CONCURRENCY = 4;
/** Output seconds HeyGen "renders" for successive jobs: several far beyond the ~8 s a 20-word script takes. */
const DURATIONS = [20, 5, 30, 8, 45, 3, 12, 25];

describe('overspend bound of a HARD budget under a hostile project', () => {
  let h: Harness;
  let tree: Tree;
  let service: string;
  let projectUuid: string;
  let accountUuid: string;
  const period = periodOf(new Date(), 'UTC');

  beforeAll(async () => {
    h = await startHarness({ sim: { autoComplete: false } });
    tree = await createTree(h, { concurrencyLimit: CONCURRENCY });
    projectUuid = decodeGlobalID(tree.projectId).id;
    accountUuid = decodeGlobalID(tree.accountId).id;
    await setBudget(h, { orgUnitId: tree.projectId, accountId: tree.accountId, window: 'MONTHLY', limitCreditSeconds: LIMIT, enforcement: 'HARD' });
    service = (await issueServiceToken(h, tree.projectId, 'hostile')).token;
  });
  afterAll(async () => h?.close());

  async function usedMicroCs(): Promise<bigint> {
    const [row] = await queryRows<{ used: string }>(
      h.services.db,
      sql`select coalesce(sum(reserved_micro_cs + settled_micro_cs), 0)::text as used from usage_rollups
          where org_unit_id = ${projectUuid} and account_id = ${accountUuid} and period = ${period}`,
    );
    return BigInt(row!.used);
  }

  it('never passes limit + overruns of the jobs in flight at the last admission; past the limit it admits nothing', async () => {
    const limit = parseCreditSeconds(LIMIT);
    /** Per round: the jobs admitted, and their overruns once settled. */
    const rounds: { jobs: string[]; overrun: bigint }[] = [];
    const samples: { used: bigint; round: number }[] = [];
    let current = -1;
    let observing = true;
    const observer = (async () => {
      while (observing) {
        samples.push({ used: await usedMicroCs(), round: current });
        await new Promise((r) => setTimeout(r, 5));
      }
    })();

    const refusals = { budget: 0, concurrency: 0 };
    let budgetMessage = '';
    let d = 0;
    let pastLimitRounds = 0;
    for (let round = 0; round < 40 && pastLimitRounds < 2; round++) {
      current = round;
      const usedBefore = await usedMicroCs();
      // More than the concurrency limit at once: the account's limit refuses the rest.
      const results = await Promise.all(
        Array.from({ length: CONCURRENCY + 2 }, () =>
          h.gql(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest(), queue: false } }, service).then((r) => r.data.submitJob),
        ),
      );
      const admitted = results.filter((r) => r.__typename === 'SubmitJobPayload');
      for (const r of results) {
        if (r.__typename === 'BudgetExceededError') {
          refusals.budget++;
          budgetMessage = r.message;
        } else if (r.__typename === 'ConcurrencyLimitError') refusals.concurrency++;
        else expect(r.__typename).toBe('SubmitJobPayload');
      }
      expect(admitted.length).toBeLessThanOrEqual(CONCURRENCY);
      if (usedBefore > limit) {
        // A unit past its HARD limit admits nothing until it is back under.
        expect(admitted).toEqual([]);
        pastLimitRounds++;
        continue;
      }
      if (admitted.length === 0) continue;
      for (const r of admitted) h.sim.completeNow(r.job.upstreamIds[0], { durationSeconds: DURATIONS[d++ % DURATIONS.length]! });
      const settled = await Promise.all(
        admitted.map((r) => waitFor(async () => {
          const job = (await h.gql(JOB_QUERY, { id: r.job.id })).data.job;
          return job.status === 'SUCCEEDED' ? job : null;
        }, 20_000)),
      );
      const [row] = await queryRows<{ overrun: string }>(
        h.services.db,
        sql`select coalesce(sum(overrun_micro_cs), 0)::text as overrun from jobs where id in (${sql.join(admitted.map((r) => sql`${decodeGlobalID(r.job.id).id}`), sql`, `)})`,
      );
      rounds[round] = { jobs: settled.map((j) => j.id), overrun: BigInt(row!.overrun) };
    }
    observing = false;
    await observer;

    // The scenario must really have gone past the limit through overruns, and been refused there.
    const final = await usedMicroCs();
    expect(final).toBeGreaterThan(limit);
    expect(pastLimitRounds).toBe(2);
    expect(refusals.budget).toBeGreaterThan(0);
    expect(refusals.concurrency).toBeGreaterThan(0);

    // Every observation: used ≤ limit + Σ overruns of the last round that admitted anything (its jobs were the
    // ones in flight at the last admission; rounds never overlap).
    let lastAdmitting = -1;
    const boundAt = (round: number) => {
      for (let r = round; r >= 0; r--) if (rounds[r]) return limit + rounds[r]!.overrun;
      return limit;
    };
    for (const s of [...samples, { used: final, round: rounds.length - 1 }]) {
      expect(s.used).toBeLessThanOrEqual(boundAt(s.round));
    }
    for (let r = 0; r < rounds.length; r++) if (rounds[r]) lastAdmitting = r;
    expect(rounds[lastAdmitting]!.jobs.length).toBeLessThanOrEqual(CONCURRENCY);
    expect(final - limit).toBeLessThanOrEqual(rounds[lastAdmitting]!.overrun);

    // The refusal names the unit, the window, and the amounts in credit-seconds and USD (overage rate $0.00833).
    expect(budgetMessage).toMatch(/budget of "Onboarding" \(MONTHLY \d{4}-\d{2}\)/);
    expect(budgetMessage).toContain('limit 1000 cs ($8.33)');
    expect(budgetMessage).toMatch(/available 0 cs \(\$0\.00\), requested [\d.]+ cs \(\$\d+\.\d{2}\)/);
    await expectCountersEqualLedger(h.services.db);
  });

  it('every overrun is on the ledger, in the chargeback, audited, in /metrics and flagged to finance', async () => {
    const jobs = await queryRows<{ actual: string; overrun: string; n: string }>(
      h.services.db,
      sql`select coalesce(sum(actual_micro_cs), 0)::text as actual, coalesce(sum(overrun_micro_cs), 0)::text as overrun,
                 count(*) filter (where overrun_micro_cs > 0)::text as n
          from jobs where project_id = ${projectUuid}`,
    );
    const actual = BigInt(jobs[0]!.actual);
    const overrun = BigInt(jobs[0]!.overrun);
    const overran = Number(jobs[0]!.n);
    expect(overrun).toBeGreaterThan(0n);

    // Ledger: the debits of the project are the full actual cost, overruns included.
    const [ledger] = await queryRows<{ debit: string }>(
      h.services.db,
      sql`select coalesce(sum(amount_micro_cs), 0)::text as debit from ledger_entries where org_unit_id = ${projectUuid} and entry_type = 'DEBIT'`,
    );
    expect(BigInt(ledger!.debit)).toBe(actual);

    // Chargeback: the project's line carries all of it.
    const report = await h.gql(`query($a: ID!, $p: String!) { chargebackReport(accountId: $a, period: $p) { lines { orgUnit { id } creditSeconds } } }`, { a: tree.accountId, p: period });
    expect(report.errors).toBeUndefined();
    const line = report.data.chargebackReport.lines.find((l: any) => l.orgUnit?.id === tree.projectId);
    expect(line.creditSeconds).toBe(formatCreditSeconds(actual));

    // Audit: one job.overrun event per job that overran, by the gateway itself.
    const audits = await queryRows<{ n: string }>(
      h.services.db,
      sql`select count(*)::text as n from audit_events where action = 'job.overrun' and actor_role = 'SYSTEM' and after->>'projectId' = ${projectUuid}`,
    );
    expect(Number(audits[0]!.n)).toBe(overran);

    // /metrics: the overrun counter and the refusals by unit and reason.
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    const overrunLine = metrics.split('\n').find((l) => l.startsWith('gateway_overrun_credits_total{') && l.includes(`project="${projectUuid}"`));
    expect(Number(overrunLine!.split(' ').pop())).toBeCloseTo(Number(formatCreditSeconds(overrun)), 6);
    const refusalLine = metrics.split('\n').find((l) => l.startsWith('gateway_admission_refusals_total{') && l.includes(`unit="${projectUuid}"`) && l.includes('reason="budget"'));
    expect(Number(refusalLine!.split(' ').pop())).toBeGreaterThan(0);
    expect(metrics).toMatch(new RegExp(`gateway_admission_refusals_total\\{[^}]*project="${projectUuid}"[^}]*reason="concurrency"[^}]*\\} [1-9]`));

    // Flagged to ADMIN/FINANCE; the project's own token may not read flags.
    const FLAGS = `query($p: Period!) { overrunFlags(period: $p) { project { id } overrunCreditSeconds jobsWithOverrun largestOverrunCreditSeconds } }`;
    const flags = await h.gql(FLAGS, { p: period });
    expect(flags.errors).toBeUndefined();
    expect(flags.data.overrunFlags).toEqual([
      expect.objectContaining({ project: { id: tree.projectId }, overrunCreditSeconds: formatCreditSeconds(overrun), jobsWithOverrun: overran }),
    ]);
    const denied = await h.gql(FLAGS, { p: period }, service);
    expect(denied.data?.overrunFlags ?? null).toBeNull();
    expect(denied.errors?.[0]?.extensions?.code).toBeDefined();
  });

  it('raising the limit above the usage admits again', async () => {
    const used = await usedMicroCs();
    await setBudget(h, { orgUnitId: tree.projectId, accountId: tree.accountId, window: 'MONTHLY', limitCreditSeconds: formatCreditSeconds(used + 100_000_000n), enforcement: 'HARD' });
    const r = (await h.gql(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } }, service)).data.submitJob;
    expect(r.__typename).toBe('SubmitJobPayload');
  });
});

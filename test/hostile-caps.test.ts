// A hostile SERVICE token against a project with a 1,000 cs HARD budget: the three bodies that broke the cap
// (a script next to scenes, a stray engine on a cinematic or studio video, a translation held at the caller's
// "1"), then 50 generated adversarial v3 bodies, all through GraphQL submitJob and rendered by the simulator.
// Every admitted job's hold bounds its bill, so settled usage never passes the limit and no overrun occurs.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { createTree, issueServiceToken, setBudget, SUBMIT, type Tree } from './support/fixtures.js';
import { expectCountersEqualLedger } from './support/invariants.js';
import { mp3, mp4, startMediaServer, wav, type MediaServer } from './support/media.js';
import { v3BodyArb } from './support/v3-bodies.js';
import { queryRows } from '../src/db/client.js';
import { rawId } from './support/billing.js';

const LIMIT_MICRO = 1_000_000_000n; // 1,000 cs
const SIM_KEY = 'sk_test_primary_key_0001';

let h: Harness;
let tree: Tree;
let token: string;
let media: MediaServer;

beforeAll(async () => {
  media = await startMediaServer({
    '/a-3200.wav': { body: wav(3200), type: 'audio/wav' },
    '/a-10000.mp3': { body: mp3(10_000), type: 'audio/mpeg' },
    '/a-45500.wav': { body: wav(45_500), type: 'audio/wav' },
    '/v-60000.mp4': { body: mp4(60_000), type: 'video/mp4' },
    '/v-12000.mp4': { body: mp4(12_000), type: 'video/mp4' },
  });
  h = await startHarness({ simAccounts: [{ apiKey: SIM_KEY, concurrencyLimit: 1000 }] });
  tree = await createTree(h, { name: 'Hostile', concurrencyLimit: 1000 });
  await setBudget(h, { orgUnitId: tree.projectId, accountId: tree.accountId, window: 'MONTHLY', limitCreditSeconds: '1000', enforcement: 'HARD' });
  token = (await issueServiceToken(h, tree.projectId, 'hostile-app')).token;
});
afterAll(async () => {
  await h?.close();
  await media?.close();
});

async function submit(kind: string, request: unknown, estimatedSeconds: string | null = null): Promise<any> {
  const res = await h.gql(SUBMIT, { input: { projectId: tree.projectId, kind, request, ...(estimatedSeconds ? { estimatedSeconds } : {}) } }, token);
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data.submitJob;
}

async function usage(): Promise<{ reserved: bigint; settled: bigint }> {
  const [row] = await queryRows<{ reserved: string; settled: string }>(
    h.services.db,
    sql`select coalesce(sum(reserved_micro_cs), 0)::text as reserved, coalesce(sum(settled_micro_cs), 0)::text as settled
        from usage_rollups where org_unit_id = ${rawId(tree.projectId)}`,
  );
  return { reserved: BigInt(row!.reserved), settled: BigInt(row!.settled) };
}

async function allTerminal(): Promise<void> {
  await waitFor(async () => {
    const [row] = await queryRows<{ n: number }>(h.services.db, sql`select count(*)::int as n from jobs where status not in ('SUCCEEDED', 'FAILED', 'CANCELLED', 'REJECTED')`);
    return Number(row!.n) === 0;
  }, 60_000);
}

describe('a hostile SERVICE token against a 1,000 cs HARD budget', () => {
  it('the three bodies that broke the cap are refused or held at what they will cost', async () => {
    const words2499 = Array.from({ length: 2499 }, () => 'w').join(' ');
    const scriptAndScenes = await submit('AVATAR_VIDEO', { type: 'avatar', avatar_id: 'a1', script: words2499, scenes: [{ script: 'hi' }] });
    expect(scriptAndScenes.__typename).toBe('ValidationError');
    expect(scriptAndScenes.field).toBe('request.scenes');

    const cinematic = await submit('AVATAR_VIDEO', { type: 'cinematic_avatar', avatar_id: ['a1'], prompt: 'a dancer', engine: 'avatar_iii' });
    expect(cinematic).toMatchObject({ __typename: 'ValidationError', field: 'request.engine' });
    const studio = await submit('AVATAR_VIDEO', {
      engine: 'avatar_iii',
      scenes: [{ type: 'video', source: { type: 'url', url: media.url('/v-60000.mp4') } }],
    });
    expect(studio).toMatchObject({ __typename: 'ValidationError', field: 'request.engine' });

    // Without a stray engine, the same cinematic video is admitted at its own product and length (10 s × 6 × 110 %).
    const honest = await submit('AVATAR_VIDEO', { type: 'cinematic_avatar', avatar_id: ['a1'], prompt: 'a dancer' });
    expect(honest.__typename).toBe('SubmitJobPayload');
    expect(honest.job.estimatedCreditSeconds).toBe('66');

    // A 60 s source into 10 languages, declared as "1": held at 60 × 10 × 3 × 110 % = 1,980 cs, over the budget.
    const translation = await submit('VIDEO_TRANSLATION', { video: { type: 'url', url: media.url('/v-60000.mp4') }, output_languages: Array.from({ length: 10 }, (_, i) => `L${i}`) }, '1');
    expect(translation.__typename).toBe('BudgetExceededError');
    expect(translation.requestedCreditSeconds).toBe('1980');
    await allTerminal();
  });

  it('50 generated adversarial bodies: every hold ≥ its bill, settled usage within the limit, no overrun', async () => {
    const bodies = fc.sample(
      v3BodyArb({
        audio: ['/a-3200.wav', '/a-10000.mp3', '/a-45500.wav'].map(media.url),
        video: ['/v-12000.mp4', '/v-60000.mp4'].map(media.url),
        broken: [media.url('/missing.wav'), 'http://127.0.0.1:9/x.mp4'],
        inline: [mp4(2500).toString('base64')],
      }),
      { numRuns: 50, seed: 9 },
    );
    const outcomes: Record<string, number> = {};
    // In bursts of 5, as a hostile caller would: admissions race each other; between bursts the earlier jobs
    // settle, so that holds are released and later bodies get their turn against what is left of the limit.
    for (let i = 0; i < bodies.length; i += 5) {
      const results = await Promise.all(bodies.slice(i, i + 5).map((b) => submit(b.kind, b.body, b.estimatedSeconds)));
      for (const r of results) outcomes[r.__typename] = (outcomes[r.__typename] ?? 0) + 1;
      const now = await usage();
      expect(now.reserved + now.settled).toBeLessThanOrEqual(LIMIT_MICRO);
      await allTerminal();
    }
    await allTerminal();
    console.log('hostile submissions:', JSON.stringify(outcomes));
    expect(outcomes['SubmitJobPayload'] ?? 0).toBeGreaterThan(5);
    expect(outcomes['ValidationError'] ?? 0).toBeGreaterThan(5);
    expect(outcomes['BudgetExceededError'] ?? 0).toBeGreaterThan(0);

    const jobs = await queryRows<{ id: string; estimated: string; actual: string | null; overrun: string | null; status: string; upstream: string[] }>(
      h.services.db,
      sql`select id::text, estimated_micro_cs::text as estimated, actual_micro_cs::text as actual, overrun_micro_cs::text as overrun, status,
                 coalesce((select array_agg(upstream_id) from job_items i where i.job_id = jobs.id), '{}') as upstream
          from jobs where project_id = ${rawId(tree.projectId)}`,
    );
    let simBilled = 0n;
    let settled = 0n;
    for (const job of jobs) {
      const actual = BigInt(job.actual ?? '0');
      expect(actual, `job ${job.id}`).toBeLessThanOrEqual(BigInt(job.estimated));
      expect(BigInt(job.overrun ?? '0')).toBe(0n);
      settled += actual;
      for (const id of job.upstream) {
        const simJob = h.sim.job(id);
        if (simJob?.status === 'completed') {
          expect(simJob.costMicroCreditSeconds).toBeLessThanOrEqual(BigInt(job.estimated));
          simBilled += simJob.costMicroCreditSeconds;
        }
      }
    }
    // What the simulator billed is what the gateway settled (same durations, same rates), and it is within the limit.
    expect(settled).toBe(simBilled);
    const final = await usage();
    expect(final.reserved).toBe(0n);
    expect(final.settled).toBe(settled);
    expect(final.settled).toBeLessThanOrEqual(LIMIT_MICRO);
    await expectCountersEqualLedger(h.services.db);
  }, 120_000);
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { createTree, JOB_QUERY, SUBMIT, avatarRequest, type Tree } from './support/fixtures.js';
import { expectCountersEqualLedger } from './support/invariants.js';

// The core path runs on both drivers: PostgreSQL, and the embedded PGlite of the demo.
describe.each([
  { driver: 'PostgreSQL', embedded: false },
  { driver: 'PGlite', embedded: true },
])('job lifecycle against the simulator on $driver', ({ embedded }) => {
  let h: Harness;
  let tree: Tree;

  beforeAll(async () => {
    h = await startHarness({ embedded, sim: { fixedDurationSeconds: 10.5 } });
    tree = await createTree(h);
  });
  afterAll(async () => h?.close());

  async function submit(kind: string, request: Record<string, unknown>, extra: Record<string, unknown> = {}) {
    const res = await h.gql(SUBMIT, { input: { projectId: tree.projectId, kind, request, ...extra } });
    expect(res.errors).toBeUndefined();
    return res.data.submitJob;
  }

  async function settled(id: string) {
    return waitFor(async () => {
      const res = await h.gql(JOB_QUERY, { id });
      const job = res.data.job;
      return ['SUCCEEDED', 'FAILED'].includes(job.status) ? job : null;
    });
  }

  it('avatar video: admitted, submitted, completed, settled at duration × rate, rest released', async () => {
    const r = await submit('AVATAR_VIDEO', avatarRequest());
    expect(r.__typename).toBe('SubmitJobPayload');
    expect(r.job.status).toBe('SUBMITTED');
    expect(r.job.estimatedCreditSeconds).toBe('52.8'); // 8 s × 6 cs/s × 110 %
    expect(r.job.upstreamIds).toHaveLength(1);
    const job = await settled(r.job.id);
    expect(job.status).toBe('SUCCEEDED');
    expect(job.actualSeconds).toBe('10.5');
    expect(job.actualCreditSeconds).toBe('63'); // 10.5 s × 6 cs/s
    expect(job.reservedCreditSeconds).toBe('0');
    await expectCountersEqualLedger(h.services.db);
  });

  it('template video, video agent, and a translation into 3 languages settle per item', async () => {
    const t = await submit('TEMPLATE_VIDEO', { template_id: 'tmpl_1', variables: { name: { type: 'text', text: 'Ada' } } });
    const a = await submit('VIDEO_AGENT', { prompt: 'A short product intro' }, { estimatedSeconds: '30' });
    const tr = await submit('VIDEO_TRANSLATION', { video: { type: 'asset_id', asset_id: 'src_1' }, output_languages: ['fr', 'de', 'es'], mode: 'precision' });
    expect(tr.job.upstreamIds).toHaveLength(3);
    const [tj, aj, trj] = await Promise.all([settled(t.job.id), settled(a.job.id), settled(tr.job.id)]);
    expect(tj.actualCreditSeconds).toBe('63');
    expect(aj.actualCreditSeconds).toBe('42.021'); // 10.5 × 4.002
    expect(trj.upstreamItems).toHaveLength(3);
    expect(trj.actualSeconds).toBe('31.5');
    expect(trj.actualCreditSeconds).toBe('189'); // 3 × 10.5 × 6
    await expectCountersEqualLedger(h.services.db);
  });

  it('a failed job releases everything', async () => {
    h.sim.configure({ failNextJobs: 1 });
    const r = await submit('AVATAR_VIDEO', avatarRequest());
    const job = await settled(r.job.id);
    expect(job.status).toBe('FAILED');
    expect(job.actualCreditSeconds).toBe('0');
    expect(job.reservedCreditSeconds).toBe('0');
    await expectCountersEqualLedger(h.services.db);
  });
});

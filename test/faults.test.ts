// HeyGen misbehaving: rate limits, server errors, timeouts, lost and forged webhooks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { createTree, JOB_QUERY, SUBMIT, avatarRequest, type Tree } from './support/fixtures.js';
import { expectCountersEqualLedger } from './support/invariants.js';

const KEY = 'sk_test_primary_key_0001';

async function submit(h: Harness, tree: Tree) {
  const res = await h.gql(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } });
  expect(res.errors).toBeUndefined();
  return res.data.submitJob;
}

async function jobOf(h: Harness, id: string) {
  return (await h.gql(JOB_QUERY, { id })).data.job;
}

async function terminal(h: Harness, id: string) {
  return waitFor(async () => {
    const job = await jobOf(h, id);
    return ['SUCCEEDED', 'FAILED'].includes(job.status) ? job : null;
  }, 20_000);
}

describe('forwarding faults', () => {
  let h: Harness;
  let tree: Tree;
  beforeAll(async () => {
    h = await startHarness({ sim: { fixedDurationSeconds: 10 }, env: { HEYGEN_TIMEOUT_MS: '300' } });
    tree = await createTree(h);
  });
  afterAll(async () => h?.close());

  it('429 with Retry-After: the client waits and succeeds', async () => {
    h.sim.configure({ rateLimitNext: 1, retryAfterSeconds: 1 });
    const created = h.sim.stats().jobsCreated[KEY] ?? 0;
    const started = Date.now();
    const r = await submit(h, tree);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(r.job.status).toBe('SUBMITTED');
    expect(h.sim.stats().rateLimited.injected).toBe(1);
    expect((h.sim.stats().jobsCreated[KEY] ?? 0) - created).toBe(1);
    expect((await terminal(h, r.job.id)).actualCreditSeconds).toBe('60');
  });

  it('5xx after the job was created, then success: one upstream job thanks to the Idempotency-Key', async () => {
    h.sim.configure({ fail5xxNext: 1, fail5xxAfterCreate: true });
    const created = h.sim.stats().jobsCreated[KEY] ?? 0;
    const calls = h.sim.stats().requests['POST /v3/videos'] ?? 0;
    const r = await submit(h, tree);
    expect(r.job.status).toBe('SUBMITTED');
    expect((h.sim.stats().requests['POST /v3/videos'] ?? 0) - calls).toBe(2);
    expect((h.sim.stats().jobsCreated[KEY] ?? 0) - created).toBe(1);
    expect(h.sim.stats().idempotency.replays).toBeGreaterThanOrEqual(1);
    const job = await terminal(h, r.job.id);
    expect(job.status).toBe('SUCCEEDED');
    expect(job.upstreamIds).toHaveLength(1);
  });

  it('timeout: the job goes to SUBMIT_UNKNOWN and the worker resolves it with the same key', async () => {
    h.sim.configure({ timeoutNext: 1, timeoutHoldMs: 5000 });
    const created = h.sim.stats().jobsCreated[KEY] ?? 0;
    const r = await submit(h, tree);
    expect(r.job.status).toBe('SUBMIT_UNKNOWN');
    expect(r.job.reservedCreditSeconds).toBe('52.8'); // the hold stays while the outcome is unknown
    const job = await terminal(h, r.job.id);
    expect(job.status).toBe('SUCCEEDED');
    expect((h.sim.stats().jobsCreated[KEY] ?? 0) - created).toBe(1);
    expect(job.actualCreditSeconds).toBe('60');
    await expectCountersEqualLedger(h.services.db);
  });

  it('a definite 4xx from HeyGen fails the job and releases its hold', async () => {
    const r = await h.gql(SUBMIT, {
      input: { projectId: tree.projectId, kind: 'TEMPLATE_VIDEO', request: { template_id: 'tmpl_x', variables: 'not-an-object-for-heygen' } },
    });
    // The gateway's own validation catches this one first: nothing is written or forwarded.
    expect(r.data.submitJob.__typename).toBe('ValidationError');
    h.sim.configure({ enforceBalance: true });
    h.sim.addAccount({ apiKey: KEY, billingType: 'wallet', walletCredits: 0 });
    const refused = await submit(h, tree);
    expect(refused.job.status).toBe('FAILED');
    expect(refused.job.reservedCreditSeconds).toBe('0');
    const job = await jobOf(h, refused.job.id);
    expect(job.failureCode).toBe('insufficient_credit');
    h.sim.configure({ enforceBalance: false });
    await expectCountersEqualLedger(h.services.db);
  });
});

describe('webhooks', () => {
  let h: Harness;
  let tree: Tree;
  beforeAll(async () => {
    // Polling is slow here, so a quick settlement can only come from a webhook.
    h = await startHarness({ callbacks: true, sim: { fixedDurationSeconds: 10 }, env: { POLL_MIN_INTERVAL_MS: '60000', POLL_MAX_INTERVAL_MS: '60000' } });
    tree = await createTree(h);
  });
  afterAll(async () => h?.close());

  it('a webhook makes the gateway read the status and settle at once', async () => {
    const r = await submit(h, tree);
    const job = await terminal(h, r.job.id);
    expect(job.status).toBe('SUCCEEDED');
    expect(job.actualCreditSeconds).toBe('60');
    expect(h.sim.stats().webhooks.delivered).toBeGreaterThanOrEqual(1);
  });

  it('a forged webhook claiming a long duration only triggers a status read; settlement uses the fetched status', async () => {
    h.sim.configure({ autoComplete: false });
    const r = await submit(h, tree);
    const videoId = r.job.upstreamIds[0];
    const accountId = decodeGlobalID(tree.accountId).id;
    const jobId = decodeGlobalID(r.job.id).id;
    const forged = await fetch(`${h.url}/webhooks/heygen/${accountId}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ event_type: 'avatar_video.success', event_data: { video_id: videoId, callback_id: jobId, url: 'https://evil/x.mp4', duration: 99999 } }),
    });
    expect(forged.status).toBe(202);
    // HeyGen still says processing: nothing settles on the forged claim.
    await waitFor(async () => (h.sim.stats().requests['GET /v3/videos/statuses'] ?? 0) > 0 || (h.sim.stats().requests['GET /v3/videos/{video_id}'] ?? 0) > 0, 5000);
    expect((await jobOf(h, r.job.id)).status).toMatch(/SUBMITTED|PROCESSING/);
    h.sim.configure({ autoComplete: true });
    expect(h.sim.completeNow(videoId, { durationSeconds: 12 })).toBe(true);
    const job = await terminal(h, r.job.id);
    expect(job.actualSeconds).toBe('12');
    expect(job.actualCreditSeconds).toBe('72');
    await expectCountersEqualLedger(h.services.db);
  });

  it('with a webhook secret, an unsigned or badly signed webhook is refused', async () => {
    const signed = await createTree(h, { name: 'Signed', webhookSecret: 'whsec_test_secret_1' });
    const accountId = decodeGlobalID(signed.accountId).id;
    const body = JSON.stringify({ event_type: 'avatar_video.success', event_data: { video_id: 'v', callback_id: null } });
    const unsigned = await fetch(`${h.url}/webhooks/heygen/${accountId}`, { method: 'POST', body });
    expect(unsigned.status).toBe(401);
    const bad = await fetch(`${h.url}/webhooks/heygen/${accountId}`, { method: 'POST', body, headers: { 'x-heygen-signature': 'deadbeef' } });
    expect(bad.status).toBe(401);
    const { createHmac } = await import('node:crypto');
    const good = await fetch(`${h.url}/webhooks/heygen/${accountId}`, {
      method: 'POST',
      body,
      headers: { 'x-heygen-signature': createHmac('sha256', 'whsec_test_secret_1').update(body).digest('hex') },
    });
    expect(good.status).toBe(202);
  });

  it("per-job callbacks (unsigned by HeyGen) still work for an account with a webhook secret", async () => {
    const signed = await createTree(h, { name: 'Signed callbacks', webhookSecret: 'whsec_test_secret_2' });
    const r = await submit(h, signed);
    const job = await terminal(h, r.job.id);
    expect(job.status).toBe('SUCCEEDED');
    // Polling is slow here: the settlement came from the callback route.
    expect(h.sim.webhookDeliveries().some((d) => d.url.endsWith('/callback') && d.outcome === 'delivered')).toBe(true);
  });
});

describe('lost webhooks', () => {
  let h: Harness;
  let tree: Tree;
  beforeAll(async () => {
    h = await startHarness({ callbacks: true, sim: { fixedDurationSeconds: 10, loseWebhooks: true } });
    tree = await createTree(h);
  });
  afterAll(async () => h?.close());

  it('the poller settles jobs whose webhooks never arrive', async () => {
    const r = await submit(h, tree);
    const job = await terminal(h, r.job.id);
    expect(job.status).toBe('SUCCEEDED');
    expect(job.actualCreditSeconds).toBe('60');
    expect(h.sim.stats().webhooks.delivered).toBe(0);
  });
});
